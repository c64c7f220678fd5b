"""Predicting a folder of images into a new folder: what ``segstudio predict`` and the
Predictions panel's *Predict folder…* write.

For each image NAME: ``NAME.png`` (the mask: 0/255 for binary models, class indices otherwise)
and, when asked, ``NAME_watershed.png`` (the clean-up), ``NAME_overlay.png`` (the mask over the
image) and ``NAME_probability.png`` (the foreground probability, binary models). Then
``predictions.json``: the checkpoint, model, clean-up settings, and the images skipped and why.
Every file is written atomically; the input folder is never written to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write_json
from .imageio import ImageReadError, is_image_file, read_image, write_image
from .postprocess import WatershedParams

MANIFEST_NAME = "predictions.json"


class BatchError(ValueError):
    """The batch cannot start: the reason names the folder."""


@dataclass(frozen=True)
class BatchOutputs:
    """Which files beside each mask."""

    watershed: bool = False
    overlay: bool = False
    probabilities: bool = False

    def suffixes(self) -> list[str]:
        return ([""] + ["_watershed"] * self.watershed + ["_overlay"] * self.overlay
                + ["_probability"] * self.probabilities)


@dataclass
class BatchResult:
    out: Path
    total: int
    written: list[Path] = field(default_factory=list)  # the masks, one per predicted image
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"}
    cancelled: bool = False
    outputs: list[dict] = field(default_factory=list)  # {"image", "mask"[, "probability"]}: file names


def batch_inputs(source: str | Path, out: str | Path) -> list[Path]:
    """The images to predict (``source`` is an image or a folder of them), after checking that
    ``out`` is new or empty and not inside the input folder. :class:`BatchError` saying why not."""
    source, target = Path(source).resolve(), Path(out).resolve()
    if not source.exists():
        raise BatchError(f"{source} does not exist")
    folder = source if source.is_dir() else source.parent
    if target == folder or folder in target.parents:
        raise BatchError(f"{out} is inside the input folder {folder}; SegStudio never writes there")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BatchError(f"{out} is not an empty folder; choose a new folder")
    images = sorted(p for p in source.iterdir() if is_image_file(p)) if source.is_dir() else [source]
    if not images:
        raise BatchError(f"no images in {source}")
    return images


def output_names(images: list[Path], suffixes: list[str]) -> list[str]:
    """A base name per input whose outputs (``name + suffix + ".png"``) collide with no other
    input's, ignoring case (as Windows and macOS do): the stem, else the whole file name when
    another input shares the stem (a.png, a.tif), else a numbered variant."""
    stems = Counter(p.stem.lower() for p in images)
    taken: set[str] = {MANIFEST_NAME}
    names = []
    for path in images:
        base = path.stem if stems[path.stem.lower()] == 1 else path.name
        name, n = base, 1
        while any(f"{name}{suffix}.png".lower() in taken for suffix in suffixes):
            n += 1
            name = f"{base}-{n}"
        taken.update(f"{name}{suffix}.png".lower() for suffix in suffixes)
        names.append(name)
    return names


def mask_png(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """0/255 for binary models, class indices for multi-class ones."""
    return (labels > 0).astype(np.uint8) * 255 if num_classes <= 2 else labels.astype(np.uint8)


def probability_png(probability: np.ndarray) -> np.ndarray:
    """A foreground probability (0..1) as 8-bit 0..255, as reviews store them."""
    return np.clip(probability * 255 + 0.5, 0, 255).astype(np.uint8)


def overlay_png(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The mask in red over the image (RGB)."""
    from .arrays import as_hwc, dtype_range

    img = as_hwc(image).astype(np.float32)
    img = img / max(1.0, dtype_range(image.dtype)[1]) * 255 if image.dtype != np.uint8 else img
    rgb = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]
    colour = np.array([255, 64, 64], np.float32)
    fg = mask > 0
    rgb[fg] = 0.6 * rgb[fg] + 0.4 * colour
    return np.clip(rgb, 0, 255).astype(np.uint8)


def predict_folder(predictor, checkpoint: str | Path, source: str | Path, out: str | Path,
                   outputs: BatchOutputs = BatchOutputs(), params: WatershedParams | None = None, *,
                   progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] = lambda: False,
                   on_image: Callable[[Path, Path | None, str], None] | None = None) -> BatchResult:
    """Predict every image of ``source`` into ``out`` with ``predictor`` (loaded from
    ``checkpoint``); ``params``: the clean-up settings (default: the run's). An image that cannot
    be read or predicted is skipped and listed, the rest go on; ``on_image(path, mask, reason)``
    hears of each. Stopping keeps what was written and says so in predictions.json."""
    images = batch_inputs(source, out)
    if outputs.probabilities and predictor.num_classes > 2:
        raise BatchError(f"probability maps are for binary models; this one predicts {predictor.num_classes} "
                         "classes")
    params = params or predictor.watershed_params
    target = Path(out).resolve()
    target.mkdir(parents=True, exist_ok=True)
    result = BatchResult(target, len(images))
    for i, (path, name) in enumerate(zip(images, output_names(images, outputs.suffixes()))):
        if should_stop():
            result.cancelled = True
            break
        try:
            image = read_image(path)
            prediction = predictor.predict(image, should_stop=should_stop)
        except InterruptedError:  # stopped half-way through this image
            result.cancelled = True
            break
        except (ImageReadError, ValueError, RuntimeError) as exc:  # one bad image does not stop the batch
            result.skipped.append({"path": str(path), "reason": str(exc)})
            if on_image:
                on_image(path, None, str(exc) if path.name in str(exc) else f"{path.name}: {exc}")
            if progress:
                progress(i + 1, len(images))
            continue
        mask = write_image(target / f"{name}.png", mask_png(prediction.labels, predictor.num_classes))
        if outputs.watershed:
            cleaned = predictor.postprocess(prediction, params, keep_steps=False)
            write_image(target / f"{name}_watershed.png", cleaned.mask * np.uint8(255))
        if outputs.overlay:
            write_image(target / f"{name}_overlay.png", overlay_png(image, prediction.labels))
        written = {"image": path.name, "mask": mask.name}
        if outputs.probabilities:
            foreground = prediction.probabilities[min(1, len(prediction.probabilities) - 1)]
            written["probability"] = write_image(target / f"{name}_probability.png", probability_png(foreground)).name
        result.written.append(mask)
        result.outputs.append(written)
        if on_image:
            on_image(path, mask, "")
        if progress:
            progress(i + 1, len(images))
    manifest = {"checkpoint": str(Path(checkpoint).resolve()), "model": predictor.config.model.name,
                "experiment": predictor.config.name, "images": str(images[0].parent),
                "postprocess": params.to_dict(), "skipped": result.skipped,
                "outputs": result.outputs}  # which mask (and map) is which image's: a review pairs by these
    if result.cancelled:
        manifest["stopped_after"] = len(result.written) + len(result.skipped)
    atomic_write_json(target / MANIFEST_NAME, manifest)
    return result
