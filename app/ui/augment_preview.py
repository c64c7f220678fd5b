"""Augmentation preview data: computing training draws and turning them into display arrays.

Everything here except :class:`DrawTile` is pure NumPy and runs on worker threads: the tracing
pipeline that records which transforms a draw applied, the :class:`Draw` and
:class:`PreviewRequest` records, :func:`compute_preview` (the exact patches the training data set
draws for consecutive ``(epoch, index)`` keys) and :func:`render_preview` (display images, mask
and padding overlays, grid thumbnails). :class:`DrawTile` is the small clickable grid widget that
shows one rendered draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout

from app.core.arrays import as_hwc
from app.core.augment import Augmented, Pipeline
from app.core.augment.pipeline import Step
from app.core.patch_plan import training_patch, training_pipeline

from .render import composite, padding_overlay, thumbnail, to_display
from .sample_view import MaskLayer, SampleView, find_view, sample_view

TILE_SIZE = 160
TILE_MASK_OPACITY = 0.5


# -- computing draws (no widgets: runs on a worker thread) ---------------------------------------
class _TracingPipeline(Pipeline):
    """The training pipeline, unchanged, that also keeps the steps of its latest call."""

    def __init__(self, base: Pipeline):
        super().__init__(base.transforms, base.seed)
        self.last_steps: list[Step] = []

    def trace(self, image, mask=None, key=0):
        self.last_steps = super().trace(image, mask, key)
        return self.last_steps


@dataclass
class Draw:
    """One training draw: its key, source sample, final patch and the image before the crop."""

    epoch: int
    index: int
    sample: Any
    patch: Augmented
    whole: Augmented
    steps: list[tuple[str, str]]  # (transform, "applied" | "skipped" | "off"), final crop excluded
    levels: tuple[float, float] | None  # display range of the source (None: the dtype's own)


@dataclass
class PreviewRequest:
    """Everything a worker needs, copied so the GUI may keep editing."""

    config: Any
    samples: list
    epoch: int
    index: int
    count: int
    per_epoch: int
    levels_cache: dict
    whole: bool = False  # how to render the draws once computed (see render_preview)
    padding: bool = True
    sources: dict | None = None  # source views already prepared (ViewCache.snapshot())


def draw_keys(epoch: int, index: int, count: int, per_epoch: int, epochs: int) -> list[tuple[int, int]]:
    """Up to ``count`` consecutive training keys from ``(epoch, index)``, rolling into the next
    epoch and ending with the run's last draw (a run of ``epochs`` epochs draws nothing after it)."""
    keys = []
    for offset in range(count):
        position = index + offset
        key = (epoch + position // per_epoch, position % per_epoch)
        if offset and key[0] >= max(1, epochs):  # the first key is the one asked for, always shown
            break
        keys.append(key)
    return keys


def display_levels(image: np.ndarray, cache: dict) -> tuple[float, float] | None:
    """A fixed display range per source image, so intensity changes stay visible (None for 8-bit)."""
    if image.dtype == np.uint8:
        return None
    key = id(image)
    if key not in cache:
        data = image.astype(np.float32)
        finite = data[np.isfinite(data)]
        low, high = np.percentile(finite, (0.5, 99.5)) if finite.size else (0.0, 1.0)
        cache[key] = (float(low), float(high) if high > low else float(low) + 1.0)
    return cache[key]


def display_rgb(image: np.ndarray, levels: tuple[float, float] | None) -> np.ndarray:
    """An H×W×C image as uint8 RGB with the given display range."""
    array = as_hwc(np.asarray(image))
    if array.shape[2] == 2:
        array = array[:, :, :1]
    return to_display(array) if levels is None else to_display(array, *levels)


def compute_draw(config, samples: list, epoch: int, index: int, pipeline: _TracingPipeline,
                 levels_cache: dict) -> Draw:
    """The training patch for ``(epoch, index)`` and what led to it."""
    sample, patch = training_patch(config, samples, epoch, index, pipeline=pipeline)
    steps = pipeline.last_steps
    if len(steps) >= 2:
        whole = steps[-2].result
    else:
        whole = Augmented(as_hwc(sample.image), sample.mask, None)
    status = [(step.name, "applied" if step.applied else ("skipped" if transform.enabled else "off"))
              for step, transform in zip(steps[:-1], pipeline.transforms[:-1])]
    return Draw(epoch, index, sample, patch, whole, status, display_levels(sample.image, levels_cache))


@dataclass(eq=False)
class PreviewImages:
    """The preview's arrays for some draws and render options, ready to put on screen."""

    draws: list[Draw]
    whole: bool
    padding: bool
    source: SampleView  # the first draw's source sample
    shown_rgb: np.ndarray  # the first draw's patch (or whole augmented image)
    shown_mask: MaskLayer | None
    padding_layer: np.ndarray | None
    tiles: list[tuple[np.ndarray, np.ndarray]]  # per draw: full-resolution RGB and its thumbnail


def shown_result(draw: Draw, whole: bool) -> Augmented:
    """The draw's final patch, or (``whole``) its image before the crop."""
    return draw.whole if whole else draw.patch


def render_pixels(draws: list[Draw], whole: bool, sources: dict) -> int:
    """How many pixels :func:`render_preview` converts (the measure of its cost)."""
    pixels = sum(shown_result(d, whole).image.shape[0] * shown_result(d, whole).image.shape[1] for d in draws)
    if draws and find_view(sources, draws[0].sample) is None:
        pixels += draws[0].sample.image.shape[0] * draws[0].sample.image.shape[1]
    return pixels


def source_view(draw: Draw, check: Callable[[], None] = lambda: None) -> SampleView:
    """The draw's source sample prepared for the original view (its fixed display range)."""
    return sample_view(draw.sample, check, lambda image: display_rgb(image, draw.levels))


def tile_images(draw: Draw, whole: bool, padding: bool) -> tuple[np.ndarray, np.ndarray]:
    """A grid tile: the draw with its mask outline (and padding), full size and as a thumbnail."""
    shown = shown_result(draw, whole)
    layers = [MaskLayer(shown.mask).overlay(TILE_MASK_OPACITY, "contour") if shown.mask is not None else None]
    if padding:
        layers.append(padding_overlay(shown.valid))
    rgb = composite(display_rgb(shown.image, draw.levels), *layers)
    return rgb, thumbnail(rgb, TILE_SIZE)


def render_preview(draws: list[Draw], whole: bool, padding: bool, sources: dict | None = None,
                   check: Callable[[], None] = lambda: None) -> PreviewImages:
    """Every array the preview shows (pure NumPy: runs on a worker thread for large images)."""
    first = draws[0]
    source = find_view(sources or {}, first.sample) or source_view(first, check)
    check()
    shown = shown_result(first, whole)
    shown_rgb = display_rgb(shown.image, first.levels)
    shown_mask = MaskLayer(shown.mask) if shown.mask is not None else None
    padding_layer = padding_overlay(shown.valid) if padding else None
    tiles = []
    for draw in draws:
        check()
        tiles.append(tile_images(draw, whole, padding))
    return PreviewImages(draws, whole, padding, source, shown_rgb, shown_mask, padding_layer, tiles)


def compute_preview(request: PreviewRequest, check: Callable[[], None] = lambda: None) -> list[Draw]:
    """The draws for the request's consecutive keys (the first is the one previewed large)."""
    pipeline = _TracingPipeline(training_pipeline(request.config, request.samples))
    draws = []
    for epoch, index in draw_keys(request.epoch, request.index, request.count, request.per_epoch,
                                  int(request.config.training.epochs)):
        check()
        draws.append(compute_draw(request.config, request.samples, epoch, index, pipeline, request.levels_cache))
    return draws


# -- small widgets -------------------------------------------------------------------------------
def _pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QPixmap.fromImage(QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())


class _ScaledImage(QLabel):
    """A pixmap that fills the label, keeping its aspect ratio and crisp pixels."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._source: QPixmap | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(40, 40)

    def set_rgb(self, rgb: np.ndarray | None) -> None:
        self._source = None if rgb is None else _pixmap(rgb)
        self._rescale()

    def _rescale(self) -> None:
        if self._source is None:
            self.clear()
            return
        self.setPixmap(self._source.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.FastTransformation))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().resizeEvent(event)
        self._rescale()


class DrawTile(QFrame):
    """One small draw of the grid; clicking it previews that draw large."""

    clicked = Signal(int, int)  # epoch, index

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.image_label = _ScaledImage()
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(1)
        layout.addWidget(self.image_label, 1)
        layout.addWidget(self.caption)
        self.rgb: np.ndarray | None = None
        self.key: tuple[int, int] | None = None

    def set_draw(self, rgb: np.ndarray | None, key: tuple[int, int] | None, tooltip: str = "",
                 thumb: np.ndarray | None = None) -> None:
        """Show ``rgb`` (``thumb``: its thumbnail, when already made)."""
        self.rgb, self.key = rgb, key
        if rgb is not None and thumb is None:
            thumb = thumbnail(rgb, TILE_SIZE)
        self.image_label.set_rgb(thumb)
        self.caption.setText("" if key is None else f"e{key[0]} #{key[1]}")
        self.setToolTip(tooltip)

    def rendered(self) -> np.ndarray | None:
        """The tile's full-resolution RGB (image, mask contour and padding blended)."""
        return self.rgb

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if event.button() == Qt.MouseButton.LeftButton and self.key is not None:
            self.clicked.emit(*self.key)
            event.accept()
            return
        super().mousePressEvent(event)
