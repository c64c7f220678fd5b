"""The runs browser's engine: list the run folders of a runs folder, read their curves,
rename or delete a run, export the table, and compare runs image by image.

Scanning reads only the small files of each run (config.json, summary.json, history.csv and
the head and tail of train.log) as plain JSON/CSV text, so runs written by other versions, or
naming models that are no longer registered, are still listed; it never imports torch. A
damaged run is listed with what could be read, plus a problem message.

Where the values come from:

* settings (experiment name, dataset, model, loss, optimizer, learning rate, planned epochs)
  from config.json; the model, loss, optimizer and learning rate fall back to summary.json;
* scores (lowest loss, highest accuracy, best IoU/Dice, adapted Rand error) from history.csv,
  computed as the training engine's summary does (validation values when the history has any,
  training values otherwise; the earliest epoch wins a tie); summary.json fills what the
  history lacks. The adapted Rand error is shown only when a run recorded one (a history column
  ``val_adapted_rand_error``/``val_rand_error`` or a summary key ``adapted_rand_error``/
  ``rand_error``); nothing is estimated;
* the status from summary.json's ``reason`` and train.log's last ``failed:``/``resumed``/
  ``finished`` line (see :func:`_status`);
* the date from a ``YYYYmmdd-HHMMSS`` stamp at the start of the folder name (how new run
  folders are named), else config.json's modification time (written once, when the run
  starts), else the folder's.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import atomic_write_text

if TYPE_CHECKING:
    import numpy as np

FINISHED, STOPPED, FAILED, INCOMPLETE = "finished", "stopped", "failed", "incomplete"
STATUS_HELP = {
    FINISHED: "training ended normally (all epochs, or the time limit)",
    STOPPED: "stopped by the user; it can be resumed",
    FAILED: "training failed (see the message)",
    INCOMPLETE: "still running, or ended without a summary (killed or crashed)",
}

RUN_FILES = ("config.json", "history.csv")  # a folder holding either is a run folder
_LOG_HEAD = 16 * 1024
_LOG_TAIL = 64 * 1024
_STAMP = re.compile(r"^(\d{8}-\d{6})(?:-|$)")
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.*)$")
_DEVICE = re.compile(r", device (\S+)\s*$")
_RAND_COLUMNS = ("val_adapted_rand_error", "val_rand_error", "adapted_rand_error", "rand_error")
_RAND_KEYS = ("adapted_rand_error", "best_adapted_rand_error", "rand_error", "best_rand_error")
_BAD_NAME_CHARS = set('/\\<>:"|?*')


@dataclass
class RunInfo:
    """One run folder as the runs table shows it. ``None`` = not recorded or unreadable."""

    path: Path
    name: str  # the folder name (what rename_run changes)
    date: datetime | None = None
    status: str = INCOMPLETE  # FINISHED, STOPPED, FAILED or INCOMPLETE
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


# ------------------------------------------------------------------------- reading a run

def is_run_folder(path: str | os.PathLike) -> bool:
    """A folder holding config.json or history.csv (the first files a run writes), or train.log
    beside a checkpoints folder (a run that failed before writing its config, e.g. on bad data)."""
    path = Path(path)
    if not path.is_dir():
        return False
    return any((path / name).is_file() for name in RUN_FILES) or (
        (path / "train.log").is_file() and (path / "checkpoints").is_dir())


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _integer(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value):
        return None
    return int(value)


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _read_json(path: Path, problems: list[str]) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        problems.append(f"{path.name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})")
        return None
    except UnicodeDecodeError:
        problems.append(f"{path.name}: not UTF-8 text")
        return None
    except (OSError, RecursionError) as exc:
        problems.append(f"{path.name}: cannot be read ({exc})")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name}: not a JSON object")
        return None
    return data


def _parse_float(text: str) -> float | None:
    """A history cell: a number, NaN for blank; None if it is not a number."""
    text = text.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def _read_history(path: Path, problems: list[str]) -> tuple[list[str], list[list[float]]]:
    """history.csv as (header, rows of floats); blank, missing and unreadable cells are NaN.
    Problems (truncated rows, text where a number belongs) are reported once per kind."""
    if not path.is_file():
        return [], []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        problems.append(f"history.csv: cannot be read ({exc})")
        return [], []
    reader = csv.reader(io.StringIO(text.replace("\0", "")))
    header: list[str] = []
    rows: list[list[float]] = []
    short = bad = 0
    first_bad = ""
    try:
        for line in reader:
            if not header:
                header = [h.strip() for h in line]
                continue
            if not line or all(not cell.strip() for cell in line):
                continue
            if len(line) < len(header):
                short += 1
                line = line + [""] * (len(header) - len(line))
            values = []
            for name, cell in zip(header, line):
                value = _parse_float(cell)
                if value is None:
                    bad += 1
                    first_bad = first_bad or f"{cell.strip()!r} in column {name} (line {reader.line_num})"
                    value = math.nan
                values.append(value)
            rows.append(values)
    except csv.Error as exc:
        problems.append(f"history.csv: unreadable from line {reader.line_num} ({exc})")
    if "\0" in text:
        problems.append("history.csv: contains NUL bytes (damaged file)")
    if short:
        problems.append(f"history.csv: {short} row(s) with missing values (truncated file?)")
    if bad:
        problems.append(f"history.csv: {bad} value(s) that are not numbers, first {first_bad}")
    if not header and text.strip() == "":
        problems.append("history.csv: empty")
    elif header and header[0] != "epoch":
        problems.append(f"history.csv: the first column is {header[0]!r}, not 'epoch'")
    return header, rows


def read_curves(run_path: str | os.PathLike) -> dict[str, "np.ndarray"]:
    """The run's history as float64 arrays by column name (``epoch`` and every metric column
    of history.csv, in file order); blank, missing or unreadable cells are NaN. A run without
    history.csv (no epoch finished yet) gives an empty dict."""
    import numpy as np

    header, rows = _read_history(Path(run_path) / "history.csv", [])
    if not header:
        return {}
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(header))
    curves: dict[str, np.ndarray] = {}
    for index, name in enumerate(header):
        if name and name not in curves:
            curves[name] = table[:, index].copy()
    return curves


def _log_lines(path: Path, problems: list[str]) -> list[str]:
    """train.log's message lines (timestamp removed): the whole log if small, else its head and
    tail (the device line is near the start, the outcome at the end)."""
    if not path.is_file():
        return []
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(0)
            if size <= _LOG_HEAD + _LOG_TAIL:
                raw = handle.read()
            else:
                head = handle.read(_LOG_HEAD)
                head = head[:head.rfind(b"\n") + 1]
                handle.seek(size - _LOG_TAIL)
                tail = handle.read()
                raw = head + tail[tail.find(b"\n") + 1:]
    except OSError as exc:
        problems.append(f"train.log: cannot be read ({exc})")
        return []
    lines = []
    for line in raw.decode("utf-8", errors="replace").splitlines():
        match = _LOG_LINE.match(line)
        if match:
            lines.append(match.group(1))
    return lines


def _last_outcome(lines: list[str]) -> tuple[str, str] | None:
    """The log's last outcome line: ("failed", message), ("finished", reason) or ("resumed", "")."""
    for line in reversed(lines):
        if line.startswith("failed: "):
            return "failed", line[len("failed: "):].strip()
        if line.startswith("finished (") and line.endswith(")"):
            return "finished", line[len("finished ("):-1]
        if line.startswith("resumed at"):
            return "resumed", ""
    return None


def _status(summary: dict | None, outcome: tuple[str, str] | None, history_epochs: int | None
            ) -> tuple[str, str | None, str | None, bool]:
    """(status, reason, message, summary_is_current).

    summary.json is written when training ends without failing (reason completed, time limit
    or stopped). It describes the run unless the log shows a later failure or a resume (a
    resumed run rewrites it only when it ends again), or the history has more epochs than it
    counts. Without a current summary: the log's last ``failed:`` line makes it failed, a last
    ``finished (reason)`` line (summary.json lost) still gives the reason; anything else is
    incomplete: running now, or killed without a summary."""
    reason = _text(summary.get("reason")) if summary else None
    current = reason is not None and (outcome is None or outcome[0] == "finished")
    if current and history_epochs is not None:
        counted = _integer(summary.get("epochs"))
        current = counted is None or history_epochs <= counted
    if not current and outcome is not None and outcome[0] == "finished" and (
            summary is None or reason is None):
        reason, current = outcome[1], True
    if current:
        return (STOPPED if reason == "stopped" else FINISHED), reason, None, bool(summary and reason)
    if outcome is not None and outcome[0] == "failed":
        return FAILED, None, outcome[1] or None, False
    return INCOMPLETE, None, None, False


def _extreme(header: list[str], rows: list[list[float]], column: str, pick) -> tuple[float | None, int | None]:
    """The lowest/highest finite value of a history column and its epoch (the earliest on a tie)."""
    if column not in header:
        return None, None
    col = header.index(column)
    ep = header.index("epoch") if "epoch" in header else None
    best = None
    for row in rows:
        value = row[col]
        if math.isnan(value):
            continue
        if best is None or pick(value, best[0]):
            epoch = row[ep] if ep is not None else math.nan
            best = (value, int(epoch) if math.isfinite(epoch) else None)
    return best if best is not None else (None, None)


def _has_values(header: list[str], rows: list[list[float]], column: str) -> bool:
    if column not in header:
        return False
    col = header.index(column)
    return any(not math.isnan(row[col]) for row in rows)


def _short_dataset(data: dict) -> tuple[str | None, str | None]:
    path = data.get("path")
    if path is None:
        return "demo", None
    if not isinstance(path, str) or not path:
        return None, None
    name = Path(path).name or path
    return name, path


def _date(path: Path) -> datetime | None:
    match = _STAMP.match(path.name)
    if match:
        try:
            return datetime.strptime(match.group(1), "%Y%m%d-%H%M%S")
        except ValueError:
            pass
    for candidate in (path / "config.json", path):
        try:
            return datetime.fromtimestamp(candidate.stat().st_mtime)
        except OSError:
            continue
    return None


def read_run(path: str | os.PathLike) -> RunInfo:
    """One run folder as a :class:`RunInfo`; never raises for damaged files (they become
    ``problems``)."""
    path = Path(path)
    run = RunInfo(path=path, name=path.name, date=_date(path))
    problems = run.problems
    config = _read_json(path / "config.json", problems)
    summary = _read_json(path / "summary.json", problems)
    header, rows = _read_history(path / "history.csv", problems)
    lines = _log_lines(path / "train.log", problems)

    if config is not None:
        sections = {key: (config.get(key) if isinstance(config.get(key), dict) else {})
                    for key in ("data", "model", "loss", "optimizer", "training")}
        run.experiment = _text(config.get("name"))
        if isinstance(config.get("data"), dict):
            run.dataset, run.dataset_path = _short_dataset(sections["data"])
        run.model = _text(sections["model"].get("name"))
        run.loss = _text(sections["loss"].get("name"))
        run.optimizer = _text(sections["optimizer"].get("name"))
        run.lr = _number(sections["optimizer"].get("lr"))
        run.epochs_planned = _integer(sections["training"].get("epochs"))

    epochs = None
    if "epoch" in header:
        col = header.index("epoch")
        done = [int(row[col]) for row in rows if math.isfinite(row[col])]
        epochs = max(done) if done else None
    status, reason, message, current = _status(summary, _last_outcome(lines), epochs)
    run.status, run.reason, run.message = status, reason, message

    if _has_values(header, rows, "val_loss") or _has_values(header, rows, "val_pixel_accuracy"):
        run.scores_on = "val"
    elif _has_values(header, rows, "train_loss"):
        run.scores_on = "train"
    if run.scores_on:
        run.lowest_loss, run.lowest_loss_epoch = _extreme(header, rows, f"{run.scores_on}_loss", lambda a, b: a < b)
        run.highest_accuracy, run.highest_accuracy_epoch = _extreme(
            header, rows, f"{run.scores_on}_pixel_accuracy", lambda a, b: a > b)
    run.best_iou = _extreme(header, rows, "val_iou", lambda a, b: a > b)[0]
    run.best_dice = _extreme(header, rows, "val_dice", lambda a, b: a > b)[0]
    for column in _RAND_COLUMNS:
        value = _extreme(header, rows, column, lambda a, b: a < b)[0]
        if value is not None:
            run.rand_error = value
            break
    run.epochs = epochs
    if "seconds" in header and rows:
        col = header.index("seconds")
        spent = [row[col] for row in rows if math.isfinite(row[col])]
        run.wall_seconds = round(sum(spent), 2) if spent else None
    for line in lines:
        match = _DEVICE.search(line)
        if match and line.startswith("model "):
            run.device = match.group(1)  # the last start (or resume) of the run

    if summary is not None:  # fills what config.json and history.csv did not give
        for key in ("model", "loss", "optimizer"):
            if getattr(run, key) is None:
                setattr(run, key, _text(summary.get(key)))
        if run.lr is None:
            run.lr = _number(summary.get("lr"))
        if run.experiment is None:
            run.experiment = _text(summary.get("name"))
        if run.lowest_loss is None and _number(summary.get("lowest_loss")) is not None:
            run.lowest_loss = _number(summary.get("lowest_loss"))
            run.lowest_loss_epoch = _integer(summary.get("lowest_loss_epoch"))
        if run.highest_accuracy is None and _number(summary.get("highest_accuracy")) is not None:
            run.highest_accuracy = _number(summary.get("highest_accuracy"))
            run.highest_accuracy_epoch = _integer(summary.get("highest_accuracy_epoch"))
        for key in ("best_iou", "best_dice"):
            if getattr(run, key) is None:
                setattr(run, key, _number(summary.get(key)))
        if run.rand_error is None:
            run.rand_error = next((_number(summary[k]) for k in _RAND_KEYS if _number(summary.get(k)) is not None),
                                  None)
        if current:  # the summary's clock and device describe the run as it is
            run.wall_seconds = _number(summary.get("wall_seconds")) if _number(summary.get("wall_seconds")) \
                is not None else run.wall_seconds
            run.device = _text(summary.get("device")) or run.device
            if run.epochs is None:
                run.epochs = _integer(summary.get("epochs"))

    for candidate in (path / "checkpoints" / "best.pt", path / "checkpoints" / "last.pt"):
        if candidate.is_file():
            run.checkpoint, run.has_checkpoint = candidate, True
            break
    return run


def scan_runs(folder: str | os.PathLike) -> tuple[list[RunInfo], list[str]]:
    """Every run folder (see :func:`is_run_folder`) directly inside ``folder`` (sorted by name)
    and the problems found, each
    as ``"RUN: problem"``. Hidden folders (temporary ones start with a dot) and folders that are
    not runs are skipped. Raises ``FileNotFoundError``/``NotADirectoryError`` only for ``folder``
    itself; a damaged run is listed with what could be read."""
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"runs folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    runs: list[RunInfo] = []
    problems: list[str] = []
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise OSError(f"cannot list {folder}: {exc.strerror or exc}") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if not is_run_folder(entry):
                continue
            run = read_run(entry)
        except OSError as exc:  # e.g. a folder we may not enter
            problems.append(f"{entry.name}: cannot be read ({exc.strerror or exc})")
            continue
        runs.append(run)
        problems.extend(f"{run.name}: {problem}" for problem in run.problems)
    return runs, problems


# ------------------------------------------------------------------------- rename / delete

def _looks_like_run(path: Path) -> bool:
    """Stricter than is_run_folder, for deleting: config.json is a SegStudio experiment (an
    object with model, loss, optimizer and training sections) or history.csv starts with an
    ``epoch`` column."""
    config = path / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and all(isinstance(data.get(k), dict) for k in ("model", "loss", "optimizer",
                                                                                   "training")):
            return True
    history = path / "history.csv"
    if history.is_file():
        try:
            with history.open(encoding="utf-8", errors="replace") as handle:
                first = handle.readline()
        except OSError:
            return False
        return first.split(",")[0].strip() == "epoch"
    # a run that failed at the start: train.log (SegStudio's line format) and checkpoints/ with
    # nothing but checkpoint files, and nothing else at all
    try:
        entries = {p.name for p in path.iterdir()}
        kept = [p for p in (path / "checkpoints").iterdir()] if (path / "checkpoints").is_dir() else None
        with (path / "train.log").open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline().rstrip("\n")
    except OSError:
        return False
    return (kept is not None and entries <= {"train.log", "checkpoints", "summary.json"}
            and all(p.is_file() and p.suffix in (".pt", ".tmp") for p in kept) and bool(_LOG_LINE.match(first)))


def check_run_name(name: str) -> str:
    """The new folder name, checked: not empty, no path separators or characters Windows
    forbids, not hidden (scan_runs skips names starting with a dot), no control characters."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a run name cannot be empty")
    if name != name.strip():
        raise ValueError(f"a run name cannot start or end with spaces: {name!r}")
    if name in (".", "..") or name.startswith("."):
        raise ValueError(f"a run name cannot start with a dot: {name!r}")
    bad = sorted({c for c in name if c in _BAD_NAME_CHARS or ord(c) < 32} | ({os.sep} if os.sep in name else set()))
    if bad:
        raise ValueError(f"a run name cannot contain {' '.join(repr(c) for c in bad)}: {name!r}")
    if name.endswith("."):
        raise ValueError(f"a run name cannot end with a dot: {name!r}")
    return name


def rename_run(path: str | os.PathLike, new_name: str) -> Path:
    """Rename a run folder within its parent; returns the new path (the same one if the name
    is unchanged). Refuses a folder that is not a run, an invalid name (see
    :func:`check_run_name`) and a name already taken.

    Only the folder is renamed. config.json keeps its experiment ``name``: it records the
    settings the run was trained with, which the checkpoints and summary.json carry too;
    rewriting it would make them disagree (and change the file's date, which dates the run).
    The table's Name column is the folder name. Do not rename a run that is training."""
    path = Path(path)
    if not is_run_folder(path):
        raise ValueError(f"{path} is not a run folder (no config.json or history.csv)")
    new_name = check_run_name(new_name)
    if new_name == path.name:
        return path
    target = path.parent / new_name
    if target.exists() or target.is_symlink():
        try:
            same = target.samefile(path)  # a change of case only, on a case-insensitive disk
        except OSError:
            same = False
        if not same:
            raise FileExistsError(f"a run or file named {new_name!r} already exists in {path.parent}")
    os.rename(path, target)
    return target


def delete_run(path: str | os.PathLike) -> None:
    """Delete a run folder and everything in it. Refuses anything that is not plainly a run
    folder (a link, a folder without a SegStudio config.json or history.csv), so a wrong path
    cannot delete other data. The folder is first renamed to a hidden name, so a deletion that
    fails halfway never leaves a half-deleted run in the table. Do not delete a run that is
    training."""
    path = Path(path)
    if path.is_symlink():
        raise ValueError(f"{path} is a link, not a run folder; not deleted")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if not path.is_dir() or not is_run_folder(path) or not _looks_like_run(path):
        raise ValueError(f"{path} is not a SegStudio run folder (no experiment config.json or history.csv); "
                         "not deleted")
    doomed = path.parent / f".deleting-{path.name}-{uuid.uuid4().hex[:8]}"
    os.rename(path, doomed)
    try:
        shutil.rmtree(doomed)
    except OSError:
        try:
            if doomed.exists():
                os.rename(doomed, path)  # what is left is listed again rather than hidden
        except OSError:
            pass
        raise


# ------------------------------------------------------------------------- per-image comparison

@dataclass
class PerImageComparison:
    """Scores of several runs' checkpoints on the images of their shared split.

    ``images`` are sorted worst first (by the mean Dice over the runs, then by name); the score
    arrays are ``len(images) × len(runs)``, column j for ``runs[j]``. With ``keep_predictions``
    ``samples[i]`` holds image i (image and truth arrays) and ``predictions[i][j]`` run j's
    label map for it."""

    runs: list[Path]
    names: list[str]
    checkpoints: list[Path]
    split: str
    images: list[str]
    dice: "np.ndarray"
    iou: "np.ndarray"
    pixel_accuracy: "np.ndarray"
    problems: list[str] = field(default_factory=list)
    samples: list | None = None
    predictions: list[list["np.ndarray"]] | None = None

    @property
    def mean_dice(self) -> "np.ndarray":
        return self.dice.mean(axis=1)

    def rows(self) -> list[dict]:
        """One dict per image, worst first: ``image``, ``mean_dice`` and ``dice``/``iou`` per run name."""
        out = []
        for i, image in enumerate(self.images):
            row = {"image": image, "mean_dice": float(self.mean_dice[i])}
            for j, name in enumerate(self.names):
                row[f"{name} dice"] = float(self.dice[i, j])
                row[f"{name} iou"] = float(self.iou[i, j])
            out.append(row)
        return out

    def to_csv(self) -> str:
        rows = self.rows()
        buffer = io.StringIO()
        header = ["image", "mean_dice"] + [f"{n} {m}" for n in self.names for m in ("dice", "iou")]
        writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()


def _run_checkpoint(path: Path, problems: list[str]) -> Path:
    best, last = path / "checkpoints" / "best.pt", path / "checkpoints" / "last.pt"
    if best.is_file():
        return best
    if last.is_file():
        problems.append(f"{path.name}: no best.pt; compared its last.pt")
        return last
    raise ValueError(f"run {path.name} has no checkpoint (checkpoints/best.pt) to compare")


def _dataset_key(config, data_path) -> tuple:
    d = config.data
    source = data_path if data_path is not None else (
        (d.path, d.label_stack) if d.path and d.label_stack else d.path)
    if isinstance(source, tuple):
        where = tuple(str(Path(s).expanduser().resolve()) for s in source)
    else:
        where = str(Path(source).expanduser().resolve()) if source else None
    return where, d.val_fraction, d.split_seed, d.mask_mode, tuple(sorted(d.splits.items()))


def compare_per_image(run_paths: Sequence[str | os.PathLike], data_path: str | os.PathLike | None = None,
                      split: str = "val", device: str = "cpu", *,
                      progress: Callable[[int, int], None] | None = None,
                      should_stop: Callable[[], bool] | None = None,
                      keep_predictions: bool = False) -> PerImageComparison:
    """Per-image Dice, IoU and pixel accuracy of each run's best checkpoint (last.pt when a run
    has no best.pt, noted in ``problems``) on the ``split`` images the runs share.

    The dataset is each run's own (as trained: its data path, split seed and split overrides)
    unless ``data_path`` is given; runs trained on different data folders need a ``data_path``.
    Only images in ``split`` for every run are compared (images another run trained on would
    not be a fair test); the others are counted in ``problems``. ``progress(done, total)``
    after each prediction (total = runs × images); ``should_stop()`` is checked before each
    one, and ``True`` raises ``InterruptedError``. Raises ``ValueError`` for no runs, a run
    without a checkpoint, different datasets or no shared images."""
    import numpy as np

    from .experiment_data import load_experiment_data
    from .metrics import segmentation_scores
    from .predictor import Predictor

    stop = should_stop or (lambda: False)
    paths = [Path(p) for p in run_paths]
    if not paths:
        raise ValueError("choose at least one run to compare")
    if len({p.resolve() for p in paths}) != len(paths):
        raise ValueError("the same run is chosen twice")
    problems: list[str] = []
    checkpoints = [_run_checkpoint(p, problems) for p in paths]
    predictors = []
    for checkpoint in checkpoints:
        if stop():
            raise InterruptedError("comparison stopped")
        predictors.append(Predictor.from_checkpoint(checkpoint, device))

    keys = [_dataset_key(p.config, data_path) for p in predictors]
    folders = {key[0] for key in keys}
    if len(folders) > 1:
        listed = "; ".join(f"{p.name}: {key[0] or 'demo data'}" for p, key in zip(paths, keys))
        raise ValueError(f"the runs were trained on different datasets ({listed}); choose one dataset to "
                         "compare them on")
    datasets: dict[tuple, object] = {}
    by_run: list[dict] = []
    for predictor, key in zip(predictors, keys):
        if stop():
            raise InterruptedError("comparison stopped")
        if key not in datasets:
            datasets[key] = load_experiment_data(predictor.config, data_path)
        by_run.append({s.name: s for s in datasets[key].split(split)})
    common = [name for name in by_run[0] if all(name in samples for samples in by_run[1:])]
    if not common:
        raise ValueError(f"the runs share no {split} images" if len(paths) > 1 else
                         f"run {paths[0].name} has no {split} images")
    for path, samples in zip(paths, by_run):
        left_out = len(samples) - len(common)
        if left_out:
            problems.append(f"{path.name}: {left_out} of its {len(samples)} {split} images are not {split} "
                            "images of every run; left out")

    shape = (len(common), len(paths))
    dice, iou, accuracy = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    predictions = [[None] * len(paths) for _ in common] if keep_predictions else None
    total, done = shape[0] * shape[1], 0
    for j, (predictor, samples) in enumerate(zip(predictors, by_run)):
        classes = max(2, predictor.num_classes)
        for i, name in enumerate(common):
            if stop():
                raise InterruptedError("comparison stopped")
            sample = samples[name]
            prediction = predictor.predict(sample.image, should_stop=stop)
            scores = segmentation_scores(prediction.labels, sample.mask, classes)
            dice[i, j], iou[i, j], accuracy[i, j] = scores.dice, scores.iou, scores.pixel_accuracy
            if predictions is not None:
                predictions[i][j] = prediction.labels
            done += 1
            if progress:
                progress(done, total)

    order = sorted(range(len(common)), key=lambda i: (float(dice[i].mean()), common[i]))
    return PerImageComparison(
        runs=paths, names=[p.name for p in paths], checkpoints=checkpoints, split=split,
        images=[common[i] for i in order], dice=dice[order], iou=iou[order], pixel_accuracy=accuracy[order],
        problems=problems, samples=[by_run[0][common[i]] for i in order] if keep_predictions else None,
        predictions=[predictions[i] for i in order] if predictions is not None else None)
