"""``segstudio review-status``, ``review-decide`` and ``review-correct`` (app.cli.review_decide)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from app.core.review import ReviewStore

from .helpers import make_folder, one_line_error


@pytest.fixture
def review(tmp_path, capsys):
    src = make_folder(tmp_path / "src", ["a", "b", "c"])
    folder = tmp_path / "review"
    assert main(["review-new", str(folder), "--images", str(src / "images"), "--masks", str(src / "masks")]) == 0
    capsys.readouterr()
    return folder


def test_decide_records_the_decision_reviewer_and_mask_choice(review, capsys):
    assert main(["review-decide", str(review), "a", "b", "--state", "accepted", "--reviewer", "Ann",
                 "--mask", "watershed", "--comment", "fine"]) == 0
    assert capsys.readouterr().out.splitlines() == ["a: accepted", "b: accepted"]
    assert main(["review-decide", str(review), "c", "--state", "rejected", "--reviewer", "Bob",
                 "--reason", "False positive"]) == 0
    assert capsys.readouterr().out.strip() == "c: rejected (False positive)"

    store = ReviewStore.open(review, read_only=True)
    a, c = store.case("a"), store.case("c")
    assert (a.state, a.reviewer, a.variant, a.comment) == ("accepted", "Ann", "watershed", "fine")
    assert a.area == int(np.count_nonzero(store.export_mask(a)))  # stats of the mask it exports
    assert (c.state, c.reason, c.reviewer) == ("rejected", "False positive", "Bob")
    assert [entry.reviewer for entry in c.history] == ["Bob"]


def test_reject_without_reason_records_none_and_an_unknown_reason_is_refused(review, capsys):
    assert main(["review-decide", str(review), "a", "--state", "rejected", "--reviewer", "Ann"]) == 0
    assert ReviewStore.open(review, read_only=True).case("a").reason == ""  # not a reason nobody gave
    capsys.readouterr()
    assert main(["review-decide", str(review), "b", "--state", "rejected", "--reviewer", "Ann",
                 "--reason", "Bad vibes"]) == 2
    line = one_line_error(capsys, "review-decide")
    assert "'Bad vibes' is not one of this review's reasons: Poor boundary, Missed structure" in line
    assert ReviewStore.open(review, read_only=True).case("b").state == "unreviewed"


def test_an_unknown_case_changes_nothing(review, capsys):
    assert main(["review-decide", str(review), "a", "zz", "--state", "accepted", "--reviewer", "Ann"]) == 2
    assert "has no case 'zz' (cases: a, b, c)" in one_line_error(capsys, "review-decide")
    assert ReviewStore.open(review, read_only=True).case("a").state == "unreviewed"  # checked before any change


def test_a_review_open_elsewhere_is_refused_in_one_line(review, capsys):
    holder = ReviewStore.open(review)
    try:
        assert main(["review-decide", str(review), "a", "--state", "accepted", "--reviewer", "Ann"]) == 2
        assert "open" in one_line_error(capsys, "review-decide")
    finally:
        holder.close()
    assert ReviewStore.open(review, read_only=True).case("a").state == "unreviewed"


def test_correct_stores_the_mask_and_revert_drops_it(review, tmp_path, capsys):
    corrected = np.zeros((12, 16), np.uint8)
    corrected[2:6, 3:9] = 255
    path = tmp_path / "fix.png"
    Image.fromarray(corrected).save(path)
    before = path.read_bytes()
    assert main(["review-correct", str(review), "b", "--mask", str(path), "--reviewer", "Ann"]) == 0
    assert "b: corrected (24 foreground pixels, 1 object)" in capsys.readouterr().out
    assert path.read_bytes() == before  # the user's file is only read
    store = ReviewStore.open(review, read_only=True)
    case = store.case("b")
    assert case.state == "corrected" and np.array_equal(store.export_mask(case), corrected > 0)

    assert main(["review-correct", str(review), "b", "--revert", "--reviewer", "Ann"]) == 0
    assert "the case is unreviewed again" in capsys.readouterr().out
    store = ReviewStore.open(review, read_only=True)
    assert store.case("b").state == "unreviewed" and not store.case("b").corrected
    assert not any((review / "corrections").iterdir())


def test_correct_refuses_a_mask_of_the_wrong_size_naming_it(review, tmp_path, capsys):
    path = tmp_path / "small.png"
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(path)
    assert main(["review-correct", str(review), "a", "--mask", str(path), "--reviewer", "Ann"]) == 2
    line = one_line_error(capsys, "review-correct")
    assert "small.png" in line and "5×5" in line and "16×12" in line
    assert ReviewStore.open(review, read_only=True).case("a").state == "unreviewed"


@pytest.mark.parametrize("values, reason", [("nan", "1 pixel(s) of the mask are NaN or infinite"),
                                            ("complex", "complex-valued pixels; an image needs real values")])
def test_correct_refuses_a_float_mask_with_nan_or_complex_values(review, tmp_path, capsys, recwarn, values, reason):
    """Such a mask was cast to uint8 with a RuntimeWarning on the terminal and stored."""
    import tifffile

    mask = np.zeros((12, 16), np.float32)
    if values == "nan":
        mask[2, 3] = np.nan
    else:
        mask = mask.astype(np.complex64)
    tifffile.imwrite(tmp_path / "m.tif", mask)
    assert main(["review-correct", str(review), "a", "--mask", str(tmp_path / "m.tif"), "--reviewer", "Ann"]) == 2
    line = one_line_error(capsys, "review-correct")
    assert "m.tif" in line and reason in line
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert not (review / "corrections").exists() or not any((review / "corrections").iterdir())


def test_status_lists_cases_and_filters_by_state(review, capsys):
    main(["review-decide", str(review), "a", "--state", "accepted", "--reviewer", "Ann"])
    main(["review-decide", str(review), "c", "--state", "needs_edit", "--reviewer", "Ann", "--comment", "edges"])
    capsys.readouterr()
    assert main(["review-status", str(review)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("3 cases, 1 unreviewed, 1 accepted, 1 needs edit")
    assert lines[1].split() == ["case", "state", "mask", "reviewer", "decided", "reason", "/", "comment"]
    assert lines[2].split()[:4] == ["a", "Accepted", "prediction", "Ann"]
    assert lines[3].split() == ["b", "Unreviewed", "prediction", "-", "-"]
    assert lines[4].split()[:2] == ["c", "Needs"] and lines[4].rstrip().endswith("edges")

    assert main(["review-status", str(review), "--state", "accepted", "--json"]) == 0
    cases = json.loads(capsys.readouterr().out)
    assert [(c["name"], c["state"], c["reviewer"]) for c in cases] == [("a", "accepted", "Ann")]


def test_correct_and_revert_keep_the_rejection_reason_and_mask_choice_is_refused_on_a_correction(
        review, tmp_path, capsys):
    assert main(["review-decide", str(review), "a", "--state", "rejected", "--reviewer", "Ann",
                 "--reason", "False positive"]) == 0
    mask = tmp_path / "fix.png"
    Image.fromarray(np.full((12, 16), 255, np.uint8)).save(mask)
    assert main(["review-correct", str(review), "a", "--reviewer", "Ann", "--mask", str(mask)]) == 0
    assert main(["review-decide", str(review), "a", "--state", "accepted", "--reviewer", "Ann",
                 "--mask", "watershed"]) == 2
    assert "a has a correction, which is what an accepted corrected case exports" in \
        one_line_error(capsys, "review-decide")
    assert main(["review-correct", str(review), "a", "--reviewer", "Ann", "--revert"]) == 0
    case = ReviewStore.open(review, read_only=True).case("a")
    assert (case.state, case.reason, case.corrected) == ("rejected", "False positive", "")
