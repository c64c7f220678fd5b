"""Checkpoints: plain tensors and Python values only, written atomically, read with
``torch.load(..., weights_only=True)`` so a file can never run code when it is opened."""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write_bytes

CHECKPOINT_FORMAT = 1


class CheckpointError(Exception):
    """A checkpoint cannot be used; the message names the file and the reason."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (state dicts, numbers, strings, lists, dicts) atomically."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def _looks_like_torch_file(path: Path) -> bool:
    """A zip archive (torch.save's format) or a legacy pickle stream (starts with PROTO 0x80)."""
    try:
        if zipfile.is_zipfile(path):
            return True
        with path.open("rb") as handle:
            return handle.read(1) == b"\x80"
    except OSError:
        return True  # let torch.load report the read error


def _unpickling_detail(exc: Exception) -> str:
    """The line of torch's refusal that names what was refused, without its terminal colours and
    its advice to load the file unsafely."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    for line in lines:
        if "Unsupported global" in line or "WeightsUnpickler error" in line:
            return line.replace("WeightsUnpickler error: ", "").split(" Please ")[0][:200]
    return next((line for line in lines if line), "unknown object")[:200]


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely; refuses anything that needs unpickling of objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not _looks_like_torch_file(path):
        raise CheckpointError(f"{path}: not a readable SegStudio checkpoint (not a PyTorch file: damaged, empty "
                              "or another kind of file)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: refused: it holds Python objects that only unsafe unpickling could "
                              f"load ({_unpickling_detail(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - torch.load raises many kinds on a damaged file
        raise CheckpointError(f"{path}: not a readable SegStudio checkpoint ({str(exc).splitlines()[0][:160]})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "model_state" not in state:
        raise CheckpointError(f"{path}: not a SegStudio checkpoint (no model state or unknown format)")
    return state


def load_model_state(model: torch.nn.Module, state: dict, path: str | os.PathLike = "checkpoint") -> None:
    """Load weights, explaining a mismatch (a checkpoint of another model or size)."""
    want = state.get("model_name")
    try:
        model.load_state_dict(state["model_state"])
    except RuntimeError as exc:
        first = str(exc).splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise CheckpointError(f"{path}: its weights do not fit this model"
                              f"{f' (the checkpoint is a {want!r})' if want else ''}: {detail[:200]}") from None


# what may differ from a checkpoint's settings when its run resumes: the run's name (renamed), the
# device, the data's place (a moved folder), and what continuing a run changes
CONTINUE_MAY_CHANGE = ("name", "training.device", "data.path", "data.label_stack")


def check_same_settings(path: Path, state: dict, config) -> dict:
    """The settings checkpoint ``state`` (read from ``path``) was written with; CheckpointError
    when ``config`` uses another optimizer, or other settings than those a continuation changes
    differ (config.json edited by hand)."""
    from ..config import CONTINUABLE, settings_difference

    saved = state.get("config")
    optimizer = saved.get("optimizer") if isinstance(saved, dict) else None
    name = optimizer.get("name") if isinstance(optimizer, dict) else None
    if name != config.optimizer.name:
        raise CheckpointError(f"{path}: written by a run with optimizer {name!r}, but this run uses "
                              f"{config.optimizer.name!r}; it cannot be resumed from that checkpoint")
    # only_theirs: a checkpoint of an older SegStudio lacks settings added since
    changed = settings_difference(saved, config.to_dict(), CONTINUE_MAY_CHANGE + CONTINUABLE, only_theirs=True)
    if changed:
        raise CheckpointError(f"{path}: the run's settings changed since this checkpoint was written ({changed}); "
                              "a run continues with its own settings, only the epochs, the time limit and the "
                              "learning rate can change. Put the value back in config.json, or start a new run")
    return saved
