"""Exporting a review (app.core.review.export): approved masks as PNG or TIFF, the CSV report
and the printable HTML summary; conflicts and protected folders."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from app.core.postprocess import WatershedParams, watershed_postprocess
from app.core.review import ReviewError, ReviewStore
from app.core.review.export import CSV_COLUMNS, conflicts, describe_conflicts, export_review, planned_files

from .helpers import make_folder

NAMES = ["a", "b", "c", "d", "e", "f", "g"]
SIZE = 32
PARAMS = WatershedParams(dilate_iterations=1, min_object_size=3)
CHECKPOINT = "/runs/liver/checkpoints/best.pt"


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "L"
        return np.asarray(image).copy()


def source_mask(src: Path, name: str) -> np.ndarray:
    return np.asarray(Image.open(src / "masks" / f"{name}.png"))


CORRECTION = np.zeros((SIZE, SIZE), np.uint8)
CORRECTION[4:12, 5:20] = 1
CORRECTION[20:23, 20:30] = 1


@pytest.fixture
def review(tmp_path):
    """Seven cases: a accepted, b accepted on the watershed view, c corrected (was rejected),
    d and e rejected, f needs an edit, g unreviewed."""
    src = make_folder(tmp_path / "src", NAMES, size=(SIZE, SIZE))
    (src / "masks" / "predictions.json").write_text(json.dumps({"checkpoint": CHECKPOINT, "model": "unet"}))
    store = ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks")
    store.set_watershed(PARAMS)
    store.decide("a", "accepted", "Ann", comment="ok")
    store.decide("b", "accepted", "Ann", variant="watershed")
    store.decide("c", "rejected", "Bo", reason="Poor boundary")
    store.save_correction("c", CORRECTION, "Bo")
    store.decide("d", "rejected", "Bo", reason="False positive", comment="<b>bad</b> & worse")
    store.decide("e", "rejected", "Ann", reason="Poor boundary")
    store.decide("f", "needs_edit", "Ann", comment="later, maybe")
    yield store, src, tmp_path
    store.close()


def test_png_export_writes_only_accepted_and_corrected_masks(review):
    store, src, tmp_path = review
    out = tmp_path / "out"
    result = export_review(store, out, "png")
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "review_report.csv",
                                                     "review_summary.html"]
    assert [p.name for p in result.masks] == ["a.png", "b.png", "c.png"]
    assert result.report == out / "review_report.csv" and result.summary == out / "review_summary.html"
    assert result.problems == [] and result.folder == out

    a = read_png(out / "a.png")
    assert a.dtype == np.uint8 and a.shape == (SIZE, SIZE) and set(np.unique(a)) == {0, 255}
    assert np.array_equal(a, source_mask(src, "a"))  # the prediction as it was

    b = read_png(out / "b.png")
    predicted_b = source_mask(src, "b")
    cleaned = watershed_postprocess(predicted_b, PARAMS).mask * np.uint8(255)
    assert np.array_equal(b, cleaned)  # the watershed view it was accepted on, with the review's settings
    assert not np.array_equal(b, predicted_b)
    assert not np.array_equal(b, watershed_postprocess(predicted_b, WatershedParams()).mask * np.uint8(255))

    assert np.array_equal(read_png(out / "c.png"), CORRECTION * np.uint8(255))  # the correction


def test_tiff_export(review):
    store, src, tmp_path = review
    out = tmp_path / "out"
    export_review(store, out, "tiff")
    assert sorted(p.name for p in out.iterdir()) == ["a.tif", "b.tif", "c.tif", "review_report.csv",
                                                     "review_summary.html"]
    for name in ("a", "c"):
        array = tifffile.imread(out / f"{name}.tif")
        assert array.dtype == np.uint8 and set(np.unique(array)) == {0, 255}
    assert np.array_equal(tifffile.imread(out / "a.tif"), source_mask(src, "a"))
    assert np.array_equal(tifffile.imread(out / "c.tif"), CORRECTION * np.uint8(255))
    with open(out / "review_report.csv", newline="") as handle:
        assert [row["exported_mask"] for row in csv.DictReader(handle)] == ["a.tif", "b.tif", "c.tif", "", "",
                                                                             "", ""]


def test_csv_report_has_a_row_per_case_with_exact_values(review):
    store, src, tmp_path = review
    export_review(store, tmp_path / "out")
    text = (tmp_path / "out" / "review_report.csv").read_text(encoding="utf-8")
    with io.StringIO(text, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = {row["name"]: row for row in reader}
    assert list(rows) == NAMES
    pick = ("state", "reason", "comment", "reviewer", "corrected", "exported_mask", "mask_source")
    assert {n: tuple(rows[n][k] for k in pick) for n in NAMES} == {
        "a": ("accepted", "", "ok", "Ann", "no", "a.png", "prediction"),
        "b": ("accepted", "", "", "Ann", "no", "b.png", "watershed"),
        "c": ("corrected", "", "", "Bo", "yes", "c.png", "correction"),
        "d": ("rejected", "False positive", "<b>bad</b> & worse", "Bo", "no", "", "prediction"),
        "e": ("rejected", "Poor boundary", "", "Ann", "no", "", "prediction"),
        "f": ("needs_edit", "", "later, maybe", "Ann", "no", "", "prediction"),
        "g": ("unreviewed", "", "", "", "no", "", "prediction"),
    }
    for name in NAMES:
        case = store.case(name)
        row = rows[name]
        assert (row["time"], row["image"]) == (case.decided_at, case.image)
        assert (row["model"], row["checkpoint"]) == ("unet", CHECKPOINT)
    # areas: of the exported mask for exported cases, else the record's (the prediction's)
    b = read_png(tmp_path / "out" / "b.png") > 0
    assert (rows["b"]["mask_area"], rows["c"]["mask_area"], rows["c"]["object_count"]) == \
        (str(int(b.sum())), "150", "2")
    assert rows["d"]["mask_area"] == str(int((source_mask(src, "d") > 0).sum()))
    assert rows["g"]["time"] == "" and rows["g"]["mask_area"] == str(store.case("g").area)


def test_html_summary_has_counts_and_one_image_per_rejected_case(review):
    store, src, tmp_path = review
    export_review(store, tmp_path / "out")
    page = (tmp_path / "out" / "review_summary.html").read_text(encoding="utf-8")
    assert "<h2>5 of 7 cases reviewed</h2>" in page
    for label, count in (("Unreviewed", 1), ("Accepted", 2), ("Rejected", 2), ("Needs edit", 1), ("Corrected", 1)):
        assert f"<tr><td>{label}</td><td class=n>{count}</td></tr>" in page
    assert "<td class=n><b>7</b></td>" in page
    assert "<h2>Rejected cases (2)</h2>" in page
    images = re.findall(r"<img src='data:image/png;base64,([^']+)' alt='([^']*)'>", page)
    assert [alt for _, alt in images] == ["d", "e"]
    assert page.count("<img") == 2
    for data, _ in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as thumb:
            assert thumb.format == "PNG" and thumb.size == (SIZE, SIZE) and thumb.mode == "RGB"
    assert "&lt;b&gt;bad&lt;/b&gt; &amp; worse" in page and "<b>bad</b>" not in page
    assert "False positive" in page
    assert "<td>Ann, Bo</td>" in page and f"unet · {CHECKPOINT}" in page


def test_summary_without_rejections_says_none(tmp_path):
    src = make_folder(tmp_path / "src", ["a"])
    store = ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks")
    store.close()
    reader = ReviewStore.open(tmp_path / "review", read_only=True)
    result = export_review(reader, tmp_path / "out")
    assert result.masks == []
    page = result.summary.read_text(encoding="utf-8")
    assert "<h2>0 of 1 cases reviewed</h2>" in page and "<p>None.</p>" in page and "<img" not in page
    assert "<td>none yet</td>" in page and "<td>not recorded</td>" in page
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["review_report.csv", "review_summary.html"]


def test_conflicts_are_refused_without_overwrite_and_nothing_is_written(review):
    store, src, tmp_path = review
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").write_bytes(b"earlier export")
    (out / "review_report.csv").write_text("old report")
    (out / "unrelated.txt").write_text("keep")
    assert planned_files(store, "png") == ["a.png", "b.png", "c.png", "review_report.csv", "review_summary.html"]
    assert conflicts(store, out, "png") == [out / "b.png", out / "review_report.csv"]
    assert conflicts(store, out, "tiff") == [out / "review_report.csv"]
    assert describe_conflicts(store, out, "png") == (  # "old report" names no export: maybe the user's own
        f"{out}: 2 file(s) there have the names this export writes (b.png, review_report.csv); no earlier SegStudio "
        "export is recorded there, so they may be your own, and they would be replaced.")
    before = snapshot(out)
    with pytest.raises(ReviewError) as info:
        export_review(store, out, "png")
    assert "2 file(s)" in str(info.value) and "b.png" in str(info.value) and "review_report.csv" in str(info.value)
    assert snapshot(out) == before

    result = export_review(store, out, "png", overwrite=True)
    assert len(result.masks) == 3
    assert set(np.unique(read_png(out / "b.png"))) <= {0, 255}
    assert (out / "review_report.csv").read_text().startswith(",".join(CSV_COLUMNS))
    assert (out / "unrelated.txt").read_text() == "keep"


@pytest.mark.parametrize("where", ["review", "review/exports", "src/images", "src/masks/out", "src/images/x/y"])
def test_export_into_the_review_or_a_source_folder_is_refused(review, where):
    store, src, tmp_path = review
    before = snapshot(tmp_path)
    with pytest.raises(ReviewError, match="cannot export into"):
        export_review(store, tmp_path / where)
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "review" / "exports").exists() and not (tmp_path / "src/masks/out").exists()


def test_export_never_changes_the_review_folder(review):
    store, src, tmp_path = review
    before = snapshot(tmp_path / "review")
    reader = ReviewStore.open(tmp_path / "review", read_only=True)
    calls = []
    export_review(reader, tmp_path / "out", "png", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 7) for i in range(1, 8)]
    assert snapshot(tmp_path / "review") == before


def test_unknown_format_is_refused(review):
    store, src, tmp_path = review
    with pytest.raises(ReviewError, match="unknown export format 'jpeg'"):
        export_review(store, tmp_path / "out", "jpeg")
    assert not (tmp_path / "out").exists()


def test_an_unreadable_case_is_reported_and_the_rest_exported(review):
    store, src, tmp_path = review
    (tmp_path / "review" / "corrections" / "c.png").unlink()
    result = export_review(store, tmp_path / "out")
    assert [p.name for p in result.masks] == ["a.png", "b.png"]
    assert len(result.problems) == 1 and "c.png" in result.problems[0]
    with open(result.report, newline="") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    assert rows["c"]["exported_mask"] == "" and rows["c"]["state"] == "corrected"


def test_cancelled_export_raises(review):
    store, src, tmp_path = review
    with pytest.raises(ReviewError, match="export cancelled"):
        export_review(store, tmp_path / "out", should_stop=lambda: True)
    assert not (tmp_path / "out" / "review_report.csv").exists()


def test_summary_pictures_at_most_thirty_rejected_cases_and_says_how_many_more(tmp_path):
    from app.core.review.export import SUMMARY_THUMBS

    names = [f"n{i:02d}" for i in range(SUMMARY_THUMBS + 3)]
    src = make_folder(tmp_path / "src", names, size=(8, 8))
    store = ReviewStore.create_from_folders(tmp_path / "review", src / "images", src / "masks")
    for name in names:
        store.decide(name, "rejected", "Ann")
    result = export_review(store, tmp_path / "out")
    html = result.summary.read_text()
    assert html.count("<img") == SUMMARY_THUMBS
    assert f"Rejected cases ({SUMMARY_THUMBS + 3})" in html and "… and 3 more rejected cases" in html
    assert len(list(csv.DictReader(result.report.open()))) == SUMMARY_THUMBS + 3
    store.close()


def test_a_new_export_removes_the_masks_of_cases_no_longer_approved(review):
    store, src, tmp_path = review
    out = tmp_path / "out"
    export_review(store, out, "png")
    (out / "notes.txt").write_text("mine")
    store.decide("a", "rejected", "Ann", reason="Poor boundary")  # a is no longer approved
    assert conflicts(store, out, "png") == [out / "b.png", out / "c.png", out / "review_report.csv",
                                            out / "review_summary.html", out / "a.png"]
    assert describe_conflicts(store, out, "png") == (
        f"An earlier export is in {out}: 4 file(s) would be replaced (b.png, c.png, review_report.csv …); and 1 "
        "mask(s) of cases no longer approved would be removed.")
    store.decide("a", "accepted", "Ann")
    assert describe_conflicts(store, out, "tiff") == (  # every case still approved: only the format changed
        f"An earlier export is in {out}: 2 file(s) would be replaced (review_report.csv, review_summary.html); "
        "and 3 mask(s) of the earlier export in another format would be removed (they are written as .tif now).")
    store.decide("a", "rejected", "Ann", reason="Poor boundary")
    with pytest.raises(ReviewError, match="no longer approved would be removed. Nothing was written: .*--overwrite"):
        export_review(store, out, "png")
    assert (out / "a.png").exists()
    export_review(store, out, "png", overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["b.png", "c.png", "notes.txt", "review_report.csv",
                                                     "review_summary.html"]
    export_review(store, out, "tiff", overwrite=True)  # the other format: the PNGs of the last export go
    assert sorted(p.name for p in out.iterdir()) == ["b.tif", "c.tif", "notes.txt", "review_report.csv",
                                                     "review_summary.html"]


def test_an_approved_case_that_cannot_be_read_loses_its_earlier_exported_mask(review):
    """Its old mask must not stay beside the new report, where it would pass for approved, nor
    linger after the case is rejected."""
    store, src, tmp_path = review
    out = tmp_path / "out"
    export_review(store, out)
    original = (src / "masks" / "a.png").read_bytes()
    Image.fromarray(np.full((SIZE, SIZE), 255, np.uint8)).save(src / "masks" / "a.png")
    result = export_review(store, out, overwrite=True)
    assert len(result.problems) == 1
    assert result.problems[0].endswith("its mask was not exported and the earlier one was removed")
    assert not (out / "a.png").exists()
    (src / "masks" / "a.png").write_bytes(original)
    store.decide("a", "rejected", "Ann", reason="Poor boundary")
    assert export_review(store, out, overwrite=True).problems == []
    assert sorted(p.name for p in out.iterdir()) == ["b.png", "c.png", "review_report.csv", "review_summary.html"]


def test_a_rejected_case_without_a_picture_is_a_note_not_a_missing_mask(review):
    store, src, tmp_path = review
    (src / "images" / "d.png").write_bytes(b"not a picture")  # d is rejected: pictured in the summary
    result = export_review(store, tmp_path / "out")
    assert result.problems == [] and [p.name for p in result.masks] == ["a.png", "b.png", "c.png"]
    assert len(result.notes) == 1 and "d.png" in result.notes[0] and "no picture" in result.notes[0]


def test_a_source_mask_changed_after_the_review_was_made_is_not_exported(review):
    store, src, tmp_path = review
    Image.fromarray(np.full((SIZE, SIZE), 255, np.uint8)).save(src / "masks" / "a.png")  # another mask now
    result = export_review(store, tmp_path / "out")
    assert [p.name for p in result.masks] == ["b.png", "c.png"]
    assert len(result.problems) == 1 and "a.png: has changed since the review was created" in result.problems[0]
