"""A review folder on disk (app.core.review.store): creating it from folders or a checkpoint,
changes saved at once and atomically, the one-writer lock, and recovery after a crash."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from app.core import atomic
from app.core.postprocess import WatershedParams
from app.core.registry import RegistryError
from app.core.review import ReviewError, ReviewLockedError, ReviewRecord, ReviewStore
from app.core.review.lock import _user
from app.core.review.record import DEFAULT_REASONS, Decision, now_iso

from .helpers import binary_mask, make_folder, pattern, save

REPO = Path(__file__).resolve().parents[2]
H, W = 12, 16


# -- helpers -------------------------------------------------------------------------------------

def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def on_disk(folder: Path) -> ReviewRecord:
    """What a fresh reader sees (read-only, so it works while the writer holds the lock)."""
    return ReviewStore.open(folder, read_only=True).record


def tmp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.endswith(".tmp"))


def expected_stats(mask: np.ndarray) -> tuple[int, int]:
    binary = mask > 0
    return int(binary.sum()), int(ndimage.label(binary, structure=np.ones((3, 3)))[1])


def child(script: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=REPO, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def src(tmp_path) -> Path:
    return make_folder(tmp_path / "src", ["a", "b", "c"])


@pytest.fixture
def store(src, tmp_path):
    store = ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks")
    yield store
    store.close()


# -- creating from folders ---------------------------------------------------------------------

def test_create_from_folders_pairs_by_stem(src, tmp_path):
    store = ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks")
    try:
        assert [c.name for c in store.cases] == ["a", "b", "c"]
        for i, case in enumerate(store.cases):
            assert case.image == str((src / "images" / f"{case.name}.png").resolve())
            assert case.mask == str((src / "masks" / f"{case.name}.png").resolve())
            assert case.probability == "" and case.state == "unreviewed" and case.history == []
            assert (case.area, case.objects) == expected_stats(binary_mask(H, W, seed=i))
        record = store.record
        assert record.problems == [] and record.position == "a" and record.reasons == list(DEFAULT_REASONS)
        assert record.source == {"kind": "folders", "images": str((src / "images").resolve()),
                                 "masks": str((src / "masks").resolve())}
        assert record.watershed == WatershedParams().to_dict()
        assert sorted(p.name for p in (tmp_path / "review").iterdir()) == ["review.json", "review.lock",
                                                                            "review.owner.json"]
        assert on_disk(tmp_path / "review") == record
        assert not store.read_only
    finally:
        store.close()


def test_mask_names_with_suffixes_pair_and_watershed_setting_is_kept(tmp_path):
    make_folder(tmp_path / "src", ["x1", "x2"], mask_suffix="_mask", mask_ext=".tif")
    store = ReviewStore.create_from_folders(tmp_path / "r", tmp_path / "src/images", tmp_path / "src/masks",
                                            watershed={"threshold": 0.3, "fill_holes": True})
    store.close()
    record = on_disk(tmp_path / "r")
    assert [(c.name, Path(c.mask).name) for c in record.cases] == [("x1", "x1_mask.tif"), ("x2", "x2_mask.tif")]
    assert record.watershed == WatershedParams(threshold=0.3, fill_holes=True).to_dict()


def test_unreadable_and_wrong_size_masks_are_problems_and_left_out(tmp_path):
    src = make_folder(tmp_path / "src", ["a", "b", "c", "d"])
    (src / "masks" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a picture")
    save(src / "masks" / "c.png", np.zeros((H - 2, W), np.uint8))
    (src / "masks" / "d.png").unlink()  # an image without a mask
    save(src / "masks" / "e.png", binary_mask(H, W))  # a mask without an image
    store = ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks")
    store.close()
    record = on_disk(tmp_path / "review")
    assert [c.name for c in record.cases] == ["a"]
    problems = {Path(p["path"]).relative_to(src.resolve()).as_posix(): p["reason"] for p in record.problems}
    assert sorted(problems) == ["images/d.png", "masks/b.png", "masks/c.png", "masks/e.png"]
    assert problems["masks/b.png"].endswith("; case left out")
    assert problems["masks/c.png"] == "mask is 16×10 but its image is 16×12; case left out"
    assert "without a mask" in problems["images/d.png"]
    assert "without a matching image" in problems["masks/e.png"]


def test_colour_coded_masks_read_their_coloured_pixels_as_foreground(tmp_path):
    """Red, green or blue on black, and a palette PNG, all give the drawn shape (by luminance,
    red would be 76 of 255 and the whole mask would read as background)."""
    src = make_folder(tmp_path / "src", ["red", "blue", "palette", "gray"])
    shape = binary_mask(H, W) > 0
    for name, channel in (("red", 0), ("blue", 2)):
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[shape, channel] = 255
        save(src / "masks" / f"{name}.png", rgb)
    save(src / "masks" / "gray.png", shape.astype(np.uint8) * np.uint8(255))
    indexed = Image.fromarray(shape.astype(np.uint8), mode="P")
    indexed.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    (src / "masks" / "palette.png").unlink()
    indexed.save(src / "masks" / "palette.png")
    store = ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks")
    try:
        assert [c.name for c in store.record.cases] == ["blue", "gray", "palette", "red"]
        for case in store.record.cases:
            assert (case.area, case.objects) == expected_stats(shape), case.name
            data = store.load_case(case.name)
            assert np.array_equal(data.prediction, shape.view(np.uint8)), case.name
    finally:
        store.close()


def test_dark_class_colours_and_16_bit_0_1_masks_are_foreground(tmp_path):
    """A dark class colour (64, 0, 0), a colour per cell, and a 16-bit 0/1 mask read as empty."""
    src = make_folder(tmp_path / "src", ["dark", "cells", "deep"])
    shape = binary_mask(H, W) > 0
    dark = np.zeros((H, W, 3), np.uint8)
    dark[shape] = (64, 0, 0)
    save(src / "masks" / "dark.png", dark)
    cells = np.zeros((H, W, 3), np.uint8)
    cells[shape] = (120, 60, 90)
    cells[shape & (np.arange(W) > W // 2)] = (30, 110, 70)
    save(src / "masks" / "cells.png", cells)
    save(src / "masks" / "deep.png", shape.astype(np.uint16))
    store = ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks")
    try:
        for case in store.record.cases:
            assert (case.area, case.objects) == expected_stats(shape), case.name
            assert np.array_equal(store.load_case(case.name).prediction, shape.view(np.uint8)), case.name
    finally:
        store.close()


def test_outputs_of_segstudio_predict_are_not_problems(tmp_path):
    src = make_folder(tmp_path / "src", ["a", "b"])
    for name in ("a", "b"):
        save(src / "masks" / f"{name}_watershed.png", binary_mask(H, W))
        save(src / "masks" / f"{name}_overlay.png", pattern(H, W, channels=3))
    (src / "masks" / "predictions.json").write_text(json.dumps(
        {"checkpoint": "/runs/liver/checkpoints/best.pt", "model": "unet", "experiment": "liver",
         "images": "/data/liver"}))
    store = ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks")
    store.close()
    record = on_disk(tmp_path / "review")
    assert record.problems == []
    assert [c.name for c in record.cases] == ["a", "b"]
    assert record.source == {"kind": "folders", "images": str((src / "images").resolve()),
                             "masks": str((src / "masks").resolve()),
                             "checkpoint": "/runs/liver/checkpoints/best.pt", "model": "unet"}


def test_given_clean_up_settings_replace_only_their_entries_of_the_runs(tmp_path):
    src = make_folder(tmp_path / "src", ["a"])
    (src / "masks" / "predictions.json").write_text(json.dumps(
        {"model": "unet", "postprocess": {"foreground_fraction": 0.4, "min_object_size": 9}}))
    store = ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks",
                                            watershed={"min_object_size": 2, "fill_holes": True})
    store.close()
    assert on_disk(tmp_path / "review").watershed == WatershedParams(
        foreground_fraction=0.4, min_object_size=2, fill_holes=True).to_dict()
    built = []  # a bad setting is refused before any case is built (or, from a checkpoint, predicted)
    with pytest.raises(RegistryError, match="no parameter fraction"):
        ReviewStore.create_from_folders(tmp_path / "other", src / "images", src / "masks", watershed={"fraction": 1},
                                        progress=lambda done, total: built.append(done))
    assert not (tmp_path / "other").exists() and built == []


def test_clean_up_settings_cannot_change_what_an_accepted_case_exports(store):
    folder = store.folder
    store.decide("a", "accepted", "Ann", variant="watershed")
    store.decide("b", "accepted", "Ann", variant="prediction")
    store.save_correction("c", np.ones((H, W), np.uint8), "Ann")
    before = store.export_mask(store.case("a")).copy()
    with pytest.raises(ReviewError, match=r"1 accepted case exports the watershed mask made with the current "
                                          r"settings \(a\); accept it on the prediction or set it back"):
        store.set_watershed(WatershedParams(foreground_fraction=0.2))
    assert on_disk(folder).watershed == WatershedParams().to_dict()
    assert np.array_equal(store.export_mask(store.case("a")), before)
    assert store.watershed_exports() == ["a"]
    store.set_watershed(WatershedParams())  # the same settings again: nothing changes, nothing refused
    # a correction does not lift the lock: dropping it makes the case export its clean-up again
    store.save_correction("a", np.ones((H, W), np.uint8), "Ann")
    assert store.case("a").state == "corrected" and store.watershed_exports() == ["a"]
    with pytest.raises(ReviewError, match=r"\(a\)"):
        store.set_watershed(WatershedParams(foreground_fraction=0.2))
    store.revert_correction("a", "Ann")
    assert store.case("a").state == "accepted" and np.array_equal(store.export_mask(store.case("a")), before)
    store.decide("a", "unreviewed", "Ann")
    store.set_watershed(WatershedParams(foreground_fraction=0.2))  # b exports its prediction, c its correction
    assert store.watershed_params == WatershedParams(foreground_fraction=0.2)
    assert on_disk(folder).watershed == WatershedParams(foreground_fraction=0.2).to_dict()


def test_other_stray_files_are_still_reported(tmp_path):
    src = make_folder(tmp_path / "src", ["a"])
    (src / "masks" / "notes.txt").write_text("hi")
    (src / "masks" / "predictions.json").write_text("{not json")  # damaged manifest: no model, no problem
    store = ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks")
    store.close()
    record = on_disk(tmp_path / "review")
    assert [Path(p["path"]).name for p in record.problems] == ["notes.txt"]
    assert "model" not in record.source and "checkpoint" not in record.source


@pytest.mark.parametrize("where", ["images/review", "masks", "images", "masks/deeper/review"])
def test_review_folder_inside_a_source_folder_is_refused(src, where):
    before = snapshot(src)
    with pytest.raises(ReviewError, match="inside the source folder"):
        ReviewStore.create_from_folders(src / where, src / "images", src / "masks")
    assert snapshot(src) == before


def test_non_empty_review_folder_is_refused(src, tmp_path):
    (tmp_path / "review").mkdir()
    (tmp_path / "review" / "keep.txt").write_text("mine")
    with pytest.raises(ReviewError, match="not an empty folder"):
        ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks")
    assert [p.name for p in (tmp_path / "review").iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReviewError, match="not an empty folder"):
        ReviewStore.create_from_folders(tmp_path / "file", src / "images", src / "masks")


def test_empty_images_folder_is_refused_and_nothing_is_left(tmp_path):
    (tmp_path / "src" / "images").mkdir(parents=True)
    save(tmp_path / "src" / "masks" / "a.png", binary_mask(H, W))
    with pytest.raises(ReviewError, match="contains no images"):
        ReviewStore.create_from_folders(tmp_path / "review", tmp_path / "src/images", tmp_path / "src/masks")
    assert not (tmp_path / "review").exists()
    with pytest.raises(ReviewError, match="folder not found"):
        ReviewStore.create_from_folders(tmp_path / "review", tmp_path / "nope", tmp_path / "src/masks")
    assert not (tmp_path / "review").exists()


def test_the_same_folder_for_images_and_masks_is_refused(tmp_path):
    src = make_folder(tmp_path / "src", ["a", "b"])
    with pytest.raises(ReviewError, match="the images and the masks are the same folder"):
        ReviewStore.create_from_folders(tmp_path / "new", src / "images", src / "images" / ".." / "images")
    assert not (tmp_path / "new").exists()


def test_a_predict_folder_reviewed_with_other_images_of_the_same_names_leaves_those_out(tmp_path):
    """predictions.json records the images folder the masks were predicted from; another folder
    whose same-named files differ paired masks with images they were not predicted from."""
    import json
    import shutil

    src = make_folder(tmp_path / "src", ["a", "b"])
    (src / "masks" / "predictions.json").write_text(json.dumps({"images": str(src / "images"), "outputs": [
        {"image": "a.png", "mask": "a.png", "probability": None},
        {"image": "b.png", "mask": "b.png", "probability": None}]}))
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(src / "images" / "a.png", other / "a.png")  # a copy: the same image
    shutil.copy(src / "images" / "a.png", other / "b.png")  # same name as b, another picture
    store = ReviewStore.create_from_folders(tmp_path / "review", other, src / "masks")
    try:
        assert [c.name for c in store.cases] == ["a"]
        assert store.record.problems == [{"path": str(other / "b.png"), "reason": (
            f"not the image b.png was predicted from (that is {src / 'images' / 'b.png'}, per predictions.json); "
            "left out")}]
    finally:
        store.close()


def test_failed_creation_leaves_no_review_folder_behind(tmp_path):
    src = make_folder(tmp_path / "src", ["a", "b"])
    for name in ("a", "b"):
        (src / "masks" / f"{name}.png").write_bytes(b"broken")
    with pytest.raises(ReviewError, match="no readable image and mask pairs") as info:
        ReviewStore.create_from_folders(tmp_path / "new", src / "images", src / "masks")
    assert "(masks/a.png: " in str(info.value) and "; masks/b.png: " in str(info.value)  # why, not only that
    assert "left out" not in str(info.value)
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()  # a chosen empty folder stays, and stays empty
    with pytest.raises(ReviewError):
        ReviewStore.create_from_folders(tmp_path / "empty", src / "images", src / "masks")
    assert list((tmp_path / "empty").iterdir()) == []


def test_cancelled_creation_leaves_nothing(src, tmp_path):
    calls = []
    with pytest.raises(ReviewError, match="cancelled"):
        ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks",
                                        progress=lambda done, total: calls.append((done, total)),
                                        should_stop=lambda: len(calls) >= 2)
    assert calls == [(1, 3), (2, 3)]
    assert not (tmp_path / "review").exists()


def test_source_files_are_never_changed(src, tmp_path):
    from app.core.review.export import export_review

    before = snapshot(src)
    store = ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks")
    store.decide("a", "accepted", "Ann", variant="watershed")
    store.decide("b", "rejected", "Ann", comment="no")
    corrected = np.zeros((H, W), np.uint8)
    corrected[3:6, 4:9] = 1
    store.save_correction("c", corrected, "Ann")
    store.revert_correction("c", "Ann")
    store.save_correction("c", corrected, "Ann")
    store.set_comment("a", "fine", "Ann")
    export_review(store, tmp_path / "out", "png")
    export_review(store, tmp_path / "out", "tiff", overwrite=True)
    store.close()
    assert snapshot(src) == before


# -- changes are saved at once ---------------------------------------------------------------------

def test_decide_saves_at_once_with_history(store):
    folder = store.folder
    start = now_iso()
    case = store.decide("a", "accepted", "Dr Ng", comment="clean", variant="watershed", stats=(40, 3))
    end = now_iso()
    assert start <= case.decided_at <= end
    disk = on_disk(folder).case("a")
    assert disk == case
    assert (disk.state, disk.reviewer, disk.comment, disk.variant, disk.area, disk.objects) == \
        ("accepted", "Dr Ng", "clean", "watershed", 40, 3)
    assert disk.history == [Decision("accepted", "Dr Ng", case.decided_at, "", "clean")]

    store.decide("a", "rejected", "Dr Ali", reason="False positive")
    disk = on_disk(folder).case("a")
    assert (disk.state, disk.reason, disk.reviewer, disk.comment) == ("rejected", "False positive", "Dr Ali", "clean")
    assert [(d.state, d.reviewer, d.reason) for d in disk.history] == [("accepted", "Dr Ng", ""),
                                                                        ("rejected", "Dr Ali", "False positive")]
    store.decide("a", "needs_edit", "Dr Ali", reason="ignored", comment="")
    disk = on_disk(folder).case("a")
    assert (disk.state, disk.reason, disk.comment, disk.variant) == ("needs_edit", "", "", "prediction")
    assert len(disk.history) == 3


def test_rejected_without_a_reason_records_none(store):
    """It recorded the list's first reason ("Poor boundary"), which nobody had chosen."""
    assert store.decide("a", "rejected", "Ann").reason == ""
    store.set_reasons(["  Blurry ", "Other", "Blurry", ""])
    assert on_disk(store.folder).reasons == ["Blurry", "Other"]
    store.decide("b", "rejected", "Ann", reason="Blurry")
    disk = on_disk(store.folder)
    assert disk.case("b").reason == "Blurry" and disk.case("b").history[-1].reason == "Blurry"
    assert disk.case("a").reason == "" and disk.case("a").history[-1].reason == ""


@pytest.mark.parametrize("state, reviewer, variant, message", [
    ("corrected", "Ann", "prediction", "cannot set state 'corrected'"),
    ("approved", "Ann", "prediction", "cannot set state 'approved'"),
    ("accepted", "", "prediction", "reviewer's name"),
    ("accepted", "   ", "prediction", "reviewer's name"),
    ("accepted", "Ann", "sketch", "unknown mask 'sketch'"),
])
def test_bad_decisions_are_refused_and_change_nothing(store, state, reviewer, variant, message):
    before = (store.folder / "review.json").read_bytes()
    with pytest.raises(ReviewError, match=message):
        store.decide("a", state, reviewer, variant=variant)
    assert (store.folder / "review.json").read_bytes() == before
    assert store.case("a").state == "unreviewed" and store.case("a").history == []
    with pytest.raises(ReviewError, match="no case"):
        store.decide("zz", "accepted", "Ann")


def test_correction_is_saved_and_reverted(store):
    folder = store.folder
    store.decide("b", "rejected", "Ann", reason="Missed structure")
    store.set_comment("b", "the upper edge too", "Bo")  # a comment's history entry is no rejection reason
    mask = np.zeros((H, W), bool)
    mask[2:5, 3:7] = True
    mask[8, 10] = True
    case = store.save_correction("b", mask, "Bo")
    assert (case.state, case.corrected, case.state_before_correction, case.reason) == \
        ("corrected", "corrections/b.png", "rejected", "")
    assert (case.area, case.objects) == (13, 2)
    written = Image.open(folder / "corrections" / "b.png")
    assert written.mode == "1"  # 1-bit: quick to write after every stroke; 0/255 to other programs
    assert np.asarray(written.convert("L")).tolist() == (mask * 255).astype(np.uint8).tolist()
    assert on_disk(folder).case("b") == case
    assert store.load_case("b").corrected.tolist() == mask.astype(np.uint8).tolist()

    mask[0, 0] = True  # a second correction keeps the state from before the first
    case = store.save_correction("b", mask.astype(np.uint8), "Bo")
    assert (case.state_before_correction, case.area, case.objects) == ("rejected", 14, 3)
    labels = np.where(mask, 7, -1).astype(np.int32)  # any other type: foreground is > 0
    case = store.save_correction("b", labels, "Bo", stats=(14, 3))  # counts the caller already has
    assert (case.area, case.objects) == (14, 3)
    assert store.load_case("b").corrected.tolist() == mask.astype(np.uint8).tolist()

    case = store.revert_correction("b", "Bo")
    assert (case.state, case.corrected, case.reason) == ("rejected", "", "Missed structure")
    assert not (folder / "corrections" / "b.png").exists()
    disk = on_disk(folder).case("b")
    assert disk == case
    assert [d.state for d in disk.history] == ["rejected", "rejected", "corrected", "corrected", "corrected",
                                               "rejected"]
    assert store.load_case("b").corrected is None
    assert store.revert_correction("b", "Bo") == case  # nothing to revert: unchanged
    assert len(on_disk(folder).case("b").history) == 6


def test_comment_position_reasons_and_watershed_are_saved_at_once(store):
    folder = store.folder
    store.set_comment("c", "look at the corner", "Ann")
    disk = on_disk(folder).case("c")
    assert (disk.comment, disk.reviewer, disk.state) == ("look at the corner", "", "unreviewed")
    assert [(h.state, h.reviewer, h.reason, h.comment) for h in disk.history] == [
        ("unreviewed", "Ann", "comment", "look at the corner")]
    store.set_comment("c", "look at the left corner", "Ann")  # still editing: the same entry
    assert [h.comment for h in on_disk(folder).case("c").history] == ["look at the left corner"]
    store.set_position("c")
    assert on_disk(folder).position == "c"
    with pytest.raises(ReviewError, match="at least one"):
        store.set_reasons([" ", ""])
    assert on_disk(folder).reasons == list(DEFAULT_REASONS)
    store.set_reasons(["Too dark"])
    assert on_disk(folder).reasons == ["Too dark"]
    store.set_watershed(WatershedParams(threshold=0.7, min_object_size=4))
    assert on_disk(folder).watershed == WatershedParams(threshold=0.7, min_object_size=4).to_dict()
    assert store.watershed_params == WatershedParams(threshold=0.7, min_object_size=4)


def test_changes_survive_closing_and_reopening(store):
    folder = store.folder
    store.decide("a", "accepted", "Ann")
    store.decide("b", "needs_edit", "Ann", comment="later")
    store.save_correction("c", np.ones((H, W), np.uint8), "Ann")
    store.set_position("b")
    expected = store.record.to_json()
    store.close()
    again = ReviewStore.open(folder)
    try:
        assert again.record.to_json() == expected
        assert [c.state for c in again.cases] == ["accepted", "needs_edit", "corrected"]
    finally:
        again.close()


def test_read_only_store_refuses_every_change(store):
    folder = store.folder
    store.decide("a", "accepted", "Ann")
    before = snapshot(folder)
    reader = ReviewStore.open(folder, read_only=True)
    assert reader.read_only
    changes = [lambda: reader.decide("b", "accepted", "Ann"),
               lambda: reader.save_correction("b", np.ones((H, W), np.uint8), "Ann"),
               lambda: reader.revert_correction("a", "Ann"),
               lambda: reader.set_comment("b", "x", "Ann"),
               lambda: reader.set_reasons(["x"]),
               lambda: reader.set_watershed(WatershedParams()),
               reader.save]
    for change in changes:
        with pytest.raises(ReviewError, match="read-only"):
            change()
    reader.set_position("c")  # moving around a read-only review is allowed, but not saved
    assert snapshot(folder) == before
    assert not (folder / "corrections").exists()


def test_open_refuses_a_folder_without_a_review(tmp_path):
    with pytest.raises(ReviewError, match="not a review folder"):
        ReviewStore.open(tmp_path)
    (tmp_path / "review.json").write_text('{"format": "segstudio-review", "version": 99}')
    with pytest.raises(ReviewError, match="newer SegStudio"):
        ReviewStore.open(tmp_path)
    # a refused open does not keep the lock
    (tmp_path / "review.json").write_text(ReviewRecord([]).to_json())
    ReviewStore.open(tmp_path).close()


# -- the lock ---------------------------------------------------------------------------------------

def test_second_writer_is_refused_naming_the_owner(store):
    folder = store.folder
    with pytest.raises(ReviewLockedError) as info:
        ReviewStore.open(folder)
    message = str(info.value)
    assert _user() in message and socket.gethostname() in message and f"process {os.getpid()}" in message
    assert info.value.folder == folder and info.value.owner in message
    reader = ReviewStore.open(folder, read_only=True)  # reading is fine meanwhile
    assert [c.name for c in reader.cases] == ["a", "b", "c"]
    store.close()
    store.close()  # closing twice is harmless
    second = ReviewStore.open(folder)
    try:
        assert not second.read_only
        with pytest.raises(ReviewLockedError):
            ReviewStore.open(folder)
    finally:
        second.close()


HOLD_LOCK = """
import sys, time
from app.core.review import ReviewStore
store = ReviewStore.open(sys.argv[1])
print("open", flush=True)
time.sleep(120)
"""


def test_lock_of_a_killed_process_is_free_again(store):
    folder = store.folder
    store.close()
    proc = child(HOLD_LOCK, folder)
    try:
        assert proc.stdout.readline() == "open\n", proc.stderr.read()
        with pytest.raises(ReviewLockedError, match=f"process {proc.pid}"):
            ReviewStore.open(folder)
    finally:
        proc.kill()  # SIGKILL: no clean-up in the child
        proc.communicate(timeout=30)
    assert proc.returncode != 0
    again = ReviewStore.open(folder)
    again.close()


# -- atomic saves and recovery ----------------------------------------------------------------------

def test_a_save_that_fails_before_the_rename_keeps_the_previous_record(store, monkeypatch):
    folder = store.folder
    store.decide("a", "accepted", "Ann")
    before = (folder / "review.json").read_text()

    def no_rename(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(atomic.os, "replace", no_rename)
    with pytest.raises(OSError, match="power cut"):
        store.decide("b", "rejected", "Ann")
    monkeypatch.undo()
    assert (folder / "review.json").read_text() == before
    assert tmp_files(folder) == []
    assert [c.state for c in on_disk(folder).cases] == ["accepted", "unreviewed", "unreviewed"]


class CutWriter:
    """A file handle that writes ``keep(data)`` bytes of a write, then fails as if the process died there."""

    def __init__(self, handle, keep, after=None):
        self.handle, self.keep, self.after = handle, keep, after

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()
        return False

    def write(self, data):
        self.handle.write(data[: self.keep(data)])
        self.handle.flush()
        if self.after is not None:
            self.after(data)
        raise OSError("killed half-way")


def test_a_save_interrupted_half_way_through_writing_keeps_the_previous_record(store, monkeypatch):
    folder = store.folder
    store.decide("a", "accepted", "Ann")
    before = (folder / "review.json").read_text()
    real_fdopen = os.fdopen
    seen = []

    def record(data):
        seen.extend((p.name, p.stat().st_size, len(data)) for p in tmp_files(folder))

    monkeypatch.setattr(atomic.os, "fdopen",
                        lambda fd, mode: CutWriter(real_fdopen(fd, mode), lambda d: len(d) // 2, record))
    with pytest.raises(OSError, match="half-way"):
        store.decide("b", "rejected", "Ann", comment="x" * 500)
    monkeypatch.undo()
    assert len(seen) == 1 and seen[0][0].startswith(".review.json.") and seen[0][1] == seen[0][2] // 2
    assert (folder / "review.json").read_text() == before
    assert tmp_files(folder) == []
    assert on_disk(folder).case("b").state == "unreviewed"


def test_a_correction_interrupted_while_writing_the_mask_leaves_no_trace(store, monkeypatch):
    folder = store.folder
    before = (folder / "review.json").read_text()
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: CutWriter(real_fdopen(fd, mode), lambda d: 10))
    with pytest.raises(OSError):
        store.save_correction("a", np.ones((H, W), np.uint8), "Ann")
    monkeypatch.undo()
    assert (folder / "review.json").read_text() == before
    assert not (folder / "corrections" / "a.png").exists() and tmp_files(folder) == []


def test_orphan_correction_is_adopted_on_open(store):
    folder = store.folder
    store.decide("b", "rejected", "Ann", reason="Other")
    store.close()
    fix = np.zeros((H, W), np.uint8)
    fix[1:4, 1:4] = 255
    save(folder / "corrections" / "b.png", fix)  # written, but the record update was lost
    reopened = ReviewStore.open(folder)
    try:
        case = reopened.case("b")
        assert (case.state, case.corrected, case.state_before_correction) == \
            ("corrected", "corrections/b.png", "rejected")
        assert on_disk(folder).case("b") == case  # adopted for good
        assert reopened.load_case("b").corrected.tolist() == (fix > 0).astype(np.uint8).tolist()
        assert reopened.case("a").corrected == "" and reopened.case("a").state == "unreviewed"
        reopened.revert_correction("b", "Ann")
        assert reopened.case("b").state == "rejected"
    finally:
        reopened.close()


def test_correction_whose_record_update_was_interrupted_is_recovered(store, monkeypatch):
    folder = store.folder
    from app.core.review import store as store_module

    def crash(path, text):
        raise OSError("killed before the record was saved")

    monkeypatch.setattr(store_module, "atomic_write_text", crash)
    with pytest.raises(OSError):
        store.save_correction("c", np.ones((H, W), np.uint8), "Ann")
    monkeypatch.undo()
    store.close()
    assert on_disk(folder).case("c").corrected == ""  # the record never saw it...
    reopened = ReviewStore.open(folder)
    try:
        assert reopened.case("c").state == "corrected"  # ...but the correction is not lost
        assert reopened.load_case("c").corrected.tolist() == np.ones((H, W), np.uint8).tolist()
    finally:
        reopened.close()


def test_open_removes_stale_temporary_files_only_when_writable(store):
    folder = store.folder
    store.save_correction("a", np.ones((H, W), np.uint8), "Ann")
    store.close()
    stale = [folder / ".review.json.k3j2.tmp", folder / "corrections" / ".b.png.x9.tmp",
             folder / ".review.owner.json.zz.tmp"]
    for path in stale:
        path.write_bytes(b'{"format": "segstu')
    (folder / "notes.txt").write_text("mine")
    ReviewStore.open(folder, read_only=True)
    assert all(p.exists() for p in stale)
    reopened = ReviewStore.open(folder)
    reopened.close()
    assert tmp_files(folder) == []
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "corrections" / "a.png").exists()


DECIDE_FOREVER = """
import os, sys
from app.core import atomic
from app.core.review import ReviewStore
store = ReviewStore.open(sys.argv[1])
if sys.argv[3] == "pause":  # stop inside every save (temporary file written, not yet renamed)
    real_fsync = os.fsync
    def paused_fsync(fd):
        real_fsync(fd)
        print("in-save", flush=True)
        sys.stdin.readline()
    atomic.os.fsync = paused_fsync
names = [case.name for case in store.cases]
states = ("accepted", "rejected", "needs_edit", "unreviewed")
print("ready", flush=True)
i = int(sys.argv[2])
while True:
    store.decide(names[i % len(names)], states[i % len(states)], "bot", comment=str(i))
    print(i, flush=True)
    i += 1
"""


def test_killing_the_writer_at_any_moment_leaves_the_last_complete_state(store):
    """A child process decides as fast as it can and is SIGKILLed: after a few saves wherever it
    happens to be ("free"), or inside a save with the temporary file written ("pause").
    Decision i is stamped with comment i, so the record must hold decisions 0 .. n-1, each once:
    the state after some complete save, never a half-written one; open tidies the leftovers."""
    folder = store.folder
    store.close()
    rng = np.random.default_rng(7)
    saved = 0
    for mode in ("free", "pause", "free", "pause"):
        target = int(rng.integers(1, 30))
        proc = child(DECIDE_FOREVER, folder, saved, mode)
        done = []
        try:
            assert proc.stdout.readline() == "ready\n", proc.stderr.read()
            while len(done) < target:
                line = proc.stdout.readline().strip()
                if line == "in-save":
                    proc.stdin.write("\n")
                    proc.stdin.flush()
                else:
                    done.append(int(line))
            if mode == "pause":
                assert proc.stdout.readline() == "in-save\n"
        finally:
            proc.kill()  # SIGKILL: nothing in the child gets to clean up
            out, _ = proc.communicate(timeout=30)
        done += [int(v) for v in out.split() if v != "in-save"]  # saves that had completed
        if mode == "pause":
            assert len(tmp_files(folder)) == 1  # the save in progress left its temporary file
            assert sum(len(c.history) for c in on_disk(folder).cases) == saved + len(done)
        reopened = ReviewStore.open(folder)
        try:
            assert tmp_files(folder) == []  # tidied on open
            record = ReviewRecord.from_json((folder / "review.json").read_text())
            assert record == reopened.record
            decisions = sorted(int(d.comment) for c in record.cases for d in c.history)
            assert decisions == list(range(len(decisions)))
            assert saved + len(done) <= len(decisions) <= saved + len(done) + (mode == "free")
            for case in record.cases:
                last = case.history[-1]
                assert (case.state, case.comment, case.reviewer, case.decided_at) == \
                    (last.state, last.comment, "bot", last.time)
        finally:
            reopened.close()
        saved = len(decisions)
    assert saved >= 4


# -- creating from a checkpoint ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A depth-2 U-Net checkpoint in the training engine's format, with its own clean-up settings.
    Its output bias is set so that about half of each image is predicted foreground (an
    untrained or one-epoch model predicts background everywhere, which would test little)."""
    import torch

    from app.core.config import ExperimentConfig, ModelConfig
    from app.core.imageio import read_image
    from app.core.models import build_model
    from app.core.predictor import Predictor
    from app.core.training.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("review_ckpt")
    images = root / "images"
    for i, name in enumerate(["cell_1", "cell_2"]):
        save(images / f"{name}.png", pattern(32, 32, seed=i))
    torch.manual_seed(0)
    model = build_model("unet", 1, 2, depth=2, base_width=4)
    config = ExperimentConfig(name="tiny-review", model=ModelConfig("unet", {"depth": 2, "base_width": 4}),
                              postprocess={"threshold": 0.4, "min_object_size": 7})
    checkpoint = root / "run" / "best.pt"
    checkpoint.parent.mkdir()

    def write():
        save_checkpoint(checkpoint, {"model_name": "unet", "model_state": model.state_dict(),
                                     "config": config.to_dict(), "in_channels": 1, "num_classes": 2,
                                     "normaliser": {"mean": [0.0], "std": [255.0]}, "image_dtype": "uint8"})

    write()
    predictor = Predictor.from_checkpoint(checkpoint, "cpu")
    p1 = np.concatenate([predictor.predict(read_image(path)).probabilities[1].ravel()
                         for path in sorted(images.iterdir())]).astype(np.float64)
    with torch.no_grad():
        model.head.bias[1] -= float(np.median(np.log(p1 / (1 - p1))))
    write()
    return images, checkpoint


def test_create_from_checkpoint_predicts_into_the_review_folder(trained, tmp_path):
    from app.core.imageio import read_image
    from app.core.predictor import Predictor
    from app.core.review.case_data import mask_stats

    images, checkpoint = trained
    before = snapshot(images)
    store = ReviewStore.create_from_checkpoint(tmp_path / "review", checkpoint, images, device="cpu")
    store.close()
    folder = tmp_path / "review"
    names = sorted(p.stem for p in images.iterdir())
    assert len(names) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["predictions", "probabilities", "review.json",
                                                        "review.lock", "review.owner.json"]
    record = on_disk(folder)
    assert record.source == {"kind": "checkpoint", "images": str(images.resolve()),
                             "checkpoint": str(checkpoint.resolve()), "model": "unet", "experiment": "tiny-review"}
    assert record.watershed == WatershedParams(threshold=0.4, min_object_size=7).to_dict()
    predictor = Predictor.from_checkpoint(checkpoint, "cpu")
    for name, case in zip(names, record.cases):
        assert (case.name, case.image) == (name, str((images / f"{name}.png").resolve()))
        assert (case.mask, case.probability) == (f"predictions/{name}.png", f"probabilities/{name}.png")
        prediction = predictor.predict(read_image(images / f"{name}.png"))
        mask = read_image(folder / case.mask)
        assert mask.dtype == np.uint8 and mask.shape == (32, 32)
        assert 0.2 < (mask > 0).mean() < 0.8  # a prediction worth comparing
        assert np.array_equal(mask, (prediction.labels > 0).astype(np.uint8) * 255)
        prob = read_image(folder / case.probability)
        expected = np.clip(prediction.probabilities[1] * 255 + 0.5, 0, 255).astype(np.uint8)
        assert np.abs(prob.astype(int) - expected).max() <= 1
        assert (case.area, case.objects) == mask_stats(mask)
    assert snapshot(images) == before


def test_create_from_checkpoint_with_explicit_watershed_and_refusals(trained, tmp_path):
    from app.core.training.checkpoint import CheckpointError

    images, checkpoint = trained
    store = ReviewStore.create_from_checkpoint(tmp_path / "review", checkpoint, images, device="cpu",
                                               watershed={"threshold": 0.6})
    store.close()
    # the given threshold replaces the run's; the run's other settings stay
    assert on_disk(tmp_path / "review").watershed == WatershedParams(threshold=0.6, min_object_size=7).to_dict()
    with pytest.raises(ReviewError, match="inside the source folder"):
        ReviewStore.create_from_checkpoint(images / "review", checkpoint, images, device="cpu")
    assert not (images / "review").exists()
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        ReviewStore.create_from_checkpoint(tmp_path / "new", tmp_path / "bad.pt", images, device="cpu")
    assert not (tmp_path / "new").exists()
    (tmp_path / "none").mkdir()
    with pytest.raises(ReviewError, match="no images"):
        ReviewStore.create_from_checkpoint(tmp_path / "new", checkpoint, tmp_path / "none", device="cpu")
    assert not (tmp_path / "new").exists()
    (tmp_path / "broken").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "broken" / f"{name}.png").write_bytes(b"not a picture")
    with pytest.raises(ReviewError, match=r"none of the images in .*broken could be predicted \(broken/a.png: "
                                          r".*; broken/b.png: .*; and 1 more\)"):
        ReviewStore.create_from_checkpoint(tmp_path / "new", checkpoint, tmp_path / "broken", device="cpu")


def test_adopted_correction_gets_its_area_and_a_history_entry(store):
    folder = store.folder
    store.close()
    fix = np.zeros((H, W), np.uint8)
    fix[1:4, 1:4] = 255
    fix[6:8, 6:8] = 255
    save(folder / "corrections" / "a.png", fix)
    reopened = ReviewStore.open(folder)
    try:
        case = reopened.case("a")
        assert (case.area, case.objects) == (13, 2)
        assert case.history[-1].state == "corrected" and "recovered" in case.history[-1].comment
    finally:
        reopened.close()


def test_revert_interrupted_after_removing_the_file_is_finished_on_open(store):
    mask = np.zeros((H, W), np.uint8)
    mask[0, 0] = 1
    store.decide("a", "needs_edit", "Ann")
    store.save_correction("a", mask, "Ann")
    folder = store.folder
    store.close()
    (folder / "corrections" / "a.png").unlink()  # the revert removed the file, then the app died
    reopened = ReviewStore.open(folder)
    try:
        assert (reopened.case("a").state, reopened.case("a").corrected) == ("needs_edit", "")
        assert on_disk(folder).case("a").state == "needs_edit"
        assert reopened.load_case("a").corrected is None
    finally:
        reopened.close()


def test_a_change_that_cannot_be_saved_is_not_kept_in_memory(store, monkeypatch):
    from app.core.review import store as store_module

    store.decide("a", "accepted", "Ann")

    def disk_full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "atomic_write_text", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.decide("b", "rejected", "Ann", comment="lost")
    assert store.case("b").state == "unreviewed" and store.case("b").comment == ""
    assert store.case("a").state == "accepted"  # what was saved before stays
    monkeypatch.undo()
    assert on_disk(store.folder).case("b").state == "unreviewed"


def test_a_comment_by_someone_else_keeps_who_decided(store):
    store.decide("a", "accepted", "Dr A")
    decided_at = store.case("a").decided_at
    store.set_comment("a", "agree", "Dr B")
    case = on_disk(store.folder).case("a")
    assert (case.reviewer, case.decided_at, case.comment) == ("Dr A", decided_at, "agree")
    assert [(h.reviewer, h.reason) for h in case.history] == [("Dr A", ""), ("Dr B", "comment")]


def test_file_stems_are_unique_and_safe():
    from app.core.review.store import unique_file_stems

    stems = unique_file_stems(["a", "a b", "a_b", "A", "x/y", "plain"])
    assert stems["plain"] == "plain"
    assert len({s.lower() for s in stems.values()}) == 6
    assert stems["a b"].startswith("a_b-") and stems["a_b"].startswith("a_b-")
    assert "/" not in stems["x/y"] and stems["a"] != stems["A"]


def test_a_cases_clean_up_keeps_no_intermediate_steps(store):
    """The review never shows the clean-up's steps; kept per cached case they would cost
    hundreds of megabytes for large images."""
    from app.core.postprocess import watershed_postprocess

    data = store.load_case("a")
    params = WatershedParams(foreground_fraction=0.3)
    cleaned = data.watershed(params)
    full = watershed_postprocess(data.source_gray, params)
    assert cleaned.steps == [] and len(full.steps) >= 10
    assert np.array_equal(cleaned.mask, full.mask) and np.array_equal(cleaned.labels, full.labels)
