"""What the Predictions panel's background jobs compute, and how it runs them: scores of a
prediction against the truth (:func:`image_metrics`, :func:`before_after_metrics`), clean-up
steps drawn as RGB (:func:`step_rgb`, :func:`step_thumbnail`), the watershed clean-up of a cached
prediction (:func:`clean_up`), loading a checkpoint (:func:`load_predictor`), and
:class:`BackgroundJobsMixin`, which starts a job so that only the newest of its kind reports back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.core.metrics import foreground_rand_error, instance_labels, mean_defined, segmentation_scores
from app.core.postprocess import WatershedParams, watershed_postprocess

from .prediction_cache import CachedPrediction
from .render import CLASS_COLOURS
from .tasks import TaskRunner

THUMB_SOURCE = 128  # longer side of the arrays step thumbnails are drawn from


def image_metrics(foreground: np.ndarray, objects: int, truth: np.ndarray | None) -> dict[str, float]:
    """Scores of a binary foreground against the truth's foreground; only the object count and
    the foreground's share of the image when there is no truth."""
    out = {"objects": float(objects), "foreground": float(np.count_nonzero(foreground)) / max(1, foreground.size)}
    if truth is None:
        return out
    pred, true = (foreground > 0).astype(np.uint8), (truth > 0).astype(np.uint8)
    scores = segmentation_scores(pred, true, 2)
    out.update(pixel_accuracy=scores.pixel_accuracy, iou=scores.iou, dice=scores.dice,
               adapted_rand_error=mean_defined([foreground_rand_error(pred, true)]))  # None ("—"): no true object
    return out


def before_after_metrics(labels: np.ndarray, result, truth: np.ndarray | None) -> dict[str, dict[str, float]]:
    """Metrics of the raw prediction (``labels``) and of the watershed ``result``."""
    before = labels > 0
    return {"before": image_metrics(before, int(instance_labels(before).max(initial=0)), truth),
            "after": image_metrics(result.mask, result.object_count, truth)}


def label_rgb(labels: np.ndarray) -> np.ndarray:
    """Colour a label/marker image: one palette colour per label, the most common positive
    label (the background marker) dark grey, 0 black and -1 (watershed boundaries) white."""
    out = np.zeros(labels.shape + (3,), np.uint8)
    positive = labels > 0
    if positive.any():
        values = labels[positive].astype(np.int64)
        palette = CLASS_COLOURS
        out[positive] = palette[1 + (values - 1) % (len(palette) - 1)]
        out[labels == int(np.bincount(values).argmax())] = (70, 70, 70)
    out[labels < 0] = (255, 255, 255)
    return out


def step_rgb(array: np.ndarray) -> np.ndarray:
    """A post-processing step as RGB uint8 so it is visible: labels coloured, 0/1 masks and
    distance maps stretched to 0–255, 8-bit images shown as they are."""
    array = np.asarray(array)
    if array.dtype.kind in "iu" and array.dtype != np.uint8:
        return label_rgb(array)
    if array.dtype == np.uint8 and array.max(initial=0) > 1:
        gray = array
    else:
        data = array.astype(np.float32)
        top = float(data.max(initial=0.0))
        gray = np.clip(data * (255.0 / top) + 0.5, 0, 255).astype(np.uint8) if top > 0 else \
            np.zeros(array.shape, np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def step_thumbnail(array: np.ndarray, size: int = THUMB_SOURCE) -> np.ndarray:
    """``step_rgb`` of ``array`` subsampled so its longer side is at most about ``size``
    (plain slicing: label values stay labels)."""
    stride = max(1, -(-max(array.shape[:2]) // size))
    return step_rgb(np.ascontiguousarray(array[::stride, ::stride]))


def clean_up(prediction: CachedPrediction, params: WatershedParams):
    """The watershed clean-up of a cached prediction (``Predictor.postprocess`` without the model)."""
    return watershed_postprocess(prediction.cleanup_source(), params)


def load_predictor(path: Path, device: str):
    """``(predictor, note)``: the checkpoint on ``device``, or on the CPU (with a note saying
    why) when that device cannot be used. Imports torch, so call it from a worker thread."""
    from app.core.predictor import Predictor
    from app.core.training.checkpoint import CheckpointError

    try:
        return Predictor.from_checkpoint(path, device), ""
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - any device problem: fall back to the CPU
        if device == "cpu":
            raise
        return Predictor.from_checkpoint(path, "cpu"), f"device {device!r} unusable ({exc}); running on the CPU"


def file_mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class BackgroundJobsMixin:
    """Token-guarded background jobs of :class:`~app.ui.predictions_panel.PredictionsPanel`
    (needs ``_closed``, ``_tokens``, ``_pending`` and its runners)."""

    def _runners(self) -> tuple[TaskRunner, ...]:
        return (self._load_runner, self._predict_runner, self._post_runner, self._read_runner,
                self._view_runner, self._overlay_runner, self._step_runner)

    def _start(self, runner: TaskRunner, kind: str, job: Callable, on_done: Callable[[Any], None],
               on_failed: Callable[[str], None] | None = None, on_progress=None) -> bool:
        """Run ``job`` on ``runner``; its callbacks run only while it is the newest job of its
        ``kind``. False (nothing runs) once the panel is shut down."""
        if self._closed:
            return False
        token = self._next(kind)

        def done(result) -> None:
            if token == self._tokens[kind]:
                on_done(result)

        def failed(message: str) -> None:
            if token == self._tokens[kind]:
                if kind in self._pending:
                    self._pending[kind] = None
                if on_failed is not None:
                    on_failed(message)

        return runner.start(job, on_done=done, on_failed=failed, on_progress=on_progress) is not None

    def _stop(self, kind: str, runner: TaskRunner) -> None:
        """Drop the result of the running ``kind`` job and ask it to stop."""
        self._next(kind)
        runner.cancel()
        if kind in self._pending:
            self._pending[kind] = None

    def _next(self, kind: str) -> int:
        self._tokens[kind] += 1
        return self._tokens[kind]
