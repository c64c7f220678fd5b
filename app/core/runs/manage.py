"""Renaming and deleting run folders, with checks strict enough that a wrong path can never
delete user data."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


from ..training.run_folder import HISTORY_COLUMNS, TRAINING_LOCK, is_training
from .reading import _LOG_LINE, is_run_folder

_BAD_NAME_CHARS = set('/\\<>:"|?*')


# What SegStudio itself writes into a run folder; a folder holding anything else is not deleted.
RUN_FILES_WRITTEN = {"config.json", "history.csv", "summary.json", "train.log", TRAINING_LOCK,
                     "training-curves.csv", "training-curves.png"}  # the last two: the Training panel's exports
RUN_DIRS_WRITTEN = {"checkpoints": (".pt",), "landscapes": (".npz", ".png"), "landscape": (".npz", ".png")}


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")  # an atomic write's leftover


def foreign_entries(path: Path) -> list[str]:
    """Entries of ``path`` that SegStudio does not write into a run folder (links included)."""
    foreign = []
    for entry in sorted(path.iterdir()):
        name = entry.name
        if entry.is_symlink():
            foreign.append(name)
        elif entry.is_file() and (name in RUN_FILES_WRITTEN or _is_temporary(name)):
            continue
        elif entry.is_dir() and name in RUN_DIRS_WRITTEN:
            foreign += [f"{name}/{inner.name}" for inner in sorted(entry.iterdir())
                        if inner.is_symlink() or not inner.is_file()
                        or not (inner.suffix in RUN_DIRS_WRITTEN[name] or _is_temporary(inner.name))]
        else:
            foreign.append(name)
    return foreign


def _looks_like_run(path: Path) -> bool:
    """Stricter than is_run_folder, for deleting: the folder was trained into (train.log in
    SegStudio's line format, or history.csv with SegStudio's columns); an experiment file alone,
    or another program's history.csv, is not enough."""
    try:
        with (path / "train.log").open(encoding="utf-8", errors="replace") as handle:
            if _LOG_LINE.match(handle.readline().rstrip("\n")):
                return True
    except OSError:
        pass
    try:
        with (path / "history.csv").open(encoding="utf-8", errors="replace") as handle:
            return handle.readline().startswith(",".join(HISTORY_COLUMNS[:3]) + ",")
    except OSError:
        return False


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


def _refuse_training(path: Path, what: str) -> None:
    if is_training(path):
        raise RuntimeError(f"{path.name} is training now (another window or process holds its training lock); "
                           f"it cannot be {what} until the run ends")


def rename_run(path: str | os.PathLike, new_name: str) -> Path:
    """Rename a run folder within its parent; returns the new path (the same one if the name
    is unchanged). Refuses a folder that is not a run, an invalid name (see
    :func:`check_run_name`) and a name already taken.

    Only the folder is renamed. config.json keeps its experiment ``name``: it records the
    settings the run was trained with, which the checkpoints and summary.json carry too;
    rewriting it would make them disagree (and change the file's date, which dates the run).
    The table's Name column is the folder name. A run that is training is refused."""
    path = Path(os.path.abspath(path))  # "." or "..": the folder's own name, not "." (renaming "." fails)
    if not is_run_folder(path):
        raise ValueError(f"{path} is not a run folder (no config.json or history.csv)")
    _refuse_training(path, "renamed")
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
    folder (a link, a folder never trained into, or one holding anything SegStudio does not
    write there), so a wrong path cannot delete other data. The folder is first renamed to a hidden name, so a deletion that
    fails halfway never leaves a half-deleted run in the table. A run that is training is
    refused."""
    path = Path(path)
    if path.is_symlink():
        raise ValueError(f"{path} is a link, not a run folder; not deleted")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if not path.is_dir() or not is_run_folder(path) or not _looks_like_run(path):
        raise ValueError(f"{path} is not a SegStudio run folder (no SegStudio train.log or history.csv); "
                         "not deleted")
    foreign = foreign_entries(path)
    if foreign:
        listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ValueError(f"{path} holds files SegStudio did not write there ({listed}); not deleted: move them "
                         "out first, or delete the folder yourself")
    _refuse_training(path, "deleted")
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


