"""``segstudio review-reasons``, ``review-cleanup`` and ``review-new --cleanup`` (app.cli.review_settings)."""

from __future__ import annotations

import pytest

from app.cli import main
from app.core.postprocess import WatershedParams
from app.core.review import ReviewStore
from app.core.review.record import DEFAULT_REASONS

from .helpers import make_folder, one_line_error


@pytest.fixture
def review(tmp_path, capsys):
    src = make_folder(tmp_path / "src", ["a", "b", "c"])
    folder = tmp_path / "review"
    assert main(["review-new", str(folder), "--images", str(src / "images"), "--masks", str(src / "masks")]) == 0
    capsys.readouterr()
    return folder


def test_reasons_are_listed_added_and_removed(review, capsys):
    assert main(["review-reasons", str(review)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{n}. {r}" for n, r in enumerate(DEFAULT_REASONS, start=1)]
    assert main(["review-decide", str(review), "a", "--state", "rejected", "--reviewer", "Ann",
                 "--reason", "Poor boundary"]) == 0
    capsys.readouterr()
    assert main(["review-reasons", str(review), "--add", "Out of focus", "--add", " Poor boundary ",
                 *[f"--remove= {r} " for r in DEFAULT_REASONS[1:]]]) == 0
    assert capsys.readouterr().out.splitlines() == ["1. Poor boundary  (1 case)", "2. Out of focus"]
    store = ReviewStore.open(review, read_only=True)
    assert store.record.reasons == ["Poor boundary", "Out of focus"]
    # the new reason is accepted by review-decide, the removed one no longer
    assert main(["review-decide", str(review), "b", "--state", "rejected", "--reviewer", "Ann",
                 "--reason", "Out of focus"]) == 0
    assert main(["review-decide", str(review), "c", "--state", "rejected", "--reviewer", "Ann",
                 "--reason", "Missed structure"]) == 2
    capsys.readouterr()


def test_reasons_refuse_an_unknown_removal_and_an_empty_list(review, capsys):
    assert main(["review-reasons", str(review), "--remove", "Nope"]) == 2
    assert f"'Nope' is not among this review's reasons: {', '.join(DEFAULT_REASONS)}" in \
        one_line_error(capsys, "review-reasons")
    assert main(["review-reasons", str(review), *[f"--remove={r}" for r in DEFAULT_REASONS]]) == 2
    assert "keep at least one rejection reason" in one_line_error(capsys, "review-reasons")
    assert ReviewStore.open(review, read_only=True).record.reasons == list(DEFAULT_REASONS)


def test_cleanup_is_shown_changed_and_reset(review, capsys):
    assert main(["review-cleanup", str(review)]) == 0
    assert capsys.readouterr().out.splitlines()[5] == "foreground_fraction = 0.7"
    assert main(["review-cleanup", str(review), "--set", "foreground_fraction=0.3", "--set", "fill_holes=true"]) == 0
    assert "foreground_fraction = 0.3" in capsys.readouterr().out
    assert ReviewStore.open(review, read_only=True).watershed_params == WatershedParams(foreground_fraction=0.3,
                                                                                        fill_holes=True)
    assert main(["review-cleanup", str(review), "--defaults", "--set", "threshold=0.6"]) == 0
    capsys.readouterr()
    assert ReviewStore.open(review, read_only=True).watershed_params == WatershedParams(threshold=0.6)
    assert main(["review-cleanup", str(review), "--set", "close_kernel=5.0", "--set", "distance_mask=3.0"]) == 0
    assert "close_kernel = 5\n" in capsys.readouterr().out  # stored as the whole number it is
    assert main(["review-decide", str(review), "a", "--state", "accepted", "--reviewer", "Ann",
                 "--mask", "watershed"]) == 0  # and the clean-up runs with it


@pytest.mark.parametrize("change, message", [
    ("fraction=0.3", "post-processing has no parameter fraction; valid: close_iterations"),
    ("foreground_fraction=2", "foreground_fraction = 2.0 is outside the allowed range [0.0, 1.0]"),
    ("foreground_fraction", "write a clean-up setting as KEY=VALUE"),
    ("fill_holes=maybe", "'maybe' is not a number, true or false"),
])
def test_cleanup_refuses_bad_settings_in_one_line(review, capsys, change, message):
    assert main(["review-cleanup", str(review), "--set", change]) == 2
    assert message in one_line_error(capsys, "review-cleanup")
    assert ReviewStore.open(review, read_only=True).watershed_params == WatershedParams()


def test_cleanup_refuses_to_change_an_accepted_watershed_export(review, capsys):
    assert main(["review-decide", str(review), "b", "--state", "accepted", "--reviewer", "Ann",
                 "--mask", "watershed"]) == 0
    capsys.readouterr()
    assert main(["review-cleanup", str(review), "--set", "foreground_fraction=0.3"]) == 2
    assert "1 accepted case exports the watershed mask made with the current settings (b)" in \
        one_line_error(capsys, "review-cleanup")
    assert ReviewStore.open(review, read_only=True).watershed_params == WatershedParams()


def test_review_new_takes_cleanup_settings(tmp_path, capsys):
    src = make_folder(tmp_path / "src", ["a"])
    folder = tmp_path / "review"
    assert main(["review-new", str(folder), "--images", str(src / "images"), "--masks", str(src / "masks"),
                 "--cleanup", "foreground_fraction=0.25", "--cleanup", "min_object_size=3"]) == 0
    assert ReviewStore.open(folder, read_only=True).watershed_params == WatershedParams(foreground_fraction=0.25,
                                                                                        min_object_size=3)
    capsys.readouterr()
    assert main(["review-new", str(tmp_path / "other"), "--images", str(src / "images"), "--masks",
                 str(src / "masks"), "--cleanup", "dilate=2"]) == 2
    assert "no parameter dilate" in one_line_error(capsys, "review-new")
    assert not (tmp_path / "other").exists()


def test_names_and_reasons_are_one_line_of_text(review, capsys):
    assert main(["review-reasons", str(review), "--add", "Too\ndark"]) == 2
    assert "must be one line of printable text" in one_line_error(capsys, "review-reasons")
    assert main(["review-decide", str(review), "a", "--state", "accepted", "--reviewer", "Ann\nBob"]) == 2
    assert "must be one line of printable text" in one_line_error(capsys, "review-decide")
    assert ReviewStore.open(review, read_only=True).case("a").state == "unreviewed"
