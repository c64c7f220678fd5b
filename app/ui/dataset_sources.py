"""What the dataset browser opens and how: deciding what a drop or a path names (a folder, or an
image/label TIFF stack pair), showing paths and "no usable samples" messages, comparing the
experiment's data settings with the loaded data, applying split moves, and the background job
that loads a dataset (with its result, :class:`Loaded`). No widgets here: plain helpers only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.core.imageio import TIFF_SUFFIXES
from app.core.pairing import DatasetError, order_stack_pair
from app.core.paths import ensure_demo_dataset

PROBLEMS_IN_MESSAGE = 3


def drop_source(paths: list[Path]) -> Path | tuple[Path, Path] | None:
    """What a drop of ``paths`` opens: a folder, a pair of TIFF stacks, or None (nothing usable)."""
    if len(paths) == 1 and paths[0].is_dir():
        return paths[0]
    if len(paths) == 2 and all(p.is_file() and p.suffix.lower() in TIFF_SUFFIXES for p in paths):
        return order_stack_pair(*paths)
    return None


def same_path(a: str | Path | None, b: str | Path | None) -> bool:
    """True when both name the same file or folder (or both are None)."""
    if a is None or b is None:
        return a is None and b is None
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _norm(path: str | Path | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def shown_path(path: str | Path, root: str | Path | None) -> str:
    """``path`` relative to the dataset's ``root`` when inside it, else its file name."""
    path = Path(path)
    try:
        return str(path.relative_to(root)) if root is not None and path != Path(root) else path.name or str(path)
    except ValueError:
        return path.name or str(path)


def no_samples_message(target: str | Path, dataset, shown: int = PROBLEMS_IN_MESSAGE) -> str:
    """Why a dataset without one usable sample is not opened: the folder and its first problems."""
    problems = list(dataset.problems)
    parts = [f"{shown_path(p.path, dataset.root)}: {p.reason}" for p in problems[:shown]]
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    detail = f" — {'; '.join(parts)}{more}" if parts else ""
    return f"no usable samples in {target}{detail}"


def data_key(data) -> tuple:
    """Everything in a config's data section that decides which samples load and their splits."""
    return (_norm(data.path), _norm(data.label_stack), data.val_fraction, data.split_seed, data.mask_mode,
            tuple(sorted(data.splits.items())))


def apply_splits(dataset, splits: dict[str, str]) -> None:
    """Give the dataset's samples the experiment's split moves (names it lacks are skipped)."""
    names = {s.name for s in dataset.samples}
    moves = {name: split for name, split in splits.items() if name in names}
    if any(s.split != moves[s.name] for s in dataset.samples if s.name in moves):
        dataset.assign_splits(moves)  # also drops statistics cached for the old splits


@dataclass
class Loaded:
    """A background load's result and the data settings it was loaded with."""

    dataset: object
    path: str | None
    label_stack: str | None
    splits: dict
    keep_splits: bool  # a reload of the experiment's own data: its split moves are kept


def load_job(config, path: str | None, label_stack: str | None, *, keep_splits: bool, demo: bool,
             load: Callable) -> Callable:
    """The background job that loads ``path`` (or the demo data) with a copy of ``config``:
    ``load(config, progress=...)`` reads the data; the job returns a :class:`Loaded`, raises
    :class:`DatasetError` when no sample is usable, and stops when its task is cancelled."""
    config = copy.deepcopy(config)
    if not keep_splits:
        config.data.splits = {}

    def job(ctx):
        target = str(ensure_demo_dataset()) if demo else path
        ctx.check()
        config.data.path, config.data.label_stack = target, label_stack

        def progress(done: int, total: int) -> None:
            ctx.check()
            ctx.progress(done, total)

        dataset = load(config, progress=progress)
        if not dataset.samples:
            raise DatasetError(no_samples_message(target, dataset))
        dataset.stats  # noqa: B018 - computed here, off the GUI thread, and cached
        return Loaded(dataset, target, label_stack, dict(config.data.splits), keep_splits)

    return job
