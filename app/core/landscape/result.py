"""A computed loss landscape: arrays, axis values and settings; saved as ``.npz`` (no torch here,
so the GUI can browse saved slices without loading it).

Throughout training a run stores one slice per chosen epoch as
``<run folder>/landscapes/epoch_XXX.npz`` (``XXX`` the finished epoch as in ``history.csv``,
zero-padded to three digits): :func:`save_snapshot` writes one, :func:`list_snapshots` lists
them in epoch order for the viewer's slider.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes

SNAPSHOT_FOLDER = "landscapes"
_SNAPSHOT = re.compile(r"^epoch_(\d+)\.npz$")


@dataclass
class LandscapeResult:
    """Loss values on a 1-D or 2-D grid around the trained weights θ.

    ``values[k, i]`` (1-D) is loss ``losses[k]`` at θ + a_i·d₁; ``values[k, i, j]`` (2-D) at
    θ + a_i·d₁ + b_j·d₂, with ``axes = [a]`` or ``[a, b]`` (step multiples of the
    filter-normalised directions, from −span to +span). ``centre[k]`` is the loss at θ itself.
    ``meta``: settings and provenance (checkpoint, seed, span, images, seconds, ...), JSON-able.
    """

    losses: list[str]
    axes: list[np.ndarray]
    values: np.ndarray
    centre: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.axes = [np.asarray(a, np.float64) for a in self.axes]
        self.values = np.asarray(self.values, np.float64)
        self.centre = np.asarray(self.centre, np.float64)
        expected = (len(self.losses), *(len(a) for a in self.axes))
        if self.values.shape != expected or self.centre.shape != (len(self.losses),):
            raise ValueError(f"values must be losses × steps{' × steps' * (len(self.axes) - 1)} {expected} and "
                             f"centre one per loss; got {self.values.shape} and {self.centre.shape}")

    @property
    def dims(self) -> int:
        return len(self.axes)

    def centre_index(self) -> tuple[int, ...] | None:
        """Grid index of the unperturbed weights (all coordinates 0), if the grid holds it."""
        index = []
        for axis in self.axes:
            zero = np.flatnonzero(axis == 0.0)
            if zero.size == 0:
                return None
            index.append(int(zero[0]))
        return tuple(index)

    def curve(self, loss: int | str) -> np.ndarray:
        """The 1-D curve along the first direction: the whole slice for 1-D, the row b = 0 of a
        2-D grid (nearest b to 0 when 0 is not a grid value)."""
        k = self.losses.index(loss) if isinstance(loss, str) else int(loss)
        if self.dims == 1:
            return self.values[k]
        return self.values[k, :, int(np.argmin(np.abs(self.axes[1])))]

    # -- files ------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        arrays = {"losses": np.array(self.losses, dtype=np.str_), "values": self.values, "centre": self.centre,
                  "meta": np.array(json.dumps(self.meta, default=_json_default))}
        arrays.update({f"axis_{i}": a for i, a in enumerate(self.axes)})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``.npz`` atomically (a reader never sees half a file); the folder must exist."""
        return atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LandscapeResult":
        """Read a saved landscape; ValueError naming the file for anything that is not one
        SegStudio can show (damaged, another program's ``.npz``, 3 axes, a 1-step grid...)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                axes = []
                while f"axis_{len(axes)}" in data:
                    axes.append(data[f"axis_{len(axes)}"])
                losses = data["losses"]
                if losses.ndim != 1 or losses.size == 0 or losses.dtype.kind not in "US":
                    raise ValueError("it names no losses")
                if not 1 <= len(axes) <= 2 or any(a.ndim != 1 or a.size < 2 for a in axes):
                    raise ValueError(f"{len(axes)} axes of {[a.shape for a in axes]} values; a landscape has 1 or 2 "
                                     "axes of 2 or more steps")
                meta = json.loads(str(data["meta"]))
                _check_meta(meta)
                return cls([str(s) for s in losses], axes, data["values"], data["centre"], meta)
        except (OSError, KeyError, ValueError, TypeError, EOFError, RecursionError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: not a readable landscape file ({str(exc)[:200]})") from None


def _check_meta(meta: Any) -> None:
    """ValueError unless ``meta`` is an object whose settings the viewer shows have their types."""
    if not isinstance(meta, dict):
        raise ValueError(f"its settings are a JSON {type(meta).__name__}, not an object")
    for key in ("span", "images", "seed", "epoch", "seconds"):
        value = meta.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"its setting {key!r} is {str(value)[:40]!r}, not a number")
    size = meta.get("image_size")
    if size is not None and not (isinstance(size, list) and len(size) == 2):
        raise ValueError(f"its setting 'image_size' is {str(size)[:40]!r}, not a height and a width")


def not_finite_text(values: np.ndarray) -> str:
    """"3 of 25 points not finite" for a slice where the loss overflowed, else "" (the figure and
    the window both say it)."""
    bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
    return f"{bad} of {np.size(values)} points not finite" if bad else ""


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def snapshot_path(run_dir: str | os.PathLike, epoch: int) -> Path:
    """``<run>/landscapes/epoch_XXX.npz`` for a finished epoch."""
    return Path(run_dir) / SNAPSHOT_FOLDER / f"epoch_{int(epoch):03d}.npz"


def save_snapshot(run_dir: str | os.PathLike, epoch: int, result: LandscapeResult) -> Path:
    """Store a training-time slice in the run folder (atomically, creating ``landscapes/``)."""
    path = snapshot_path(run_dir, epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    result.meta = {**result.meta, "epoch": int(epoch)}
    return result.save(path)


def list_snapshots(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """The stored slices of a run, ``(epoch, path)`` in epoch order."""
    folder = Path(run_dir) / SNAPSHOT_FOLDER
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _SNAPSHOT.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)
