"""The run folder: config.json, history.csv, summary.json, checkpoints/ and train.log.

Every file except the append-only log is rewritten atomically, so nothing is ever half-written.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path

from ..atomic import atomic_write_json, atomic_write_text
from ..paths import user_data_dir

TRAINING_LOCK = ".training.lock"  # held (an OS lock) by the process training into the folder

HISTORY_COLUMNS = ("epoch", "train_loss", "train_pixel_accuracy", "val_loss", "val_pixel_accuracy",
                   "val_iou", "val_dice", "lr", "seconds", "val_adapted_rand_error")


def default_runs_dir() -> Path:
    return user_data_dir() / "runs"


def new_run_dir(name: str, parent: Path | None = None) -> Path:
    """A fresh, uniquely named folder ``YYYYmmdd-HHMMSS-name`` under the runs folder."""
    parent = parent or default_runs_dir()
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        candidate = parent / (f"{stamp}-{safe}" + (f"-{n}" if n else ""))
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a new run folder in {parent}")


def training_lock(run_dir: Path):
    """The run folder's training lock (``filelock``): the operating system releases it when the
    training process ends, even by a crash, so a held lock means a run is training now."""
    from filelock import FileLock

    return FileLock(str(Path(run_dir) / TRAINING_LOCK))


def is_training(run_dir: str | Path) -> bool:
    """True while some process (this one included) trains into ``run_dir``."""
    from filelock import Timeout

    path = Path(run_dir) / TRAINING_LOCK
    if not path.exists():
        return False
    lock = training_lock(Path(run_dir))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:  # unreadable or read-only folder: it cannot be training into it either
        return False
    lock.release()
    return False


def holds_nothing(run_dir: str | Path) -> bool:
    """True when ``run_dir`` holds no file: at most an empty ``checkpoints/`` and a training lock
    no process holds, which is what a run aborted before it wrote anything leaves behind."""
    for entry in Path(run_dir).iterdir():
        if entry.name == "checkpoints" and entry.is_dir() and not any(entry.iterdir()):
            continue
        if entry.name == TRAINING_LOCK and entry.is_file() and not is_training(run_dir):
            continue
        return False
    return True


def clear_unused(run_dir: str | Path, remove_folder: bool) -> None:
    """Remove what :func:`holds_nothing` allows (and the folder itself if ``remove_folder``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or not holds_nothing(run_dir):
        return
    for entry in run_dir.iterdir():
        entry.rmdir() if entry.is_dir() else entry.unlink()
    if remove_folder:
        run_dir.rmdir()


class RunFolder:
    """Paths and writers of one run; ``writable=False`` (ranks other than 0) writes nothing."""

    def __init__(self, path: Path, writable: bool = True):
        self.path = Path(path)
        self.writable = writable
        self.checkpoints = self.path / "checkpoints"
        if writable:
            self.checkpoints.mkdir(parents=True, exist_ok=True)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    def write_history(self, rows: list[dict]) -> None:
        if not self.writable:
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        atomic_write_text(self.path / "history.csv", buffer.getvalue())

    def read_history(self) -> list[dict]:
        path = self.path / "history.csv"
        if not path.exists():
            return []
        rows = []
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:  # a spreadsheet may add a BOM
                for line, row in enumerate(csv.DictReader(handle), start=2):
                    try:
                        rows.append({k: (int(v) if k == "epoch" else (float(v) if v != "" else None))
                                     for k, v in row.items()})
                    except (TypeError, ValueError):  # a cell missing (None) or not a number
                        raise ValueError(f"{path}: line {line} is damaged (every value must be a number): "
                                         f"{','.join(str(v) for v in row.values())[:120]}") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ValueError(f"{path}: is damaged, not a CSV text file ({exc})") from None
        return rows

    def write_summary(self, summary: dict) -> None:
        if not self.writable:
            return
        atomic_write_json(self.path / "summary.json", summary)

    def read_summary(self) -> dict:
        """summary.json ({} before the run first ended); ValueError naming the file when damaged."""
        path = self.path / "summary.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (ValueError, RecursionError) as exc:  # bad JSON or text, or nested too deeply
            raise ValueError(f"{path} is damaged ({type(exc).__name__}: {str(exc)[:120]})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} is damaged (not a JSON object)")
        return data

    def log(self, line: str) -> None:
        if not self.writable:
            return
        with (self.path / "train.log").open("a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
