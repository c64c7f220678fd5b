"""``segstudio review-new`` and ``segstudio review-export`` (app.cli.review)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from app.core.review import ReviewLockedError, ReviewStore

from .helpers import make_folder


def one_line_error(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"segstudio {command}: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture
def src(tmp_path):
    return make_folder(tmp_path / "src", ["a", "b", "c"])


def test_review_new_then_review_export(src, tmp_path, capsys):
    (src / "masks" / "c.png").write_bytes(b"not an image at all")
    review = tmp_path / "review"
    assert main(["review-new", str(review), "--images", str(src / "images"), "--masks", str(src / "masks")]) == 0
    out = capsys.readouterr().out
    assert f"review of 2 cases created in {review}" in out
    assert f"skipped {(src / 'masks' / 'c.png').resolve()}: " in out
    assert "  3/3" in out  # progress

    store = ReviewStore.open(review)  # the command released its lock
    store.decide("a", "accepted", "Ann")
    store.decide("b", "rejected", "Ann", reason="Other")
    store.close()

    assert main(["review-export", str(review), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.strip() == (f"exported 1 masks (1 accepted, 0 corrected), review_report.csv and "
                           f"review_summary.html into {tmp_path / 'out'}")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "review_report.csv",
                                                                     "review_summary.html"]
    exported = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert np.array_equal(exported, np.asarray(Image.open(src / "masks" / "a.png")))
    with open(tmp_path / "out" / "review_report.csv", newline="") as handle:
        assert [(r["name"], r["state"], r["reason"]) for r in csv.DictReader(handle)] == [
            ("a", "accepted", ""), ("b", "rejected", "Other")]


def test_review_export_tiff(src, tmp_path, capsys):
    review = tmp_path / "review"
    assert main(["review-new", str(review), "--images", str(src / "images"), "--masks", str(src / "masks")]) == 0
    store = ReviewStore.open(review)
    store.save_correction("b", np.ones((12, 16), np.uint8), "Ann")
    store.close()
    assert main(["review-export", str(review), "--out", str(tmp_path / "out"), "--format", "tiff"]) == 0
    assert "exported 1 masks (0 accepted, 1 corrected)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.tif", "review_report.csv",
                                                                     "review_summary.html"]


def test_review_new_into_a_non_empty_folder_is_one_line_and_exit_2(src, tmp_path, capsys):
    review = tmp_path / "review"
    review.mkdir()
    (review / "mine.txt").write_text("keep me")
    assert main(["review-new", str(review), "--images", str(src / "images"), "--masks", str(src / "masks")]) == 2
    line = one_line_error(capsys.readouterr().err, "review-new")
    assert "not an empty folder" in line and str(review) in line
    assert [p.name for p in review.iterdir()] == ["mine.txt"]


def test_review_new_inside_a_source_folder_is_refused(src, capsys):
    before = sorted(p.name for p in (src / "images").iterdir())
    assert main(["review-new", str(src / "images" / "r"), "--images", str(src / "images"),
                 "--masks", str(src / "masks")]) == 2
    assert "never writes there" in one_line_error(capsys.readouterr().err, "review-new")
    assert sorted(p.name for p in (src / "images").iterdir()) == before


def test_review_new_with_a_bad_checkpoint_leaves_no_folder(src, tmp_path, capsys):
    (tmp_path / "bad.pt").write_bytes(b"junk")
    assert main(["review-new", str(tmp_path / "review"), "--images", str(src / "images"),
                 "--checkpoint", str(tmp_path / "bad.pt"), "--device", "cpu"]) == 2
    assert "bad.pt" in one_line_error(capsys.readouterr().err, "review-new")
    assert not (tmp_path / "review").exists()


def test_review_new_needs_exactly_one_source(src, tmp_path, capsys):
    for extra in ([], ["--masks", str(src / "masks"), "--checkpoint", str(tmp_path / "x.pt")]):
        with pytest.raises(SystemExit) as info:
            main(["review-new", str(tmp_path / "review"), "--images", str(src / "images"), *extra])
        assert info.value.code == 2
    assert not (tmp_path / "review").exists()


def test_review_export_conflict_is_one_line_and_writes_nothing(src, tmp_path, capsys):
    review = tmp_path / "review"
    assert main(["review-new", str(review), "--images", str(src / "images"), "--masks", str(src / "masks")]) == 0
    store = ReviewStore.open(review)
    store.decide("a", "accepted", "Ann")
    store.close()
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"from last week")
    capsys.readouterr()
    assert main(["review-export", str(review), "--out", str(out)]) == 2
    line = one_line_error(capsys.readouterr().err, "review-export")
    assert "would be replaced" in line and "a.png" in line
    assert [p.name for p in out.iterdir()] == ["a.png"] and (out / "a.png").read_bytes() == b"from last week"

    assert main(["review-export", str(review), "--out", str(out), "--overwrite"]) == 0
    assert np.array_equal(np.asarray(Image.open(out / "a.png")), np.asarray(Image.open(src / "masks" / "a.png")))


def test_review_export_works_while_the_review_is_open_elsewhere(src, tmp_path, capsys):
    review = tmp_path / "review"
    assert main(["review-new", str(review), "--images", str(src / "images"), "--masks", str(src / "masks")]) == 0
    store = ReviewStore.open(review)  # a window has it open for editing
    try:
        store.decide("c", "accepted", "Ann")
        assert main(["review-export", str(review), "--out", str(tmp_path / "out")]) == 0
        assert (tmp_path / "out" / "c.png").exists()
        with pytest.raises(ReviewLockedError):  # the window still holds the review
            ReviewStore.open(review)
        store.decide("a", "accepted", "Ann")  # and can go on saving
    finally:
        store.close()


def test_review_export_of_a_folder_that_is_not_a_review(tmp_path, capsys):
    assert main(["review-export", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "not a review folder" in one_line_error(capsys.readouterr().err, "review-export")
    assert not (tmp_path / "out").exists()


def test_review_new_takes_a_run_folder_for_its_best_checkpoint(src, tmp_path, capsys):
    from app.core.demo_data import write_demo_dataset

    from .helpers import train_tiny_run

    run = train_tiny_run(write_demo_dataset(tmp_path / "data", count=4, size=48, val_fraction=0.5), tmp_path / "run")
    capsys.readouterr()
    images = write_demo_dataset(tmp_path / "new", count=2, size=48, val_fraction=0.5) / "val" / "images"
    assert main(["review-new", str(tmp_path / "review"), "--images", str(images), "--checkpoint", str(run),
                 "--device", "cpu"]) == 0
    store = ReviewStore.open(tmp_path / "review", read_only=True)
    assert store.record.source["checkpoint"] == str((run / "checkpoints" / "best.pt").resolve())
    assert len(store.cases) == len(list(images.iterdir()))


def test_review_export_exits_1_only_when_an_approved_mask_is_missing(src, tmp_path, capsys):
    review = tmp_path / "review"
    assert main(["review-new", str(review), "--images", str(src / "images"), "--masks", str(src / "masks")]) == 0
    store = ReviewStore.open(review)
    store.decide("a", "accepted", "Ann")
    store.decide("b", "rejected", "Ann")
    store.close()
    (src / "images" / "b.png").write_bytes(b"damaged")  # only the summary's picture of b is lost
    capsys.readouterr()
    assert main(["review-export", str(review), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "note: " in out and "b.png" in out and "not exported" not in out
    (src / "images" / "a.png").write_bytes(b"damaged")  # an approved case: the export is incomplete
    assert main(["review-export", str(review), "--out", str(tmp_path / "out2")]) == 1
    assert "not exported: " in capsys.readouterr().out and not (tmp_path / "out2" / "a.png").exists()
