"""Exporting a review: the accepted and corrected masks (PNG 0/255 or TIFF), a CSV report with
one row per case, and a one-page printable HTML summary."""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..imageio import ImageReadError, encode_png, write_image
from .case_data import load_case, mask_stats
from .record import CASE_STATES, ReviewError, now_iso, state_label
from .store import ReviewStore

EXPORT_FORMATS = {"png": ".png", "tiff": ".tif"}
REPORT_NAME = "review_report.csv"
SUMMARY_NAME = "review_summary.html"
SUMMARY_THUMBS = 30  # rejected cases pictured in the one-page summary (all are in the CSV)
CSV_COLUMNS = ("name", "state", "reason", "comment", "reviewer", "time", "mask_area", "object_count", "corrected",
               "exported_mask", "mask_source", "model", "checkpoint", "image")


@dataclass
class ExportResult:
    folder: Path
    masks: list[Path] = field(default_factory=list)
    report: Path | None = None
    summary: Path | None = None
    problems: list[str] = field(default_factory=list)  # approved cases whose mask could not be exported
    notes: list[str] = field(default_factory=list)  # rejected cases pictured without a thumbnail


def planned_files(store: ReviewStore, fmt: str) -> list[str]:
    """The file names an export writes (masks, report, summary)."""
    suffix = _suffix(fmt)
    return [f"{store.file_stem(case.name)}{suffix}" for case in store.cases if case.exported] + [REPORT_NAME,
                                                                                                    SUMMARY_NAME]


def conflicts(store: ReviewStore, out_dir: Path, fmt: str) -> list[Path]:
    """Files an export into ``out_dir`` would replace, or remove: masks an earlier export there
    wrote (its report names them) for cases no longer exported, or in another format."""
    planned = planned_files(store, fmt)
    return [Path(out_dir) / name for name in planned + stale_masks(store, out_dir, fmt)
            if (Path(out_dir) / name).exists()]


def describe_conflicts(store: ReviewStore, out_dir: Path, fmt: str) -> str:
    """What exporting into ``out_dir`` would replace or remove, in words ("" when nothing):
    files of an earlier export, or files that are not one's (the user's own), and why masks go."""
    out_dir = Path(out_dir)
    existing = conflicts(store, out_dir, fmt)
    if not existing:
        return ""
    stale = set(stale_masks(store, out_dir, fmt))
    replaced = [p.name for p in existing if p.name not in stale]
    earlier = _holds_an_export(out_dir)
    parts = []
    if replaced:
        shown = ", ".join(replaced[:3]) + (" …" if len(replaced) > 3 else "")
        parts.append(f"{len(replaced)} file(s) would be replaced ({shown})" if earlier else
                     f"{len(replaced)} file(s) there have the names this export writes ({shown}); no earlier "
                     "SegStudio export is recorded there, so they may be your own, and they would be replaced")
    exported_stems = {Path(name).stem for name in planned_files(store, fmt)}
    other_format = sorted(n for n in stale if Path(n).stem in exported_stems)
    if other_format:
        parts.append(f"{len(other_format)} mask(s) of the earlier export in another format would be removed "
                     f"(they are written as {_suffix(fmt)} now)")
    if len(stale) > len(other_format):
        parts.append(f"{len(stale) - len(other_format)} mask(s) of cases no longer approved would be removed")
    lead = f"An earlier export is in {out_dir}: " if earlier else f"{out_dir}: "
    return lead + "; and ".join(parts) + "."


def _holds_an_export(out_dir: Path) -> bool:
    """Whether ``out_dir`` has the report of a SegStudio export (its columns, not only its name)."""
    try:
        with (out_dir / REPORT_NAME).open(newline="", encoding="utf-8") as handle:
            return "exported_mask" in (csv.DictReader(handle).fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def stale_masks(store: ReviewStore, out_dir: Path, fmt: str) -> list[str]:
    """Masks an earlier export in ``out_dir`` wrote that this export would not write: they are
    removed, since their cases are no longer approved (or are written in the other format)."""
    planned = planned_files(store, fmt)
    return [name for name in earlier_masks(Path(out_dir)) if name not in planned]


def earlier_masks(out_dir: Path) -> list[str]:
    """The mask files the export already in ``out_dir`` wrote, from its report (plain names only)."""
    try:
        with (out_dir / REPORT_NAME).open(newline="", encoding="utf-8") as handle:
            names = [row.get("exported_mask") or "" for row in csv.DictReader(handle)]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return [n for n in names if n and Path(n).name == n and Path(n).suffix.lower() in EXPORT_FORMATS.values()]


def _suffix(fmt: str) -> str:
    if fmt not in EXPORT_FORMATS:
        raise ReviewError(f"unknown export format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}")
    return EXPORT_FORMATS[fmt]


def _check_target(store: ReviewStore, out_dir: Path) -> None:
    out = Path(out_dir).resolve()
    protected = [store.folder.resolve()] + [Path(store.record.source[k]).resolve()
                                            for k in ("images", "masks") if store.record.source.get(k)]
    for folder in protected:
        if out == folder or folder in out.parents:
            raise ReviewError(f"cannot export into {out}: it is inside {folder}, which SegStudio never writes "
                              "exports into. Choose another folder.")


def export_review(store: ReviewStore, out_dir: str | Path, fmt: str = "png", *, overwrite: bool = False,
                  progress: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] = lambda: False) -> ExportResult:
    """Write the approved masks, ``review_report.csv`` and ``review_summary.html`` into ``out_dir``.

    Files already there are replaced only with ``overwrite``; otherwise nothing is written and
    :class:`ReviewError` lists them.
    """
    suffix = _suffix(fmt)
    out = Path(out_dir)
    _check_target(store, out)
    existing = conflicts(store, out, fmt)
    if existing and not overwrite:
        raise ReviewError(f"{describe_conflicts(store, out, fmt)} Nothing was written: choose an empty folder "
                          "or allow replacing them (--overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    stale = [p for p in existing if p.name not in planned_files(store, fmt)]
    result = ExportResult(out)
    rows, rejected_thumbs = [], []
    source = store.record.source
    for i, case in enumerate(store.cases):
        if should_stop():
            raise ReviewError("export cancelled")
        row = {"name": case.name, "state": case.state, "reason": case.reason, "comment": case.comment,
               "reviewer": case.reviewer, "time": case.decided_at, "mask_area": case.area,
               "object_count": case.objects, "corrected": "yes" if case.corrected else "no", "exported_mask": "",
               "mask_source": "correction" if case.corrected else case.variant,
               "model": source.get("model", ""), "checkpoint": source.get("checkpoint", ""), "image": case.image}
        thumb = case.state == "rejected" and len(rejected_thumbs) < SUMMARY_THUMBS
        target = out / f"{store.file_stem(case.name)}{suffix}"
        if case.exported or thumb:
            try:
                data = load_case(store.folder, case)
            except ImageReadError as exc:
                data = None
                if case.exported:  # an earlier export's mask of it would be taken for an approved one
                    removed = target.exists()
                    target.unlink(missing_ok=True)
                    result.problems.append(f"{exc}; its mask was not exported"
                                           + (" and the earlier one was removed" if removed else ""))
                else:
                    result.notes.append(f"{exc}; the summary shows no picture of it")
            if data is not None and case.exported:
                mask = store.export_mask(case, data)
                row["mask_area"], row["object_count"] = mask_stats(mask)
                path = write_image(target, mask.astype(np.uint8) * np.uint8(255))
                result.masks.append(path)
                row["exported_mask"] = path.name
            elif data is not None and thumb:
                rejected_thumbs.append((case, _thumbnail_png(data.image, data.prediction)))
        rows.append(row)
        if progress:
            progress(i + 1, len(store.cases))
    for path in stale:  # masks of cases no longer exported (or in the other format): not approved now
        path.unlink(missing_ok=True)
    result.report = atomic_write_text(out / REPORT_NAME, _csv(rows))
    result.summary = atomic_write_text(out / SUMMARY_NAME, summary_html(store, rejected_thumbs))
    return result


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _thumbnail_png(image: np.ndarray, mask: np.ndarray, size: int = 160) -> str:
    """A small image with the mask's outline in red, as a base64 PNG."""
    import cv2

    from ..postprocess import to_gray8

    gray = to_gray8(image) if image.dtype != np.uint8 or image.ndim == 2 else image
    rgb = np.repeat(gray[:, :, None], 3, axis=2) if gray.ndim == 2 else np.ascontiguousarray(gray[:, :, :3])
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    rgb = rgb.copy()
    cv2.drawContours(rgb, contours, -1, (230, 40, 40), max(1, max(rgb.shape[:2]) // 200))
    scale = size / max(rgb.shape[:2])
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    return base64.b64encode(encode_png(rgb)).decode("ascii")


def summary_html(store: ReviewStore, rejected: list[tuple]) -> str:
    """A one-page, printable summary: counts per state, who reviewed, thumbnails of rejected cases."""
    esc = html.escape
    record, source = store.record, store.record.source
    counts = record.counts()
    total = len(record.cases)
    reviewers = sorted({c.reviewer for c in record.cases if c.reviewer})
    count_rows = "".join(f"<tr><td>{esc(state_label(s))}</td><td class=n>{counts[s]}</td></tr>" for s in CASE_STATES)
    figures = "".join(
        f"<figure><img src='data:image/png;base64,{png}' alt='{esc(case.name)}'><figcaption><b>{esc(case.name)}</b>"
        f"<br>{esc(case.reason)}{('<br><i>' + esc(case.comment) + '</i>') if case.comment else ''}</figcaption></figure>"
        for case, png in rejected)
    n_rejected = counts["rejected"]
    more = (f"<p>… and {n_rejected - len(rejected)} more rejected cases, listed in {REPORT_NAME}.</p>"
            if n_rejected > len(rejected) else "")
    model = " · ".join(esc(v) for v in (source.get("model", ""), source.get("checkpoint", "")) if v) or "not recorded"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SegStudio review summary</title>
<style>
@page {{ size: A4; margin: 14mm; }}
body {{ font: 10pt sans-serif; color: #222; max-width: 180mm; margin: auto; }}
h1 {{ font-size: 15pt; margin: 0 0 4pt; }} h2 {{ font-size: 11pt; margin: 10pt 0 4pt; }}
table {{ border-collapse: collapse; }} td {{ padding: 1pt 10pt 1pt 0; }} td.n {{ text-align: right; }}
.meta td:first-child {{ color: #666; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 6pt; }}
figure {{ margin: 0; width: 27mm; page-break-inside: avoid; }} figure img {{ width: 27mm; border: 1px solid #999; }}
figcaption {{ font-size: 7pt; overflow-wrap: anywhere; }}
</style></head><body>
<h1>Review summary</h1>
<table class="meta">
<tr><td>Review</td><td>{esc(str(store.folder))}</td></tr>
<tr><td>Images</td><td>{esc(source.get("images", ""))}</td></tr>
<tr><td>Model</td><td>{model}</td></tr>
<tr><td>Reviewer(s)</td><td>{esc(", ".join(reviewers) or "none yet")}</td></tr>
<tr><td>Exported</td><td>{esc(now_iso())}</td></tr>
</table>
<h2>{record.reviewed_count} of {total} cases reviewed</h2>
<table>{count_rows}<tr><td><b>Total</b></td><td class=n><b>{total}</b></td></tr></table>
<h2>Rejected cases ({n_rejected})</h2>
<div class="grid">{figures or "<p>None.</p>"}</div>{more}
</body></html>
"""
