"""What the runs table shows: a run's :class:`RunInfo`, the table's columns and how each
cell is formatted, sorted, filtered and exported as CSV."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..atomic import atomic_write_text


FINISHED, STOPPED, FAILED, INCOMPLETE = "finished", "stopped", "failed", "incomplete"
STATUS_HELP = {
    FINISHED: "training ended normally (all epochs, or the time limit)",
    STOPPED: "stopped by the user; it can be resumed",
    FAILED: "training failed (see the message)",
    INCOMPLETE: "still running, or ended without a summary (killed or crashed)",
}


@dataclass
class RunInfo:
    """One run folder as the runs table shows it. ``None`` = not recorded or unreadable."""

    path: Path
    name: str  # the folder name (what rename_run changes)
    date: datetime | None = None
    status: str = INCOMPLETE  # FINISHED, STOPPED, FAILED or INCOMPLETE
    training: bool = False  # a process holds the run's training lock: it is training now
    reason: str | None = None  # summary.json's reason: completed, stopped, time limit
    message: str | None = None  # the failure message of a failed run
    experiment: str | None = None  # the experiment name in config.json
    dataset: str | None = None  # short: the data folder's (or image stack's) name, "demo" for the demo data
    dataset_path: str | None = None
    model: str | None = None
    loss: str | None = None
    optimizer: str | None = None
    lr: float | None = None
    epochs: int | None = None  # epochs done
    epochs_planned: int | None = None
    scores_on: str | None = None  # "val" or "train": which split the lowest loss / highest accuracy are on
    lowest_loss: float | None = None
    lowest_loss_epoch: int | None = None
    highest_accuracy: float | None = None  # pixel accuracy
    highest_accuracy_epoch: int | None = None
    best_iou: float | None = None
    best_dice: float | None = None
    rand_error: float | None = None  # lowest adapted Rand error, only if the run recorded one
    wall_seconds: float | None = None
    device: str | None = None
    has_checkpoint: bool = False
    checkpoint: Path | None = None  # checkpoints/best.pt, else checkpoints/last.pt
    problems: list[str] = field(default_factory=list)

    @property
    def status_text(self) -> str:
        if self.training and self.status == INCOMPLETE:
            return "training"
        if self.status == FINISHED and self.reason and self.reason != "completed":
            return f"{FINISHED} ({self.reason})"
        return self.status


# ------------------------------------------------------------------------- table columns

# (key, header): the table's columns, in order; keys are RunInfo attributes (status is shown
# as status_text). CSV_COLUMNS adds the ones the table has no room for.
COLUMNS: list[tuple[str, str]] = [
    ("name", "Name"), ("date", "Date"), ("status", "Status"), ("dataset", "Dataset"), ("model", "Model"),
    ("loss", "Loss"), ("optimizer", "Optimizer"), ("lr", "Learning rate"), ("epochs", "Epochs"),
    ("lowest_loss", "Lowest loss"), ("lowest_loss_epoch", "Lowest loss epoch"),
    ("highest_accuracy", "Highest accuracy"), ("highest_accuracy_epoch", "Highest accuracy epoch"),
    ("best_iou", "Best IoU"), ("best_dice", "Best Dice"), ("rand_error", "Rand error"),
    ("wall_seconds", "Wall time"), ("device", "Device"), ("has_checkpoint", "Checkpoint"),
]
CSV_COLUMNS: list[tuple[str, str]] = COLUMNS + [
    ("epochs_planned", "Planned epochs"), ("scores_on", "Scores on"), ("reason", "Reason"),
    ("message", "Message"), ("experiment", "Experiment"), ("dataset_path", "Dataset path"), ("path", "Path"),
]
NUMERIC_KEYS = frozenset({"lr", "epochs", "epochs_planned", "lowest_loss", "lowest_loss_epoch", "highest_accuracy",
                          "highest_accuracy_epoch", "best_iou", "best_dice", "rand_error", "wall_seconds"})
_KEYS = {key for key, _ in CSV_COLUMNS}


def _check_key(key: str) -> None:
    if key not in _KEYS:
        raise ValueError(f"unknown column {key!r}; valid: {', '.join(k for k, _ in CSV_COLUMNS)}")


def cell_value(run: RunInfo, key: str):
    """The raw value of one column (for sorting and CSV): numbers, text, datetime, bool or None."""
    _check_key(key)
    return getattr(run, key)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_value(run: RunInfo, key: str, missing: str = "") -> str:
    """The display text of one cell; ``missing`` for values not recorded."""
    value = cell_value(run, key)
    if key == "status":
        return run.status_text
    if key == "has_checkpoint":
        return "yes" if value else "no"
    if value is None:
        return missing
    if key == "date":
        return value.strftime("%Y-%m-%d %H:%M")
    if key == "epochs":
        planned = run.epochs_planned
        return f"{value}/{planned}" if planned and planned != value else str(value)
    if key == "lr":
        return f"{value:g}"
    if key == "wall_seconds":
        return format_duration(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def runs_table_csv(runs: Iterable[RunInfo], columns: Sequence[tuple[str, str]] = CSV_COLUMNS) -> str:
    """The runs as CSV text: one header line of the columns' headers, then one line per run
    with raw values (full-precision numbers, ISO dates, yes/no, empty for not recorded)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([header for _, header in columns])
    for run in runs:
        writer.writerow([_csv_value(run.status if key == "status" else cell_value(run, key)) for key, _ in columns])
    return buffer.getvalue()


def write_runs_csv(path: str | os.PathLike, runs: Iterable[RunInfo]) -> Path:
    """Write :func:`runs_table_csv` atomically; the folder must exist."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name for the CSV")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")
    from .reading import refuse_run_record  # (reading imports this module)

    refuse_run_record(path)
    return atomic_write_text(path, runs_table_csv(runs))


def sort_runs(runs: Iterable[RunInfo], key: str, descending: bool = False) -> list[RunInfo]:
    """Runs sorted by one column; runs without a value come last either way; text ignores case."""
    _check_key(key)
    runs = list(runs)

    def value(run):
        v = run.status_text if key == "status" else getattr(run, key)
        if isinstance(v, float) and math.isnan(v):
            return None
        return v.lower() if isinstance(v, str) else str(v) if isinstance(v, Path) else v

    present = [r for r in runs if value(r) is not None]
    absent = [r for r in runs if value(r) is None]
    return sorted(present, key=value, reverse=descending) + absent


def matches(run: RunInfo, text: str) -> bool:
    """Whether every word of ``text`` occurs (ignoring case) in the run's name, experiment,
    dataset, model, loss, optimizer, status or device: the table's filter."""
    haystack = " ".join(str(v) for v in (run.name, run.experiment, run.dataset, run.model, run.loss,
                                         run.optimizer, run.status_text, run.device) if v).lower()
    return all(word in haystack for word in text.lower().split())


