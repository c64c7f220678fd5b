"""What the Loss landscape panel's background jobs do, and the checks it makes on the GUI thread.

The jobs mirror ``segstudio landscape`` (:mod:`app.cli.landscape`): load the checkpoint, build
the losses and the fixed validation batch, draw the random directions and evaluate the grid
(:func:`compute_landscape`); the loss-versus-prediction curves (:func:`prediction_curves`); reading
stored snapshots and saved results (:func:`load_results`, :func:`load_result`) and saving a result
as ``.npz`` + ``.png`` (:func:`save_result`). Each imports the core (and so torch) only when it
runs, on a worker thread, and turns the core's exceptions into messages that name the cause.

:func:`check_loss_spec` validates the loss text (``"dice,bce,tversky:alpha=0.7"``) against the
loss registry without torch, so the panel can say what is wrong while the user types.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.landscape.loss_text import check_loss_spec, loss_items, parse_loss_item
from app.core.losses import LOSSES

DEFAULT_STEPS, DEFAULT_SPAN, DEFAULT_IMAGES = 21, 1.0, 4
STEP_LIMITS = (2, 401)  # as the command line accepts


@dataclass(frozen=True)
class LandscapeSettings:
    """One computation, as the command line's options: ``losses`` "" is the checkpoint's own
    loss, ``patch`` None the experiment's training patch size and 0 whole images, ``data`` None
    the checkpoint's experiment data, ``batch_size`` None automatic."""

    checkpoint: Path
    losses: str = ""
    dims: int = 2
    steps: int = DEFAULT_STEPS
    span: float = DEFAULT_SPAN
    images: int = DEFAULT_IMAGES
    patch: int | None = None
    seed: int = 0
    batch_size: int | None = None
    data: Path | None = None
    device: str = "auto"

    @property
    def points(self) -> int:
        return self.steps ** self.dims

    def problem(self) -> str | None:
        """Why these settings cannot be computed, or None."""
        low, high = STEP_LIMITS
        if not low <= self.steps <= high:
            return f"Steps must be {low}..{high}, not {self.steps}."
        if not self.span > 0:
            return f"Span must be above 0, not {self.span}."
        if self.dims not in (1, 2):
            return f"Directions must be 1 or 2, not {self.dims}."
        if self.images < 1:
            return "Use at least one validation image."
        return check_loss_spec(self.losses)[1]


# -- the loss text ---------------------------------------------------------------------------
def loss_names(text: str) -> set[str]:
    """The registry names the items of ``text`` use (unreadable items skipped)."""
    names = set()
    for item in loss_items(text):
        try:
            names.add(parse_loss_item(item)[0])
        except ValueError:
            pass
    return names


def weight_map_losses(text: str) -> list[str]:
    """The items of ``text`` whose loss needs the U-Net border weight map (``weighted_ce``)."""
    out = []
    for item in loss_items(text):
        try:
            name = parse_loss_item(item)[0]
        except ValueError:
            continue
        if name in LOSSES and LOSSES.get(name).meta.get("needs_weight"):
            out.append(item)
    return out


# -- jobs (worker thread) --------------------------------------------------------------------
def _without_path(message: str, path: Path) -> str:
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def compute_landscape(settings: LandscapeSettings, context):
    """The :class:`~app.core.landscape.LandscapeResult` of ``settings``; ``context`` is the
    task's (progress per grid point, cancellation between points)."""
    from app.core.landscape import (build_losses, fixed_batch, needs_weight_map, random_directions, slice_1d,
                                    slice_2d)
    from app.core.training.checkpoint import CheckpointError

    from .prediction_jobs import load_predictor
    from .tasks import TaskCancelled

    path = Path(settings.checkpoint)
    try:
        predictor, _note = load_predictor(path, settings.device)
    except CheckpointError as exc:
        raise ValueError(f"Checkpoint {path.name} cannot be used: {_without_path(str(exc), path)} ({path})") from None
    context.check()
    config = predictor.config
    try:
        losses = build_losses(settings.losses or None, config, predictor.num_classes)
    except ValueError as exc:
        raise ValueError(f"Losses: {exc}") from None
    patch = config.data.patch_size if settings.patch is None else (settings.patch or None)
    data = settings.data
    where = data or config.data.path or "the demo data"
    try:
        batch = fixed_batch(config, data, count=settings.images, patch=patch, seed=settings.seed,
                            normaliser=predictor.normaliser, weight_map=needs_weight_map(losses) or None)
    except Exception as exc:  # noqa: BLE001 - a missing or empty folder, unreadable images
        if "no images" in str(exc):
            raise ValueError(f"No validation images in {where}: the landscape needs at least one image "
                             f"with its mask") from None
        raise ValueError(f"Cannot read the images in {where}: {exc}. Choose another folder under Data.") from None
    if batch.images.shape[1] != predictor.in_channels:
        raise ValueError(f"The model of {path.name} takes {predictor.in_channels}-channel images; the images "
                         f"in {where} have {batch.images.shape[1]}: a checkpoint of another experiment?")
    context.check()
    directions = random_directions(predictor.model, settings.dims, seed=settings.seed)
    meta = {"checkpoint": str(path.resolve()), "model": config.model.name, "experiment": config.name,
            "seed": settings.seed, "patch": patch or 0}
    slicer = slice_1d if settings.dims == 1 else slice_2d
    try:
        return slicer(predictor.model, batch, losses, directions[0] if settings.dims == 1 else directions,
                      settings.steps, settings.span, batch_size=settings.batch_size, progress=context.progress,
                      should_stop=lambda: context.cancelled, meta=meta)
    except InterruptedError:
        raise TaskCancelled() from None


def prediction_curves(spec: str, config, context: int = 64, points: int = 101):
    """:class:`~app.core.landscape.PredictionCurves` of the losses in ``spec`` ("" : the
    experiment's own loss, with its parameters)."""
    from app.core.landscape import build_losses, loss_vs_prediction

    try:
        losses = build_losses(spec or None, config)
    except ValueError as exc:
        raise ValueError(f"Losses: {exc}") from None
    return loss_vs_prediction(losses, points, context=context)


def load_results(paths: list[tuple[int, Path]], context=None) -> list[tuple[int, Any, str | None]]:
    """``(epoch, result or None, problem or None)`` of each stored snapshot (a damaged file is
    reported, not fatal)."""
    from app.core.landscape import LandscapeResult

    out = []
    for done, (epoch, path) in enumerate(paths):
        if context is not None:
            context.check()
            context.progress(done, len(paths))
        try:
            out.append((epoch, LandscapeResult.load(path), None))
        except ValueError as exc:
            out.append((epoch, None, str(exc)))
    return out


def load_result(path: Path):
    from app.core.landscape import LandscapeResult

    return LandscapeResult.load(path)


def png_path(npz: Path) -> Path:
    """The figure written beside a saved ``.npz``."""
    return Path(npz).with_suffix(".png")


def save_result(result, path: Path) -> tuple[Path, Path]:
    """Write ``result`` as ``path`` (``.npz``, atomically) and its figure beside it (``.png``)."""
    from app.core.landscape import save_figure

    path = Path(path)
    if path.suffix.lower() != ".npz":
        path = path.with_name(path.name + ".npz")
    try:
        path.parent.mkdir(exist_ok=True)  # a run's landscape/ folder; never a run folder that has gone
        npz = result.save(path)
        png = save_figure(result, png_path(npz))
    except OSError as exc:
        raise OSError(f"Cannot write {path}: {exc.strerror or exc}") from None
    return npz, png


def run_folder_of(checkpoint: Path | None) -> Path | None:
    """``<run>`` for ``<run>/checkpoints/x.pt`` (where training stores its snapshots), else None."""
    if checkpoint is None:
        return None
    folder = Path(checkpoint).parent
    return folder.parent if folder.name == "checkpoints" else None


def checkpoint_label(path: Path | None) -> str:
    """``run/checkpoints/best.pt`` for a run's checkpoint (every run has a best.pt), else the file name."""
    if path is None:
        return ""
    run = run_folder_of(path)
    return f"{run.name}/checkpoints/{Path(path).name}" if run else Path(path).name


def default_save_path(checkpoint: Path | None, epoch: int | None = None) -> Path:
    """``<run>/landscape/landscape.npz`` as the command line writes (``landscape_epoch_XXX.npz``
    for a snapshot), or beside the checkpoint, or in the home folder."""
    run = run_folder_of(checkpoint)
    folder = (run / "landscape") if run else (Path(checkpoint).parent if checkpoint else Path.home())
    name = "landscape.npz" if epoch is None else f"landscape_epoch_{epoch:03d}.npz"
    return folder / name

