"""Augmentation panel: edit the training augmentation pipeline and preview exactly what training draws.

The left side edits ``config.augmentation`` (one row per transform: enabled, probability, params).
The right side shows, for an ``(epoch, index)`` key, the source sample and the augmented patch that
:func:`app.core.patch_plan.training_patch` gives for that key, i.e. the very patch the training
data set draws, plus a grid of the following draws. Pipelines run on a background thread
(augmenting large source images can take far longer than a frame), and so does turning large
images into display images and overlays; :meth:`AugmentPanel.refresh_now` computes and renders
synchronously for tests and callers that need the result at once.
"""

from __future__ import annotations

import copy
import html
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFrame, QGridLayout, QGroupBox, QHBoxLayout,
                               QLabel, QPushButton, QScrollArea, QSizePolicy, QSlider, QSpinBox, QSplitter,
                               QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from app.core.arrays import as_hwc
from app.core.augment import TRANSFORMS, Augmented, Pipeline, default_pipeline
from app.core.augment.pipeline import PIPELINE_VERSION, Step
from app.core.patch_plan import patches_per_epoch, training_patch, training_pipeline
from app.core.registry import RegistryError

from .image_view import ImageCanvas
from .param_form import ParamForm
from .render import composite, padding_overlay, thumbnail, to_display
from .sample_view import MaskLayer, SampleView, ViewCache, find_view, sample_view
from .tasks import TaskRunner

GRID_DRAWS = 8
GRID_COLUMNS = 4
DEBOUNCE_MS = 40
TILE_SIZE = 160
TILE_MASK_OPACITY = 0.5
# Up to this many pixels to convert (~30 ms), the preview is rendered at once on the GUI thread; beyond, in the
# background (8 draws of 256² patches stay synchronous).
SYNC_RENDER_PIXELS = 600_000
MASK_MODES = ("contour", "fill", "both", "off")
SEED_LIMIT = 2**31 - 1
BANNER_STYLE = ("QLabel { background: rgba(220, 50, 50, 0.18); border: 1px solid rgba(220, 50, 50, 0.7);"
                " border-radius: 3px; padding: 4px; }")
NOTE_STYLE = ("QLabel { background: rgba(230, 170, 30, 0.18); border: 1px solid rgba(230, 170, 30, 0.7);"
              " border-radius: 3px; padding: 4px; }")


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


def draw_keys(epoch: int, index: int, count: int, per_epoch: int) -> list[tuple[int, int]]:
    """``count`` consecutive training keys from ``(epoch, index)``, rolling into the next epoch."""
    keys = []
    for offset in range(count):
        position = index + offset
        keys.append((epoch + position // per_epoch, position % per_epoch))
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


def _shown(draw: Draw, whole: bool) -> Augmented:
    return draw.whole if whole else draw.patch


def render_pixels(draws: list[Draw], whole: bool, sources: dict) -> int:
    """How many pixels :func:`render_preview` converts (the measure of its cost)."""
    pixels = sum(_shown(d, whole).image.shape[0] * _shown(d, whole).image.shape[1] for d in draws)
    if draws and find_view(sources, draws[0].sample) is None:
        pixels += draws[0].sample.image.shape[0] * draws[0].sample.image.shape[1]
    return pixels


def source_view(draw: Draw, check: Callable[[], None] = lambda: None) -> SampleView:
    """The draw's source sample prepared for the original view (its fixed display range)."""
    return sample_view(draw.sample, check, lambda image: display_rgb(image, draw.levels))


def tile_images(draw: Draw, whole: bool, padding: bool) -> tuple[np.ndarray, np.ndarray]:
    """A grid tile: the draw with its mask outline (and padding), full size and as a thumbnail."""
    shown = _shown(draw, whole)
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
    shown = _shown(first, whole)
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
    pipeline = _TracingPipeline(training_pipeline(request.config))
    draws = []
    for epoch, index in draw_keys(request.epoch, request.index, request.count, request.per_epoch):
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


def _tool_button(text: str, tip: str, name: str, slot) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setObjectName(name)
    button.setAutoRaise(True)
    button.clicked.connect(slot)
    return button


class TransformRow(QFrame):
    """Editor of one pipeline entry: enabled, probability and the transform's parameters.

    Values the user has not touched are kept exactly as in the config (widgets may round or
    clamp what they show); ``spec()`` returns the entry as it should be saved.
    """

    changed = Signal()
    moveRequested = Signal(int)  # -1 up, +1 down
    removeRequested = Signal()

    def __init__(self, spec: Any, position: int, count: int, expanded: bool = True, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName(f"transform_row_{position}")
        self._raw = copy.deepcopy(spec)
        raw = spec if isinstance(spec, dict) else {}
        self.name = raw.get("name")
        self.entry = TRANSFORMS.get(self.name) if isinstance(self.name, str) and self.name in TRANSFORMS else None
        self._enabled = raw.get("enabled", True)
        self._p = raw.get("p", 1.0)
        self._params = copy.deepcopy(raw.get("params", {}))
        self._build(position, count, expanded)

    # -- building ----------------------------------------------------------------------------
    def _build(self, position: int, count: int, expanded: bool) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 3, 4, 3)
        layout.setSpacing(3)
        layout.addLayout(self._header(position, count, expanded))
        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(18, 0, 0, 0)
        body.setSpacing(3)
        body.addLayout(self._probability_row())
        params = self.entry.params if self.entry is not None else ()
        self.form = ParamForm(params, self._form_values())
        self.form.setObjectName("params")
        self.form.changed.connect(self._on_params)
        body.addWidget(self.form)
        if self.entry is None:
            problem = QLabel(f"Unknown augmentation {self.name!r}: remove it, or pick one of "
                             f"{', '.join(TRANSFORMS.names())}.")
            problem.setWordWrap(True)
            problem.setStyleSheet(BANNER_STYLE)
            body.addWidget(problem)
            for widget in (self.enabled_box, self.p_slider, self.p_spin, self.form):
                widget.setEnabled(False)
        layout.addWidget(self.body)
        self.body.setVisible(expanded)

    def _header(self, position: int, count: int, expanded: bool) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(2)
        self.expand_button = QToolButton()
        self.expand_button.setAutoRaise(True)
        self.expand_button.setCheckable(True)
        self.expand_button.setChecked(expanded)
        self.expand_button.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.expand_button.setToolTip("Show or hide this transform's settings")
        self.expand_button.toggled.connect(self.set_expanded)
        self.enabled_box = QCheckBox(str(self.name))
        self.enabled_box.setObjectName("enabled")
        self.enabled_box.setChecked(bool(self._enabled))
        kind = self.entry.meta.get("kind", "") if self.entry is not None else "unknown"
        description = self.entry.description if self.entry is not None else "not a registered augmentation"
        self.enabled_box.setToolTip(f"{description}\nkind: {kind}\nTick to use this transform in training.")
        self.enabled_box.toggled.connect(self._on_enabled)
        kind_label = QLabel(kind)
        kind_label.setEnabled(False)  # the palette's disabled text: a quiet tag in any theme
        kind_label.setToolTip("geometric: moves image, mask and valid region together; intensity: image only")
        self.up_button = _tool_button("▲", "Move up (applied earlier)", "move_up",
                                      lambda: self.moveRequested.emit(-1))
        self.down_button = _tool_button("▼", "Move down (applied later)", "move_down",
                                        lambda: self.moveRequested.emit(1))
        self.remove_button = _tool_button("✕", "Remove this transform from the pipeline", "remove",
                                          lambda: self.removeRequested.emit())
        self.up_button.setEnabled(position > 0)
        self.down_button.setEnabled(position < count - 1)
        for widget in (self.expand_button, self.enabled_box):
            row.addWidget(widget)
        row.addWidget(kind_label)
        row.addStretch(1)
        for widget in (self.up_button, self.down_button, self.remove_button):
            row.addWidget(widget)
        return row

    def _probability_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        tip = "Probability that this transform is applied to a training patch (0 = never, 1 = always)"
        label = QLabel("p")
        label.setToolTip(tip)
        self.p_slider = QSlider(Qt.Orientation.Horizontal)
        self.p_slider.setObjectName("p_slider")
        self.p_slider.setRange(0, 100)
        self.p_slider.setToolTip(tip)
        self.p_spin = QDoubleSpinBox()
        self.p_spin.setObjectName("p_spin")
        self.p_spin.setRange(0.0, 1.0)
        self.p_spin.setDecimals(3)
        self.p_spin.setSingleStep(0.05)
        self.p_spin.setKeyboardTracking(False)
        self.p_spin.setToolTip(tip)
        shown = self._p if isinstance(self._p, (int, float)) and not isinstance(self._p, bool) else 1.0
        self.p_spin.setValue(shown)
        self.p_slider.setValue(round(self.p_spin.value() * 100))
        self.p_slider.valueChanged.connect(lambda value: self.p_spin.setValue(value / 100))
        self.p_spin.valueChanged.connect(self._on_p)
        row.addWidget(label)
        row.addWidget(self.p_slider, 1)
        row.addWidget(self.p_spin)
        return row

    def _form_values(self) -> dict:
        """Params to show: each valid configured value, the default where one is invalid."""
        if self.entry is None or not isinstance(self._params, dict):
            return {}
        declared = {p.name: p for p in self.entry.params}
        values = self.entry.defaults()
        for key, value in self._params.items():
            if key in declared:
                try:
                    values[key] = declared[key].validate(value)
                except RegistryError:
                    pass
        return values

    # -- editing -----------------------------------------------------------------------------
    def set_expanded(self, expanded: bool) -> None:
        self.body.setVisible(expanded)
        self.expand_button.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        if self.expand_button.isChecked() != expanded:
            self.expand_button.setChecked(expanded)

    @property
    def expanded(self) -> bool:
        return self.expand_button.isChecked()

    def _on_enabled(self, checked: bool) -> None:
        self._enabled = checked
        self.changed.emit()

    def _on_p(self, value: float) -> None:
        self.p_slider.blockSignals(True)
        self.p_slider.setValue(round(value * 100))
        self.p_slider.blockSignals(False)
        self._p = round(float(value), 3)
        self.changed.emit()

    def _on_params(self, values: dict) -> None:
        self._params = values
        self.changed.emit()

    def spec(self) -> Any:
        """The entry for the pipeline dict (unknown entries come back unchanged)."""
        if self.entry is None:
            return copy.deepcopy(self._raw)
        return {"name": self.name, "enabled": self._enabled, "p": self._p, "params": copy.deepcopy(self._params)}


# -- the panel -----------------------------------------------------------------------------------
class AugmentPanel(QWidget):
    """Edits ``config.augmentation`` and previews the exact training patches it produces."""

    title = "Augmentation"

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.transform_rows: list[TransformRow] = []
        self.grid_canvases: list[DrawTile] = []
        self._seed: Any = 0
        self._draws: list[Draw] = []
        self._images: PreviewImages | None = None  # what is on screen
        self._mask_keys: dict[str, tuple | None] = {}  # per canvas: what its mask layer was built from
        self._generation = 0
        self._stale = False
        self._closed = False
        self._levels_cache: dict = {}
        self.sources = ViewCache()  # source samples' display images and masks
        self.runner = TaskRunner("augment-preview", self)
        self.render_runner = TaskRunner("augment-render", self)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._start_background)
        self._build()
        self._connect_state()
        self._rebuild_rows()
        self._update_ranges()
        self._on_training(state.training)
        self.schedule_refresh()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.banner = QLabel()
        self.banner.setObjectName("augment_banner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        layout.addWidget(self.banner)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("augment_splitter")
        self.splitter.addWidget(self._build_editor())
        self.splitter.addWidget(self._build_preview())
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([340, 660])
        layout.addWidget(self.splitter, 1)
        shortcut = QShortcut(QKeySequence("Ctrl+Shift+N"), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self.new_sample)
        self.new_sample_shortcut = shortcut

    def _build_editor(self) -> QScrollArea:
        self.editor = QWidget()
        self.editor.setObjectName("augment_editor")
        column = QVBoxLayout(self.editor)
        column.setContentsMargins(2, 2, 2, 2)
        self.lock_label = QLabel("Training is running: the pipeline is locked until it ends.")
        self.lock_label.setWordWrap(True)
        self.lock_label.setStyleSheet(NOTE_STYLE)
        self.lock_label.hide()
        column.addWidget(self.lock_label)
        self.controls = QWidget()
        controls = QGridLayout(self.controls)
        controls.setContentsMargins(0, 0, 0, 0)
        seed_label = QLabel("Seed")
        self.seed_spin = QSpinBox()
        self.seed_spin.setObjectName("pipeline_seed")
        self.seed_spin.setRange(0, SEED_LIMIT)
        self.seed_spin.setKeyboardTracking(False)
        tip = "Pipeline seed: with the (epoch, index) key it fixes every random draw, in training and here"
        seed_label.setToolTip(tip)
        self.seed_spin.setToolTip(tip)
        self.seed_spin.valueChanged.connect(self._on_seed)
        self.reset_button = QPushButton("Reset to default")
        self.reset_button.setObjectName("reset_pipeline")
        self.reset_button.setToolTip("Replace the pipeline with SegStudio's recommended augmentation")
        self.reset_button.clicked.connect(self.reset_to_default)
        self.add_combo = QComboBox()
        self.add_combo.setObjectName("add_augmentation")
        self.add_combo.setToolTip("Append a transform to the pipeline (p = 0.5, default parameters)")
        self.add_combo.addItem("Add augmentation…", None)
        for name in TRANSFORMS.names():
            entry = TRANSFORMS.get(name)
            self.add_combo.addItem(f"{name}  ({entry.meta.get('kind', '')})", name)
            self.add_combo.setItemData(self.add_combo.count() - 1, entry.description, Qt.ItemDataRole.ToolTipRole)
        self.add_combo.activated.connect(self._on_add_activated)
        controls.addWidget(seed_label, 0, 0)
        controls.addWidget(self.seed_spin, 0, 1)
        controls.addWidget(self.reset_button, 0, 2)
        controls.addWidget(self.add_combo, 1, 0, 1, 3)
        controls.setColumnStretch(1, 1)
        column.addWidget(self.controls)
        self.rows_box = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_box)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.setSpacing(4)
        self.empty_label = QLabel("No augmentation: training sees plain random crops.")
        self.empty_label.setWordWrap(True)
        self.empty_label.setEnabled(False)
        self.rows_layout.addWidget(self.empty_label)
        column.addWidget(self.rows_box)
        column.addStretch(1)
        self.editor_scroll = QScrollArea()
        self.editor_scroll.setObjectName("augment_editor_scroll")
        self.editor_scroll.setWidgetResizable(True)
        self.editor_scroll.setWidget(self.editor)
        self.editor_scroll.setMinimumWidth(180)
        return self.editor_scroll

    def _build_preview(self) -> QStackedWidget:
        self.preview_stack = QStackedWidget()
        self.preview_stack.setObjectName("augment_preview")
        self.hint_label = QLabel()
        self.hint_label.setObjectName("augment_hint")
        self.hint_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint_label.setWordWrap(True)
        self.preview_stack.addWidget(self.hint_label)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self._build_main_preview())
        splitter.addWidget(self._build_grid())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([400, 300])
        self.preview_stack.addWidget(splitter)
        return self.preview_stack

    def _build_main_preview(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(self._preview_controls())
        canvases = QSplitter(Qt.Orientation.Horizontal)
        self.original_canvas = ImageCanvas("Original")
        self.original_canvas.setObjectName("original_canvas")
        self.augmented_canvas = ImageCanvas("Augmented")
        self.augmented_canvas.setObjectName("augmented_canvas")
        for canvas in (self.original_canvas, self.augmented_canvas):
            canvas.setMinimumSize(90, 90)
        canvases.addWidget(self.original_canvas)
        canvases.addWidget(self.augmented_canvas)
        column.addWidget(canvases, 1)
        self.applied_label = QLabel()
        self.applied_label.setObjectName("applied_label")
        self.applied_label.setWordWrap(True)
        self.applied_label.setToolTip("Which transforms this draw applied (their probability decides per draw)")
        column.addWidget(self.applied_label)
        return box

    def _preview_controls(self) -> QGridLayout:
        """Which draw to show and how: three short rows, so the panel stays usable when narrow."""
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        self.epoch_spin = QSpinBox()
        self.epoch_spin.setObjectName("preview_epoch")
        self.epoch_spin.setPrefix("epoch ")
        self.epoch_spin.setToolTip("Training epoch of the draw (sample order and augmentation depend on it)")
        self.index_spin = QSpinBox()
        self.index_spin.setObjectName("preview_index")
        self.index_spin.setPrefix("patch ")
        self.index_spin.setToolTip("Index of the patch within the epoch")
        for spin in (self.epoch_spin, self.index_spin):
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self.schedule_refresh)
        self.new_button = QPushButton("New sample")
        self.new_button.setObjectName("new_sample")
        self.new_button.setToolTip("Show the next draw (patch index + 1)  [Ctrl+Shift+N]")
        self.new_button.clicked.connect(self.new_sample)
        self.whole_box = QCheckBox("Whole image (before patch crop)")
        self.whole_box.setObjectName("whole_image")
        self.whole_box.setToolTip("Show the augmented source image before the final random crop to the patch size")
        self.whole_box.toggled.connect(self._render)
        self.padding_box = QCheckBox("Mark padding")
        self.padding_box.setObjectName("mark_padding")
        self.padding_box.setChecked(True)
        self.padding_box.setToolTip("Tint pixels that come from padding or outside the source (magenta); "
                                    "training gives them zero loss weight")
        self.padding_box.toggled.connect(self._render)
        self.busy_label = QLabel("updating…")
        self.busy_label.setEnabled(False)
        self.busy_label.hide()
        for runner in (self.runner, self.render_runner):
            runner.busyChanged.connect(self._update_busy)
        grid.addWidget(self.epoch_spin, 0, 0)
        grid.addWidget(self.index_spin, 0, 1)
        grid.addWidget(self.new_button, 0, 2)
        grid.addWidget(self.busy_label, 0, 3)
        grid.addWidget(self.whole_box, 1, 0, 1, 4)
        grid.addLayout(self._overlay_controls(), 2, 0, 1, 4)
        grid.setColumnStretch(3, 1)
        return grid

    def _overlay_controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        mask_label = QLabel("Mask")
        self.mask_mode_combo = QComboBox()
        self.mask_mode_combo.setObjectName("mask_mode")
        self.mask_mode_combo.addItems(list(MASK_MODES))
        tip = "How the label mask is drawn over both images"
        mask_label.setToolTip(tip)
        self.mask_mode_combo.setToolTip(tip)
        self.mask_mode_combo.currentIndexChanged.connect(self._update_masks)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setObjectName("mask_opacity")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.setToolTip("Mask overlay opacity (fill and contour)")
        self.opacity_slider.valueChanged.connect(self._update_masks)
        self.opacity_slider.setMinimumWidth(40)
        row.addWidget(mask_label)
        row.addWidget(self.mask_mode_combo)
        row.addWidget(self.opacity_slider, 1)
        row.addWidget(self.padding_box)
        return row

    def _build_grid(self) -> QGroupBox:
        box = QGroupBox("Next draws (click one to inspect it)")
        box.setObjectName("draw_grid")
        grid = QGridLayout(box)
        grid.setContentsMargins(4, 4, 4, 4)
        grid.setSpacing(4)
        for position in range(GRID_DRAWS):
            tile = DrawTile()
            tile.setObjectName(f"draw_tile_{position}")
            tile.clicked.connect(self.show_draw)
            grid.addWidget(tile, position // GRID_COLUMNS, position % GRID_COLUMNS)
            self.grid_canvases.append(tile)
        return box

    def _connect_state(self) -> None:
        self.state.configChanged.connect(self._on_config_changed)
        self.state.datasetChanged.connect(self._on_dataset_changed)
        self.state.splitsChanged.connect(self._on_splits_changed)
        self.state.trainingChanged.connect(self._on_training)

    # -- state changes -----------------------------------------------------------------------
    def _on_config_changed(self, section: str, source: object) -> None:
        if section in ("augmentation", "all") and source is not self:
            self._rebuild_rows()
        if section in ("data", "training", "all"):
            self._update_ranges()
        if section in ("augmentation", "data", "training", "all") and source is not self:
            self.schedule_refresh()

    def _on_dataset_changed(self) -> None:
        self._levels_cache = {}
        self.sources.clear()
        self._update_ranges()
        self.schedule_refresh()

    def _on_splits_changed(self, _source: object) -> None:
        self._update_ranges()
        self.schedule_refresh()

    def _on_training(self, running: bool) -> None:
        self.controls.setEnabled(not running)
        self.rows_box.setEnabled(not running)
        self.lock_label.setVisible(running)

    # -- the editor --------------------------------------------------------------------------
    def _rebuild_rows(self) -> None:
        """Recreate the rows from ``config.augmentation``; show why it is invalid if it is."""
        data = self.state.config.augmentation
        raw = data if isinstance(data, dict) else {}
        transforms = raw.get("transforms", [])
        transforms = transforms if isinstance(transforms, list) else []
        expanded = [row.expanded for row in self.transform_rows]
        for row in self.transform_rows:
            self.rows_layout.removeWidget(row)
            row.deleteLater()
        self.transform_rows = []
        for position, spec in enumerate(transforms):
            row = TransformRow(spec, position, len(transforms),
                               expanded[position] if position < len(expanded) else True)
            row.changed.connect(self._on_row_edited)
            row.moveRequested.connect(lambda delta, r=row: self.move_transform(self.transform_rows.index(r), delta))
            row.removeRequested.connect(lambda r=row: self.remove_transform(self.transform_rows.index(r)))
            self.rows_layout.addWidget(row)
            self.transform_rows.append(row)
        self.empty_label.setVisible(not transforms)
        self._seed = raw.get("seed", 0)
        self.seed_spin.blockSignals(True)
        self.seed_spin.setValue(self._seed if isinstance(self._seed, int) and not isinstance(self._seed, bool) else 0)
        self.seed_spin.blockSignals(False)
        self._show_error(self._validation_error(data))

    @staticmethod
    def _validation_error(data: Any) -> str | None:
        try:
            Pipeline.from_dict(data)
        except (RegistryError, TypeError, ValueError) as exc:
            return f"Augmentation pipeline is invalid: {exc}"
        return None

    def pipeline_dict(self) -> dict:
        """The pipeline as the editor shows it (not yet validated)."""
        return {"version": PIPELINE_VERSION, "seed": self._seed,
                "transforms": [row.spec() for row in self.transform_rows]}

    def apply_pipeline(self, data: Any) -> bool:
        """Validate ``data`` and make it the experiment's augmentation; False (banner shown) if invalid."""
        error = self._validation_error(data)
        self._show_error(error)
        if error is not None:
            return False
        self.state.update("augmentation", self, value=Pipeline.from_dict(data).to_dict())
        self.schedule_refresh()
        return True

    def _apply_structure(self, transforms: list) -> bool:
        """Commit a pipeline whose rows were added, removed or reordered, then redraw the rows."""
        ok = self.apply_pipeline({**self.pipeline_dict(), "transforms": transforms})
        if ok:
            self._rebuild_rows()
        return ok

    def _on_row_edited(self) -> None:
        self.apply_pipeline(self.pipeline_dict())

    def _on_seed(self, value: int) -> None:
        self._seed = value
        self.apply_pipeline(self.pipeline_dict())

    def _on_add_activated(self, index: int) -> None:
        name = self.add_combo.itemData(index)
        self.add_combo.setCurrentIndex(0)
        if name:
            self.add_transform(name)

    def add_transform(self, name: str) -> bool:
        """Append ``name`` with p = 0.5 and default parameters."""
        spec = {"name": name, "enabled": True, "p": 0.5, "params": TRANSFORMS.get(name).defaults()}
        ok = self._apply_structure([row.spec() for row in self.transform_rows] + [spec])
        if ok and self.transform_rows:
            QTimer.singleShot(0, self, self._show_last_row)
        return ok

    def _show_last_row(self) -> None:
        if self.transform_rows:
            self.editor_scroll.ensureWidgetVisible(self.transform_rows[-1])

    def remove_transform(self, position: int) -> bool:
        specs = [row.spec() for row in self.transform_rows]
        del specs[position]
        return self._apply_structure(specs)

    def move_transform(self, position: int, delta: int) -> bool:
        specs = [row.spec() for row in self.transform_rows]
        target = position + delta
        if not 0 <= target < len(specs):
            return False
        specs[position], specs[target] = specs[target], specs[position]
        return self._apply_structure(specs)

    def reset_to_default(self) -> bool:
        ok = self.apply_pipeline(default_pipeline().to_dict())
        if ok:
            self._rebuild_rows()
        return ok

    def _show_error(self, message: str | None) -> None:
        self.banner.setText(message or "")
        self.banner.setVisible(bool(message))

    # -- preview requests --------------------------------------------------------------------
    def _train_samples(self) -> list:
        dataset = self.state.dataset
        if dataset is None:
            return []
        return dataset.split("train") or list(dataset.samples)

    def _per_epoch(self, samples: list) -> int:
        config = self.state.config
        steps = config.training.steps_per_epoch * config.training.batch_size
        if steps:
            return max(1, int(steps))
        return patches_per_epoch(samples, config.data.patch_size) if samples else 1

    def _update_ranges(self) -> None:
        """Epoch and index spin boxes cover the configured run."""
        samples = self._train_samples()
        per_epoch = self._per_epoch(samples)
        epochs = max(1, int(self.state.config.training.epochs))
        self.epoch_spin.setRange(0, epochs - 1)
        self.index_spin.setRange(0, per_epoch - 1)
        self.epoch_spin.setToolTip(f"Training epoch of the draw, 0 … {epochs - 1} "
                                   "(sample order and augmentation depend on it)")
        self.index_spin.setToolTip(f"Index of the patch within the epoch, 0 … {per_epoch - 1}")

    def _request(self) -> PreviewRequest | str:
        """What to compute, or a hint why there is nothing to preview."""
        if self.state.dataset is None:
            return "No dataset loaded.\nOpen a dataset to preview the augmented training patches."
        samples = self._train_samples()
        if not samples:
            return "The dataset has no samples to preview."
        error = self._validation_error(self.state.config.augmentation)
        if error is not None:
            return f"{error}\nFix the pipeline to see the preview."
        config = copy.deepcopy(self.state.config)
        return PreviewRequest(config, list(samples), self.epoch_spin.value(), self.index_spin.value(),
                              GRID_DRAWS, self._per_epoch(samples), self._levels_cache,
                              self.whole_box.isChecked(), self.padding_box.isChecked(), self.sources.snapshot())

    def schedule_refresh(self, *_args) -> None:
        """Recompute the preview shortly after the last of a burst of edits."""
        if self._closed:
            return
        if not self.isVisible():
            self._stale = True
            return
        self._timer.start()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self._timer.start()

    def _start_background(self) -> None:
        if self._closed:
            return
        request = self._request()
        self._generation += 1
        if isinstance(request, str):
            self._show_hint(request)
            return
        generation = self._generation

        def job(ctx):
            draws = compute_preview(request, ctx.check)
            return draws, render_preview(draws, request.whole, request.padding, request.sources, ctx.check)

        self.runner.start(job, on_done=lambda result: self._on_computed(*result, generation),
                          on_failed=lambda message: self._on_compute_failed(message, generation))

    def refresh_now(self) -> None:
        """Compute and render the preview now, on this thread (nothing after :meth:`shutdown`)."""
        self._timer.stop()
        self._stale = False
        self.runner.cancel()
        self.render_runner.cancel()
        self._generation += 1
        if self._closed:
            return
        request = self._request()
        if isinstance(request, str):
            self._show_hint(request)
            return
        try:
            draws = compute_preview(request)
            images = render_preview(draws, request.whole, request.padding, request.sources)
        except (ValueError, RuntimeError, MemoryError, OSError) as exc:
            self._on_compute_failed(str(exc) or type(exc).__name__, self._generation)
            return
        self._on_computed(draws, images, self._generation)

    def _on_computed(self, draws: list[Draw], images: PreviewImages, generation: int) -> None:
        if generation != self._generation:
            return  # an older request finished after a newer one was made
        self._draws = draws
        self.preview_stack.setCurrentIndex(1)
        if (images.whole, images.padding) == self._render_options():
            self._show_images(images)
        else:  # the options changed while it was computed
            self._render()

    def _on_compute_failed(self, message: str, generation: int) -> None:
        if generation == self._generation:
            self._show_hint(f"The preview failed: {message}")

    def _show_hint(self, text: str) -> None:
        self._draws = []
        self._images = None
        self.hint_label.setText(text)
        self.preview_stack.setCurrentIndex(0)

    # -- navigation --------------------------------------------------------------------------
    def new_sample(self) -> None:
        """The next draw: index + 1 (into the next epoch after the last patch, if there is one)."""
        index, epoch = self.index_spin.value(), self.epoch_spin.value()
        if index < self.index_spin.maximum():
            self.index_spin.setValue(index + 1)
        elif epoch < self.epoch_spin.maximum():
            self.show_draw(epoch + 1, 0)
        else:
            self.show_draw(0, 0)

    def show_draw(self, epoch: int, index: int) -> None:
        """Preview the draw of ``(epoch, index)`` (clamped to the configured run)."""
        for spin, value in ((self.epoch_spin, epoch), (self.index_spin, index)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self.schedule_refresh()

    # -- rendering ---------------------------------------------------------------------------
    def current_draw(self) -> Draw | None:
        return self._draws[0] if self._draws else None

    def current_patch(self) -> Augmented | None:
        """The augmented image shown (the training patch, or the whole image before the crop)."""
        draw = self.current_draw()
        if draw is None:
            return None
        return draw.whole if self.whole_box.isChecked() else draw.patch

    def current_sample(self):
        """The sample the shown patch comes from."""
        draw = self.current_draw()
        return None if draw is None else draw.sample

    def _render_options(self) -> tuple[bool, bool]:
        return self.whole_box.isChecked(), self.padding_box.isChecked()

    def _render(self, *_args) -> None:
        """Show the current draws with the current options: at once when small, else in the background."""
        draws = self._draws
        if self._closed or not draws:
            return
        whole, padding = self._render_options()
        images = self._images
        if images is not None and images.draws is draws and (images.whole, images.padding) == (whole, padding):
            self._update_masks()
            return
        sources = self.sources.snapshot()
        if render_pixels(draws, whole, sources) <= SYNC_RENDER_PIXELS:
            self.render_runner.cancel()
            self._show_images(render_preview(draws, whole, padding, sources))
            return
        self.render_runner.start(lambda ctx: render_preview(draws, whole, padding, sources, ctx.check),
                                 on_done=self._on_rendered)

    def _on_rendered(self, images: PreviewImages) -> None:
        if images.draws is self._draws and (images.whole, images.padding) == self._render_options():
            self._show_images(images)

    def _show_images(self, images: PreviewImages) -> None:
        """Put prepared arrays on screen (cheap: no image conversion here)."""
        self._images = images
        self.sources.put(images.source)
        draw = images.draws[0]
        shown = _shown(draw, images.whole)
        self.original_canvas.set_image(images.source.rgb)
        self.augmented_canvas.set_image(images.shown_rgb)
        self.augmented_canvas.set_layer("padding", images.padding_layer, z=11)
        self._update_masks()
        self._link_canvases(draw.sample.image.shape[:2] == shown.image.shape[:2])
        h, w = shown.image.shape[:2]
        self.original_canvas.set_title(f"Original: {draw.sample.name}")
        self.augmented_canvas.set_title(f"{'Augmented, before crop' if images.whole else 'Training patch'} {w}×{h}")
        self.applied_label.setText(self._describe(draw))
        for tile, draw, (rgb, thumb) in zip(self.grid_canvases, images.draws, images.tiles):
            tile.set_draw(rgb, (draw.epoch, draw.index), f"{draw.sample.name}\n{self._describe(draw, rich=False)}",
                          thumb)
        for tile in self.grid_canvases[len(images.draws):]:
            tile.set_draw(None, None)

    def _update_masks(self, *_args) -> None:
        """Redraw both mask layers for the chosen mode and opacity (a table look-up per pixel)."""
        images = self._images
        if images is None:
            return
        mode, opacity = self.mask_mode_combo.currentText(), self.opacity_slider.value() / 100
        for canvas, mask in ((self.original_canvas, images.source.mask), (self.augmented_canvas, images.shown_mask)):
            key = None if mask is None or mode == "off" else (mask, mode, opacity)  # holds it: no id reuse
            if key is not None and self._mask_keys.get(canvas.objectName()) == key:
                continue  # the same source sample again: its layer is already right
            self._mask_keys[canvas.objectName()] = key
            canvas.set_layer("mask", None if key is None else mask.overlay(opacity, mode), z=10)

    def _update_busy(self, *_args) -> None:
        self.busy_label.setVisible(self.runner.busy or self.render_runner.busy)

    def _link_canvases(self, link: bool) -> None:
        if link:
            self.augmented_canvas.link(self.original_canvas)
        else:
            self.augmented_canvas.view.setXLink(None)
            self.augmented_canvas.view.setYLink(None)

    def _describe(self, draw: Draw, rich: bool = True) -> str:
        """Which transforms this draw applied, skipped (by chance) or had switched off."""
        groups = {status: [name for name, s in draw.steps if s == status] for status in ("applied", "skipped", "off")}
        size = self.state.config.data.patch_size
        parts = [f"applied: {', '.join(groups['applied']) or 'none'}"]
        if groups["skipped"]:
            parts.append(f"skipped by chance: {', '.join(groups['skipped'])}")
        if groups["off"]:
            parts.append(f"disabled: {', '.join(groups['off'])}")
        parts.append(f"then random crop {size}×{size}")
        text = " · ".join(parts)
        if rich:
            name = html.escape(draw.sample.name)
            return f"<b>{name}</b> (epoch {draw.epoch}, patch {draw.index}) · {html.escape(text)}"
        return text

    # -- lifetime ----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop pending refreshes and wait for running preview jobs; no slot starts background
        work afterwards (safe to call twice)."""
        self._closed = True
        self._timer.stop()
        self.runner.shutdown()
        self.render_runner.shutdown()
