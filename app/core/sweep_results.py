"""A sweep's results, read from its folder: the ranked table (also as CSV) and a heat map of
one metric over two grid fields. Reads ``sweep.json`` and each run's ``summary.json`` only."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .sweep import NOT_APPLICABLE, SweepError
from .sweep_run import read_state

METRICS = ("best_dice", "best_iou", "highest_accuracy", "lowest_loss", "best_value", "wall_seconds", "epochs")
LOWER_IS_BETTER = ("lowest_loss", "wall_seconds")


class SummaryCache:
    """Runs' ``summary.json`` files, read again only when one changes (its time, size or file
    identity: atomic writes replace the file), so refreshing a long sweep's table is cheap."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[int, int, int], dict]] = {}

    def read(self, run_dir: Path) -> dict:
        """The summary in ``run_dir`` ({} if there is none); bad JSON raises ``ValueError``."""
        path = os.path.join(run_dir, "summary.json")
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            self._entries.pop(path, None)
            return {}
        key = (info.st_mtime_ns, info.st_size, info.st_ino)
        cached = self._entries.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        with open(path, encoding="utf-8") as handle:
            summary = json.load(handle)
        self._entries[path] = (key, summary)
        return summary


def _rows(out_dir: Path, summaries: SummaryCache | None = None) -> tuple[list[dict], dict]:
    state = read_state(out_dir)
    grid = state.get("spec", {}).get("grid", {})
    summaries = summaries or SummaryCache()
    rows = []
    for point in state.get("points", []):
        # a failed point's folder may hold a stale summary from an earlier attempt
        summary = summaries.read(out_dir / point["name"]) if point.get("status") != "failed" else {}
        row = {"name": point["name"], "status": point.get("status")}
        row.update({key: point["values"].get(key) for key in grid})
        row.update({m: summary.get(m) for m in METRICS})
        row.update({"lowest_loss_epoch": summary.get("lowest_loss_epoch"),
                    "highest_accuracy_epoch": summary.get("highest_accuracy_epoch"),
                    "best_metric": summary.get("best_metric"), "best_epoch": summary.get("best_epoch"),
                    "reason": summary.get("reason"), "error": point.get("error")})
        rows.append(row)
    return rows, grid


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise SweepError(f"metric {metric!r} is not known; valid: {', '.join(METRICS)}")


def finite_number(value: Any) -> bool:
    """A real, finite number: not None, a bool, NaN or infinite (a metric missing from a summary)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def results_table(out_dir: str | os.PathLike, rank_by: str = "best_dice") -> list[dict]:
    """One row per point, best first by ``rank_by`` (lower first for losses and times): ``rank``
    (None without the metric), ``name``, ``status``, each grid field, the best metrics from the
    run's summary.json (:data:`METRICS`, their epochs, ``reason``) and ``error``."""
    return ranked_results(out_dir, rank_by)[0]


def ranked_results(out_dir: str | os.PathLike, rank_by: str = "best_dice",
                   summaries: SummaryCache | None = None) -> tuple[list[dict], dict]:
    """:func:`results_table` and the sweep's grid, from one read of ``sweep.json``. Pass a
    :class:`SummaryCache` kept between calls to skip re-reading unchanged summaries."""
    _check_metric(rank_by)
    rows, grid = _rows(Path(out_dir), summaries)
    sign = 1 if rank_by in LOWER_IS_BETTER else -1
    rows.sort(key=lambda r: (0, sign * r[rank_by]) if finite_number(r[rank_by]) else (1, 0))
    for n, row in enumerate(rows, 1):
        row["rank"] = n if finite_number(row[rank_by]) else None
    return [{"rank": r.pop("rank"), **r} for r in rows], grid


def results_csv(out_dir: str | os.PathLike, path: str | os.PathLike | None = None,
                rank_by: str = "best_dice") -> Path:
    """Write :func:`results_table` as CSV (default ``out_dir/results.csv``); returns the path.
    A run's own record (say a point's history.csv) is refused with a SweepError."""
    from .runs.reading import refuse_run_record

    if path is not None:
        try:
            refuse_run_record(path)
        except ValueError as exc:
            raise SweepError(str(exc)) from None
    rows = results_table(out_dir, rank_by)
    buffer = io.StringIO()
    columns = list(rows[0]) if rows else ["rank", "name", "status"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else json.dumps(v) if isinstance(v, (list, dict)) else v)
                         for k, v in row.items()})
    return atomic_write_text(Path(path) if path else Path(out_dir) / "results.csv", buffer.getvalue())


def value_label(value: Any) -> str:
    """How a grid value is shown on a heat-map axis."""
    if value is None:
        return NOT_APPLICABLE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(value_label(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def heatmap(out_dir: str | os.PathLike, metric: str, x_axis: str, y_axis: str, reduce: str = "max"):
    """``(x_labels, y_labels, values)`` with ``values[j][i]`` the ``reduce`` ("max", "min" or
    "mean") of ``metric`` over the points with the i-th x value and j-th y value (NaN if none).
    Labels follow the grid's order; points without a field (e.g. alpha for BCE) go under "n/a"."""
    rows, grid = _rows(Path(out_dir))
    return heatmap_of_rows(rows, grid, metric, x_axis, y_axis, reduce)


def heatmap_of_rows(rows: list[dict], grid: dict, metric: str, x_axis: str, y_axis: str, reduce: str = "max"):
    """:func:`heatmap` of rows already read (those of :func:`results_table`) and the sweep's grid."""
    import numpy as np

    _check_metric(metric)
    if reduce not in ("max", "min", "mean"):
        raise SweepError(f"reduce {reduce!r} is not allowed; valid: max, min, mean")
    for axis in (x_axis, y_axis):
        if axis not in grid:
            raise SweepError(f"axis {axis!r} is not a field of this sweep; valid: {', '.join(grid)}")
    if x_axis == y_axis:
        raise SweepError(f"the two axes must differ (both {x_axis!r})")
    labels = {}
    for axis in (x_axis, y_axis):  # a value not in the grid (a sweep.json edited by hand) gets its own cells
        labels[axis] = list(dict.fromkeys([value_label(v) for v in grid[axis]]
                                          + [value_label(r[axis]) for r in rows if r[axis] is not None]))
        if any(r[axis] is None for r in rows):
            labels[axis].append(NOT_APPLICABLE)
    cells: dict[tuple[int, int], list[float]] = {}
    for row in rows:
        if finite_number(row[metric]):
            i, j = labels[x_axis].index(value_label(row[x_axis])), labels[y_axis].index(value_label(row[y_axis]))
            cells.setdefault((j, i), []).append(float(row[metric]))
    values = np.full((len(labels[y_axis]), len(labels[x_axis])), np.nan)
    for (j, i), found in cells.items():
        values[j, i] = {"max": max, "min": min, "mean": lambda v: sum(v) / len(v)}[reduce](found)
    return labels[x_axis], labels[y_axis], values
