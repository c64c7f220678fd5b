"""Reading a run folder's small files (config.json, summary.json, history.csv, the ends of
train.log) into a :class:`~app.core.runs.info.RunInfo`; see the package docstring for
where each value comes from."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import numpy as np


from ..training.run_folder import is_training
from .info import FAILED, FINISHED, INCOMPLETE, STOPPED, RunInfo

RUN_FILES = ("config.json", "history.csv")  # a folder holding either is a run folder
_LOG_HEAD = 16 * 1024
_LOG_TAIL = 64 * 1024
_STAMP = re.compile(r"^(\d{8}-\d{6})(?:-|$)")
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.*)$")
_DEVICE = re.compile(r", device (\S+)\s*$")
_RAND_COLUMNS = ("val_adapted_rand_error", "val_rand_error", "adapted_rand_error", "rand_error")
_RAND_KEYS = ("adapted_rand_error", "best_adapted_rand_error", "rand_error", "best_rand_error")


def is_run_folder(path: str | os.PathLike) -> bool:
    """A folder holding config.json or history.csv (the first files a run writes), or train.log
    beside a checkpoints folder (a run that failed before writing its config, e.g. on bad data)."""
    path = Path(path)
    if not path.is_dir():
        return False
    return any((path / name).is_file() for name in RUN_FILES) or (
        (path / "train.log").is_file() and (path / "checkpoints").is_dir())


RUN_RECORD_FILES = ("config.json", "history.csv", "summary.json", "train.log")


def refuse_run_record(path: str | os.PathLike) -> None:
    """ValueError when ``path`` is one of the files a run keeps in its folder (its settings,
    history, summary or log): an exported table must never replace a run's own record."""
    path = Path(path)
    if path.name.lower() in RUN_RECORD_FILES and is_run_folder(path.parent):
        raise ValueError(f"{path} is a run's own {path.name}; SegStudio never writes a table over it")


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # a hand-edited integer too large for a float
        return None


def _integer(value) -> int | None:
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value != int(value):
            return None
    except OverflowError:
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
    short = long = bad = 0
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
            elif len(line) > len(header):  # which value is extra is unknown: every one may be shifted
                long += 1
                continue
            values = []
            for name, cell in zip(header, line):
                value = _parse_float(cell)
                if value is None:
                    bad += 1
                    first_bad = first_bad or (f"{cell.strip()[:40]!r} in column {name[:40]!r} "  # quoted: no raw
                                              f"(line {reader.line_num})")  # control bytes reach the terminal
                    value = math.nan
                values.append(value)
            rows.append(values)
    except csv.Error as exc:
        problems.append(f"history.csv: unreadable from line {reader.line_num} ({exc})")
    if "\0" in text:
        problems.append("history.csv: contains NUL bytes (damaged file)")
    if short:
        problems.append(f"history.csv: {short} row(s) with missing values (truncated file?)")
    if long:
        problems.append(f"history.csv: {long} row(s) with more values than columns (damaged file?); left out")
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
    """The log's last outcome line: ("failed", message), ("finished", reason) or ("resumed", "").
    A failure right after an end, with no ``resumed at`` between, is an attempt to continue the
    run that never started (its data moved, say): the run is still as it ended."""
    failure = None
    for line in reversed(lines):
        if line.startswith("failed: "):
            failure = failure or ("failed", line[len("failed: "):].strip())
            continue
        if line.startswith("finished (") and line.endswith(")"):
            return "finished", line[len("finished ("):-1]
        if line.startswith("resumed at"):
            return failure or ("resumed", "")
        if failure is not None and line.startswith("model "):  # the run started, then failed
            return failure
    return failure


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
    run.training = is_training(path)
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


