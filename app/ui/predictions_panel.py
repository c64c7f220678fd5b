"""The Predictions panel: a trained model's prediction of one image, before and after the
watershed clean-up, with scores against the ground truth and every clean-up step.

Everything heavy runs in background tasks: the network (its output cached per (checkpoint,
image) within a memory budget, so going back to an image is instant), the display image and
ground-truth outline (once per image), the watershed with its scores, thumbnails and overlay
layers (changing a clean-up parameter re-runs only this, never the network), and the large
view of a clean-up step. The GUI thread only hands finished arrays to the views; the opacity
slider changes the overlay items' opacity without touching any array.
"""

from __future__ import annotations

import html
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QGroupBox, QHBoxLayout,
                               QHeaderView, QLabel, QLayout, QProgressBar, QPushButton, QScrollArea, QSizePolicy,
                               QSlider, QSplitter, QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout, QWidget)

from app.core.imageio import IMAGE_SUFFIXES, read_image
from app.core.metrics import adapted_rand_error, instance_labels, segmentation_scores
from app.core.postprocess import POSTPROCESS_PARAMS, WatershedParams, watershed_postprocess

from .image_view import ImageCanvas
from .param_form import ParamForm
from .render import (CLASS_COLOURS, FALSE_NEGATIVE, FALSE_POSITIVE, contour_of, error_overlay, mask_overlay,
                     thumbnail, to_display)
from .state import ExperimentState
from .tasks import TaskRunner

TRUTH_COLOUR = (255, 230, 0)
SPLIT_ORDER = ("val", "test", "train")
FILE_PREFIX = "file:"
CACHE_BYTES = 1 << 30  # predictions kept (oldest dropped first beyond this)
VIEW_CACHE_BYTES = 256 << 20  # display images and ground-truth outlines kept
FILES_LIMIT = 20  # opened image files listed (the oldest leave the list)
THUMB_SIZE = 80
THUMB_SOURCE = 128  # longer side of the arrays step thumbnails are drawn from
OUTLINE_MIN_OPACITY = 0.9  # object outlines stay visible at low fill opacity
LAYER_Z = {"prediction": 20, "outline": 25, "truth": 30}
METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
    ("pixel_accuracy", "Pixel accuracy", "fraction of pixels whose foreground/background call matches the truth"),
    ("iou", "IoU (foreground)", "intersection over union of predicted and true foreground (1 = perfect)"),
    ("dice", "Dice (foreground)", "Dice overlap of predicted and true foreground (1 = perfect)"),
    ("adapted_rand_error", "Adapted Rand error",
     "ISBI 2012 instance error of the connected objects against the true objects (0 = perfect)"),
    ("objects", "Objects", "number of separate objects"),
)


# -- pure helpers (no Qt) ----------------------------------------------------------------------
def image_metrics(foreground: np.ndarray, objects: int, truth: np.ndarray | None) -> dict[str, float]:
    """Scores of a binary foreground against the truth's foreground; only the object count
    when there is no truth."""
    out = {"objects": float(objects)}
    if truth is None:
        return out
    pred, true = (foreground > 0).astype(np.uint8), (truth > 0).astype(np.uint8)
    scores = segmentation_scores(pred, true, 2)
    out.update(pixel_accuracy=scores.pixel_accuracy, iou=scores.iou, dice=scores.dice,
               adapted_rand_error=adapted_rand_error(instance_labels(pred), instance_labels(true)))
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


@dataclass
class CachedPrediction:
    """A prediction as cached: its ``labels`` (argmax of the network's float32 output) and
    only what the clean-up needs exactly. A binary model keeps its foreground probability as
    float32 (the background one is its complement; float16 would shift the watershed's 8-bit
    input and, now and then, its objects); a model with more classes, whose clean-up uses the
    labels, keeps every probability as float16."""

    labels: np.ndarray
    foreground: np.ndarray | None = None  # float32 H×W, binary models
    probabilities16: np.ndarray | None = None  # float16 C×H×W, other models

    @classmethod
    def of(cls, prediction) -> "CachedPrediction":
        probabilities = prediction.probabilities
        if probabilities.shape[0] == 2:
            return cls(prediction.labels, foreground=np.ascontiguousarray(probabilities[1], np.float32))
        return cls(prediction.labels, probabilities16=probabilities.astype(np.float16))

    @property
    def nbytes(self) -> int:
        return _nbytes(self.labels, self.foreground, self.probabilities16)

    def cleanup_source(self) -> np.ndarray:
        """What the watershed cleans, as ``Predictor.postprocess`` chooses it."""
        return self.foreground if self.foreground is not None else self.labels > 0

    def expanded(self):
        """The :class:`~app.core.predictor.Prediction` with float32 probabilities."""
        from app.core.predictor import Prediction

        if self.foreground is not None:
            probabilities = np.stack([1.0 - self.foreground, self.foreground]).astype(np.float32, copy=False)
        else:
            probabilities = self.probabilities16.astype(np.float32)
        return Prediction(probabilities, self.labels)


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


def to_pixmap(rgb: np.ndarray, size: int) -> QPixmap:
    """An RGB uint8 array as a pixmap whose longer side is ``size`` (nearest-neighbour when enlarging)."""
    small = np.ascontiguousarray(thumbnail(rgb, size))
    h, w = small.shape[:2]
    image = QImage(small.tobytes(), w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    pixmap = QPixmap.fromImage(image)
    if max(h, w) < size:
        pixmap = pixmap.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
    return pixmap


def _nbytes(*arrays) -> int:
    return sum(int(getattr(a, "nbytes", 0)) for a in arrays if a is not None)


@dataclass
class ImageView:
    """What is drawn for an image whatever the model: the display RGB (shared by both views)
    and the ground-truth outline layer (None without truth)."""

    display: np.ndarray
    truth_layer: np.ndarray | None

    @property
    def nbytes(self) -> int:
        return _nbytes(self.display, self.truth_layer)


def prepare_view(image: np.ndarray, truth: np.ndarray | None) -> ImageView:
    """The display image and truth outline of an image (run in a worker)."""
    outline = mask_overlay(truth > 0, 1.0, "contour", TRUTH_COLOUR) if truth is not None else None
    return ImageView(to_display(image), outline)


@dataclass
class OverlayLayers:
    """Prediction overlays at full alpha (the views set their opacity): ``before`` on the raw
    prediction, ``after`` on the cleaned result and, when objects are coloured, ``outline``
    (their contours, kept more opaque than the fill)."""

    options: tuple[bool, bool]  # (errors, objects)
    before: np.ndarray
    after: np.ndarray
    outline: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return _nbytes(self.before, self.after, self.outline)


def overlay_layers(labels: np.ndarray, result, truth: np.ndarray | None, options: tuple[bool, bool]) -> OverlayLayers:
    """The overlays of a prediction and its clean-up for ``options`` = (errors, objects):
    the error map (needs the truth), objects in their own colours with outlines, or the
    foreground fill."""
    errors, objects = options
    if errors and truth is not None:
        return OverlayLayers(options, error_overlay(labels, truth, 1.0), error_overlay(result.mask, truth, 1.0))
    before = mask_overlay(labels, 1.0, "fill")
    if not objects:
        return OverlayLayers(options, before, mask_overlay(result.mask, 1.0, "fill"))
    fill = mask_overlay(result.labels, 1.0, "fill")
    edge = contour_of(result.labels)
    outline = np.zeros_like(fill)
    outline[edge] = fill[edge]
    fill[edge, 3] = 0
    return OverlayLayers(options, before, fill, outline)


@dataclass
class _Entry:
    """A cached prediction and its latest clean-up. The clean-up's full-size step images are
    kept only while the entry is shown (``result.steps`` is emptied otherwise); the step
    thumbnails stay."""

    prediction: CachedPrediction
    params: WatershedParams | None = None
    result: Any = None  # app.core.postprocess.PostprocessResult
    metrics: dict | None = None
    thumbs: list[tuple[str, np.ndarray]] = field(default_factory=list)
    layers: OverlayLayers | None = None

    @property
    def nbytes(self) -> int:
        total = self.prediction.nbytes
        if self.result is not None:
            total += _nbytes(self.result.mask, self.result.labels, *(array for _, array in self.result.steps))
        total += _nbytes(*(array for _, array in self.thumbs))
        return total + (self.layers.nbytes if self.layers is not None else 0)


def _trim(cache: OrderedDict, budget: int, keep) -> None:
    """Drop the oldest items of ``cache`` (values with ``nbytes``) until it fits ``budget``;
    the key ``keep`` stays."""
    total = sum(value.nbytes for value in cache.values())
    for key in list(cache):
        if total <= budget:
            return
        if key != keep:
            total -= cache.pop(key).nbytes


def _direct_paint(item) -> None:
    """Let a pyqtgraph item paint its uint8 RGB(A) data as it is: with levels (0, 255),
    as ImageCanvas sets them, every repaint of a 2048² image rescales it (~30–80 ms)."""
    item.setLevels(None)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class PredictionsPanel(QWidget):
    """Predict an image with a checkpoint and compare the raw result with its watershed clean-up."""

    title = "Predictions"

    predictionReady = Signal(str)  # image name (sample name or file path) once shown with its clean-up
    postprocessed = Signal()  # after every clean-up refresh
    predictorLoaded = Signal(str)  # checkpoint path
    failed = Signal(str)  # message shown in the banner

    def __init__(self, state: ExperimentState, parent=None):
        super().__init__(parent)
        self.state = state
        self.network_passes = 0
        self._closed = False
        self._predictor = None
        self._model_key: tuple[str, int | None] | None = None  # (path, mtime) of the loaded checkpoint
        self._loading: tuple[str, int | None] | None = None  # (path, mtime) of the checkpoint being loaded
        self._params, params_problem = self._config_params()
        self._device_note = ""
        self._after_shows_step = False
        self._files: OrderedDict[str, tuple[str, np.ndarray]] = OrderedDict()  # key -> (label, image), newest last
        self._cache: OrderedDict[tuple, _Entry] = OrderedDict()
        self._views: OrderedDict[str, ImageView] = OrderedDict()
        self._current_key: str | None = None
        self._announce: str | None = None  # key whose predictionReady is pending
        self._shown_step: str | None = None
        self._steps_entry: _Entry | None = None  # the entry whose result holds its full-size steps
        self._step_image: tuple[Any, str, np.ndarray] | None = None  # (result, step, RGB) shown large
        self._pending: dict[str, Any] = {"overlay": None, "step": None}  # what the running job makes
        self._tokens = {name: 0 for name in ("load", "predict", "post", "read", "view", "overlay", "step")}
        self._load_runner = TaskRunner("load-checkpoint", self)
        self._predict_runner = TaskRunner("predict", self)
        self._post_runner = TaskRunner("postprocess", self)
        self._read_runner = TaskRunner("read-image", self)
        self._view_runner = TaskRunner("prepare-image", self)
        self._overlay_runner = TaskRunner("overlays", self)
        self._step_runner = TaskRunner("step-image", self)
        self.step_buttons: list[QToolButton] = []
        self._build()
        self._connect()
        self._refresh_images()
        self._update_status()
        if params_problem:
            self._show_error(params_problem)
        if state.checkpoint is not None:
            self._on_run_changed()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self._build_toolbar())
        self.banner = QLabel()
        self.banner.setObjectName("predictions_banner")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.PlainText)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setStyleSheet("background-color: #b3261e; color: white; padding: 4px; border-radius: 3px;")
        self.banner.hide()
        layout.addWidget(self.banner)
        self.status_label = QLabel()
        self.status_label.setObjectName("predictions_status")
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.status_label)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self._build_views())
        self.splitter.addWidget(self._build_side())
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([700, 300])
        layout.addWidget(self.splitter, 1)

    def _build_toolbar(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.open_checkpoint_action = QAction("Open checkpoint…", self)
        self.open_checkpoint_action.setToolTip("Load a trained model from a SegStudio checkpoint (.pt)")
        self.open_checkpoint_action.triggered.connect(self._ask_checkpoint)
        self.open_image_action = QAction("Open image…", self)
        self.open_image_action.setToolTip("Predict any image file (no ground truth, so only object counts)")
        self.open_image_action.triggered.connect(self._ask_image)
        checkpoint_button = QToolButton()
        checkpoint_button.setDefaultAction(self.open_checkpoint_action)
        self.checkpoint_label = QLabel("No model loaded")
        self.checkpoint_label.setObjectName("predictions_checkpoint")
        self.checkpoint_label.setToolTip("The checkpoint whose predictions are shown")
        self.checkpoint_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.image_combo = QComboBox()
        self.image_combo.setObjectName("predictions_image")
        self.image_combo.setToolTip("The image to predict: validation images first, then test, then training")
        self.image_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.image_combo.setMinimumContentsLength(12)
        image_button = QToolButton()
        image_button.setDefaultAction(self.open_image_action)
        self.busy_bar = QProgressBar()
        self.busy_bar.setObjectName("predictions_busy")
        self.busy_bar.setToolTip("Loading the model or predicting the image")
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.hide()
        row.addWidget(checkpoint_button)
        row.addWidget(self.checkpoint_label, 1)
        row.addWidget(QLabel("Image:"))
        row.addWidget(self.image_combo)
        row.addWidget(image_button)
        row.addWidget(self.busy_bar)
        return row

    def _build_views(self) -> QWidget:
        self.before_canvas = ImageCanvas("Before clean-up")
        self.before_canvas.setObjectName("predictions_before")
        self.after_canvas = ImageCanvas("After watershed")
        self.after_canvas.setObjectName("predictions_after")
        self.before_canvas.link(self.after_canvas)
        canvases = QSplitter(Qt.Orientation.Horizontal)
        canvases.addWidget(self.before_canvas)
        canvases.addWidget(self.after_canvas)

        top = QWidget()
        column = QVBoxLayout(top)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(canvases, 1)
        self.legend = QLabel()
        self.legend.setObjectName("predictions_legend")
        self.legend.setWordWrap(True)
        self.legend.setToolTip("What the colours in the two views mean")
        for row in self._build_view_options():
            column.addLayout(row)

        views = QSplitter(Qt.Orientation.Vertical)
        views.addWidget(top)
        views.addWidget(self._build_steps())
        views.setStretchFactor(0, 5)
        views.setStretchFactor(1, 1)
        views.setCollapsible(0, False)
        return views

    def _build_view_options(self) -> tuple[QHBoxLayout, QHBoxLayout]:
        """Two rows: the overlay toggles, then the opacity slider and the colour legend."""
        toggles, opacity = QHBoxLayout(), QHBoxLayout()
        self.truth_check = QCheckBox("Ground truth")
        self.truth_check.setObjectName("predictions_truth")
        self.truth_check.setChecked(True)
        self.truth_check.setToolTip("Outline the ground-truth objects (yellow) on both views")
        self.errors_check = QCheckBox("Errors")
        self.errors_check.setObjectName("predictions_errors")
        self.errors_check.setToolTip("Show false positives (red) and false negatives (blue) instead of the prediction")
        self.objects_check = QCheckBox("Colour objects")
        self.objects_check.setObjectName("predictions_objects")
        self.objects_check.setChecked(True)
        self.objects_check.setToolTip("Colour each object of the cleaned result by its instance label")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setObjectName("predictions_opacity")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.setToolTip("Opacity of the prediction overlay (0–100 %)")
        self.opacity_slider.setMinimumWidth(60)
        self.opacity_slider.setMaximumWidth(140)
        for widget in (self.truth_check, self.errors_check, self.objects_check):
            toggles.addWidget(widget)
        toggles.addStretch(1)
        opacity.addWidget(QLabel("Opacity"))
        opacity.addWidget(self.opacity_slider)
        opacity.addWidget(self.legend, 1)
        return toggles, opacity

    def _build_steps(self) -> QWidget:
        self.steps_widget = QWidget()
        self.steps_layout = QHBoxLayout(self.steps_widget)
        self.steps_layout.setContentsMargins(2, 2, 2, 2)
        self.steps_layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        self.steps_layout.addStretch(1)
        self.steps_area = QScrollArea()
        self.steps_area.setObjectName("predictions_steps")
        self.steps_area.setToolTip("Every step of the watershed clean-up; click one to show it large on the right")
        self.steps_area.setWidget(self.steps_widget)
        self.steps_area.setWidgetResizable(True)
        self.steps_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.steps_area.setMinimumHeight(THUMB_SIZE + 44)
        return self.steps_area

    def _build_side(self) -> QWidget:
        side = QWidget()
        column = QVBoxLayout(side)
        column.setContentsMargins(2, 0, 2, 0)
        column.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        metrics_box = QGroupBox("Scores on this image")
        box_layout = QVBoxLayout(metrics_box)
        self.metrics_table = QTableWidget(len(METRIC_ROWS), 2)
        self.metrics_table.setObjectName("predictions_metrics")
        self.metrics_table.setHorizontalHeaderLabels(["Before", "After"])
        self.metrics_table.setVerticalHeaderLabels([label for _, label, _ in METRIC_ROWS])
        for row, (_, _, tip) in enumerate(METRIC_ROWS):
            self.metrics_table.verticalHeaderItem(row).setToolTip(tip)
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.metrics_table.horizontalHeader().setMinimumSectionSize(52)
        self.metrics_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.metrics_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.metrics_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.metrics_table.setSizeAdjustPolicy(QAbstractItemView.SizeAdjustPolicy.AdjustToContents)
        self.metrics_table.setToolTip("Scores of the raw prediction (before) and of the cleaned result (after)")
        box_layout.addWidget(self.metrics_table)
        self._fit_table_height()
        column.addWidget(metrics_box)

        params_box = QGroupBox("Watershed clean-up")
        params_layout = QVBoxLayout(params_box)
        self.params_form = ParamForm(POSTPROCESS_PARAMS, self._params.to_dict())
        self.params_form.setObjectName("predictions_params")
        params_layout.addWidget(self.params_form)
        self.reset_button = QPushButton("Reset defaults")
        self.reset_button.setObjectName("predictions_reset")
        self.reset_button.setToolTip("Restore the reference project's clean-up settings")
        params_layout.addWidget(self.reset_button)
        column.addWidget(params_box)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(170)
        return scroll

    def _connect(self) -> None:
        self.state.runChanged.connect(self._on_run_changed)
        self.state.trainingChanged.connect(self._on_training_changed)
        self.state.configChanged.connect(self._on_config_changed)
        self.state.datasetChanged.connect(self._on_dataset_changed)
        self.state.splitsChanged.connect(lambda _source: self._refresh_images())
        self.image_combo.currentIndexChanged.connect(self._on_combo_index)
        self.params_form.changed.connect(self._on_params_edited)
        self.reset_button.clicked.connect(self.reset_defaults)
        for box in (self.truth_check, self.errors_check, self.objects_check):
            box.toggled.connect(self._render)
        self.opacity_slider.valueChanged.connect(self._apply_opacity)
        for runner in (self._load_runner, self._predict_runner, self._read_runner, self._view_runner):
            runner.busyChanged.connect(self._update_busy)

    # -- public API --------------------------------------------------------------------------
    @property
    def predictor(self):
        """The loaded :class:`~app.core.predictor.Predictor`, or None."""
        return self._predictor

    @property
    def current_key(self) -> str | None:
        """The chosen image: a sample name, or ``file:<path>`` for an opened file."""
        return self._current_key

    def current_prediction(self):
        """The network's output for the image shown (a :class:`~app.core.predictor.Prediction`
        rebuilt from the cache; its foreground probability is exactly what was cleaned), or None."""
        entry = self._current_entry()
        return entry.prediction.expanded() if entry is not None else None

    def current_result(self):
        """The :class:`~app.core.postprocess.PostprocessResult` shown, or None."""
        entry = self._current_entry()
        return entry.result if entry is not None else None

    def metrics(self) -> dict[str, dict[str, float]]:
        """``{"before": {...}, "after": {...}}`` of the image shown (empty before a prediction)."""
        entry = self._current_entry()
        if entry is None or entry.metrics is None:
            return {}
        return {side: dict(values) for side, values in entry.metrics.items()}

    def params(self) -> WatershedParams:
        return self._params

    def overlay_opacity(self, canvas: ImageCanvas, name: str = "prediction") -> float | None:
        """The opacity a view draws its overlay ``name`` with (None when it has none)."""
        item = canvas._layers.get(name)
        return float(item.opacity()) if item is not None and canvas.layer(name) is not None else None

    def open_checkpoint(self, path) -> None:
        """Load a checkpoint in the background; a bad one leaves the current model in place.
        A request for the file (same modification time) already being loaded is ignored."""
        if self._closed:
            return
        path = Path(path)
        key = (str(path), _mtime(path))
        if key == self._loading:
            return
        device = self.state.config.training.device
        self.status_label.setText(f"Loading {path.name}…")
        self._loading = key
        started = self._start(self._load_runner, "load", lambda ctx: load_predictor(path, device),
                              lambda result: self._on_loaded(key, path, result),
                              lambda message: self._on_load_failed(path, message))
        if not started:
            self._loading = None

    def open_image(self, path) -> None:
        """Read any image file in the background, add it to the image list and predict it."""
        path = Path(path)
        self._start(self._read_runner, "read", lambda ctx: read_image(path),
                    lambda image: self._on_image_read(path, image),
                    lambda message: self._show_error(f"Could not open image {path.name}: {message}"))

    def select_image(self, key: str) -> None:
        """Show (and predict) the image ``key`` (a sample name or ``file:<path>``)."""
        index = self.image_combo.findData(key)
        if index < 0:
            raise KeyError(f"no image {key!r} in the list")
        if index == self.image_combo.currentIndex():
            self._choose(key)
        else:
            self.image_combo.setCurrentIndex(index)

    def show_step(self, name: str | None) -> None:
        """Show the clean-up step ``name`` large in the After view (None, or a step the
        current result lacks: the result). The large image is drawn in the background."""
        self._shown_step = name if name is not None and name in self._step_names() else None
        for button in self.step_buttons:
            button.setChecked(button.text() == self._shown_step)
        self._render()

    def reset_defaults(self) -> None:
        self.params_form.set_values(WatershedParams().to_dict())
        self._on_params_edited(self.params_form.values())

    def shutdown(self) -> None:
        """Cancel and wait for every background job and start no new one; safe to call twice."""
        self._closed = True
        for name in self._tokens:
            self._next(name)
        for runner in self._runners():
            runner.shutdown()

    # -- background jobs -----------------------------------------------------------------------
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

    # -- checkpoint ----------------------------------------------------------------------------
    def _ask_checkpoint(self) -> None:
        start = str(self.state.checkpoint.parent) if self.state.checkpoint else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", start, "Checkpoints (*.pt);;All files (*)")
        if path:
            self.open_checkpoint(path)

    def _on_run_changed(self) -> None:
        """Load the run's checkpoint unless that very file (same modification time) is loaded
        or being loaded."""
        checkpoint = Path(self.state.checkpoint) if self.state.checkpoint is not None else None
        if self._closed or checkpoint is None:
            return
        if not checkpoint.is_file():
            if self.state.training:
                self.status_label.setText(f"Waiting for the run's first checkpoint ({checkpoint.name})…")
            else:
                self._show_error(f"The run {self.state.run_dir or checkpoint.parent} has no checkpoint "
                                 f"({checkpoint.name}) to predict with")
            return
        if (str(checkpoint), _mtime(checkpoint)) not in (self._model_key, self._loading):
            self.open_checkpoint(checkpoint)

    def _on_training_changed(self, running: bool) -> None:
        if self._closed:
            return
        self._update_status()
        if not running:  # the run's best checkpoint may have changed
            self._on_run_changed()

    def _on_loaded(self, key: tuple[str, int | None], path: Path, result) -> None:
        predictor, note = result
        self._loading = None
        self._predictor, self._model_key, self._device_note = predictor, key, note
        self._drop_entries(lambda cache_key: cache_key[0] != key)  # other checkpoints' predictions
        self.banner.hide()
        model = html.escape(predictor.config.model.name)
        self.checkpoint_label.setText(f"<b>{model}</b> · {html.escape(path.name)} ({html.escape(str(path.parent))})")
        self.checkpoint_label.setToolTip(f"{path}\nmodel: {predictor.config.model.name}, device: {predictor.device}")
        self.predictorLoaded.emit(str(path))
        self._update_status()
        if self._current_key is None:
            self._refresh_images()
        else:
            self._choose(self._current_key)

    def _on_load_failed(self, path: Path, message: str) -> None:
        self._loading = None
        prefix = f"{path}: "
        cause = message[len(prefix):] if message.startswith(prefix) else message
        kept = " The previous model is kept." if self._predictor is not None else ""
        self._update_status()
        self._show_error(f"Could not load checkpoint {path.name} ({path}): {cause}.{kept}")

    # -- images --------------------------------------------------------------------------------
    def _ask_image(self) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", f"Images ({patterns});;All files (*)")
        if path:
            self.open_image(path)

    def _on_image_read(self, path: Path, image: np.ndarray) -> None:
        """List the file (newest last; beyond FILES_LIMIT the oldest leave) and show it."""
        key = FILE_PREFIX + str(path)
        self._forget_image(key)  # the file may have changed since it was last opened
        self._files[key] = (path.name, image)
        while len(self._files) > FILES_LIMIT:
            self._forget_image(next(iter(self._files)))
        self.banner.hide()
        self._refresh_images(select=key)

    def _forget_image(self, key: str) -> None:
        self._files.pop(key, None)
        self._views.pop(key, None)
        self._drop_entries(lambda cache_key: cache_key[1] == key)

    def _drop_entries(self, condition: Callable[[tuple], bool]) -> None:
        for cache_key in [k for k in self._cache if condition(k)]:
            if self._cache.pop(cache_key) is self._steps_entry:
                self._steps_entry = None

    def _on_dataset_changed(self) -> None:
        if self._closed:
            return
        self._drop_entries(lambda cache_key: not cache_key[1].startswith(FILE_PREFIX))
        for key in [k for k in self._views if not k.startswith(FILE_PREFIX)]:
            del self._views[key]
        self._refresh_images(force=True)

    def _refresh_images(self, select: str | None = None, force: bool = False) -> None:
        """Rebuild the image list (val, test, train, then opened files) and keep the choice."""
        if self._closed:
            return
        wanted = select or self._current_key
        combo = self.image_combo
        combo.blockSignals(True)
        combo.clear()
        dataset = self.state.dataset
        if dataset is not None:
            for split in SPLIT_ORDER:
                for sample in dataset.split(split):
                    combo.addItem(f"{sample.name} ({split})", sample.name)
        for key, (label, _image) in self._files.items():
            combo.addItem(f"{label} (file)", key)
        index = combo.findData(wanted) if wanted else -1
        index = index if index >= 0 else (0 if combo.count() else -1)
        combo.setCurrentIndex(index)
        combo.blockSignals(False)
        key = combo.itemData(index) if index >= 0 else None
        if key != self._current_key or force or select is not None:
            self._choose(key)

    def _on_combo_index(self, index: int) -> None:
        self._choose(self.image_combo.itemData(index) if index >= 0 else None)

    def _source(self, key: str | None) -> tuple[str, np.ndarray, np.ndarray | None] | None:
        """``(name, image, truth or None)`` of an image key."""
        if key is None:
            return None
        if key in self._files:
            return key[len(FILE_PREFIX):], self._files[key][1], None
        sample = self.state.sample(key)
        return (sample.name, sample.image, sample.mask) if sample is not None else None

    def _choose(self, key: str | None) -> None:
        """Show the image ``key`` with whatever is cached for it, then bring it up to date."""
        if self._closed:
            return
        self._current_key = key
        self._shown_step, self._after_shows_step = None, False
        self.after_canvas.set_title("After watershed")
        entry = self._current_entry()
        if self._steps_entry is not None and self._steps_entry is not entry:
            self._steps_entry.result.steps = []  # full-size steps only for the image shown
            self._steps_entry = None
        self._step_image = None
        if not (self._show_view() and entry is not None and entry.result is not None):
            self._clear_results()  # (a cached result is drawn by _request_prediction)
        self._request_prediction()

    def _show_view(self) -> bool:
        """Put the image's cached display in both views (True), or clear them and prepare it."""
        key, source = self._current_key, self._source(self._current_key)
        view = self._views.get(key) if source is not None else None
        if view is not None:
            self._views.move_to_end(key)
            self._stop("view", self._view_runner)
            self._set_image(self.before_canvas, view.display)
            self._set_image(self.after_canvas, view.display)
            return True
        self.before_canvas.set_image(None)
        self.after_canvas.set_image(None)
        if source is not None:
            name, image, truth = source
            self._start(self._view_runner, "view", lambda ctx: prepare_view(image, truth),
                        lambda prepared: self._on_view_ready(key, prepared),
                        lambda message: self._show_error(f"Could not display {Path(name).name}: {message}"))
        return False

    def _on_view_ready(self, key: str, view: ImageView) -> None:
        self._views[key] = view
        _trim(self._views, VIEW_CACHE_BYTES, self._current_key)
        if key != self._current_key:
            return
        self._set_image(self.before_canvas, view.display)
        if not self._after_shows_step:
            self._set_image(self.after_canvas, view.display)
        entry = self._current_entry()
        if entry is not None and entry.result is not None:
            self._display_entry()
        else:
            self._render()
        self._announce_if_ready()

    def _current_view(self) -> ImageView | None:
        return self._views.get(self._current_key) if self._current_key is not None else None

    # -- prediction ----------------------------------------------------------------------------
    def _cache_key(self, key: str | None) -> tuple | None:
        return (self._model_key, key) if self._model_key is not None and key is not None else None

    def _current_entry(self) -> _Entry | None:
        cache_key = self._cache_key(self._current_key)
        return self._cache.get(cache_key) if cache_key is not None else None

    def _request_prediction(self) -> None:
        source = self._source(self._current_key)
        if source is None or self._predictor is None:
            self._update_status()
            return
        cache_key = self._cache_key(self._current_key)
        self._announce = self._current_key
        if cache_key in self._cache:
            self._cache.move_to_end(cache_key)
            self._stop("predict", self._predict_runner)
            self._run_postprocess()
            return
        name, image, _truth = source
        predictor = self._predictor

        def job(ctx):
            prediction = predictor.predict(image, progress=ctx.progress, should_stop=lambda: ctx.cancelled)
            ctx.check()
            return CachedPrediction.of(prediction)

        if self._start(self._predict_runner, "predict", job,
                       lambda prediction: self._on_predicted(cache_key, prediction),
                       lambda message: self._on_predict_failed(name, message), self._on_progress):
            self.network_passes += 1
            self.busy_bar.setRange(0, 0)
            self.status_label.setText(f"Predicting {Path(name).name}…")

    def _on_progress(self, done: int, total: int) -> None:
        self.busy_bar.setRange(0, max(1, total))
        self.busy_bar.setValue(done)

    def _on_predicted(self, cache_key: tuple, prediction) -> None:
        self._cache[cache_key] = _Entry(prediction)
        _trim(self._cache, CACHE_BYTES, self._cache_key(self._current_key))
        self.banner.hide()
        self._update_status()
        if cache_key == self._cache_key(self._current_key):
            self._run_postprocess()

    def _on_predict_failed(self, name: str, message: str) -> None:
        self._announce = None
        self._update_status()
        self._show_error(f"Prediction of {Path(name).name} failed: {message}")

    # -- post-processing -----------------------------------------------------------------------
    def _config_params(self) -> tuple[WatershedParams, str]:
        """The experiment's clean-up settings, or the defaults and the reason they are unusable."""
        try:
            return WatershedParams.from_dict(self.state.config.postprocess or {}), ""
        except Exception as exc:  # noqa: BLE001 - a bad experiment file: fall back to the defaults
            return WatershedParams(), (f"The experiment's post-processing settings are invalid ({exc}); "
                                       "using the defaults")

    def _on_params_edited(self, values: dict) -> None:
        if self._closed:
            return
        try:
            params = WatershedParams.from_dict(values)
        except Exception as exc:  # noqa: BLE001 - shown, the previous settings stay
            self._show_error(f"Invalid clean-up settings: {exc}")
            return
        self._params = params
        self.state.update("postprocess", self, value=params.to_dict())
        self._run_postprocess()

    def _on_config_changed(self, section: str, source: object) -> None:
        if self._closed or source is self or section not in ("postprocess", "all"):
            return
        self._params, problem = self._config_params()
        self.params_form.set_values(self._params.to_dict())
        if problem:
            self._show_error(problem)
        self._run_postprocess()

    def _run_postprocess(self) -> None:
        """Clean the current prediction with the current settings (cached result when unchanged)."""
        entry, source = self._current_entry(), self._source(self._current_key)
        if entry is None or source is None:
            return
        if entry.result is not None and entry.params == self._params:
            self._stop("post", self._post_runner)
            self._show_entry()
            if not entry.result.steps:
                self._make_step_image(entry, None)  # bring back its full-size steps
            return
        if entry.result is not None and self._current_view() is not None:
            self._display_entry()  # the previous settings' result until the new one is ready
        params, truth, options = self._params, source[2], self._overlay_options()
        prediction = entry.prediction

        def job(ctx):
            result = clean_up(prediction, params)
            ctx.check()
            metrics = before_after_metrics(prediction.labels, result, truth)
            thumbs = [(name, thumbnail(step_thumbnail(array), THUMB_SIZE)) for name, array in result.steps]
            ctx.check()
            return result, metrics, thumbs, overlay_layers(prediction.labels, result, truth, options)

        self._start(self._post_runner, "post", job, lambda out: self._on_postprocessed(entry, params, out),
                    lambda message: self._show_error(f"Clean-up failed: {message}"))

    def _on_postprocessed(self, entry: _Entry, params: WatershedParams, out) -> None:
        entry.result, entry.metrics, entry.thumbs, entry.layers = out
        entry.params = params
        current = entry is self._current_entry()
        if current:
            self._steps_entry, self._step_image = entry, None
        else:
            entry.result.steps = []
        _trim(self._cache, CACHE_BYTES, self._cache_key(self._current_key))
        if current:
            self._show_entry()

    def _show_entry(self) -> None:
        """Draw the current entry everywhere and announce it."""
        self._display_entry()
        self.postprocessed.emit()
        self._announce_if_ready()

    def _announce_if_ready(self) -> None:
        """Emit predictionReady once the image asked for is shown with its current clean-up."""
        entry, key = self._current_entry(), self._current_key
        if (self._announce != key or entry is None or entry.result is None or entry.params != self._params
                or self._current_view() is None or not self._layers_current(entry)):
            return
        self._announce = None
        self.predictionReady.emit(self._source(key)[0])

    # -- display -------------------------------------------------------------------------------
    def _display_entry(self) -> None:
        """Overlays, scores and step thumbnails of the current entry (all precomputed)."""
        names = self._step_names()
        if self._shown_step is not None and self._shown_step not in names:
            self._shown_step = None
        self._render()
        self._show_metrics()
        self._show_steps(self._current_entry().thumbs)

    def _step_names(self) -> list[str]:
        entry = self._current_entry()
        return [name for name, _ in entry.thumbs] if entry is not None and entry.result is not None else []

    def _overlay_options(self) -> tuple[bool, bool]:
        source = self._source(self._current_key)
        has_truth = source is not None and source[2] is not None
        return self.errors_check.isChecked() and has_truth, self.objects_check.isChecked()

    def _layers_current(self, entry: _Entry) -> bool:
        return entry.layers is not None and entry.layers.options == self._overlay_options()

    def _render(self, *_args) -> None:
        """Hand the current overlays to the views (cheap: arrays are built in background jobs)."""
        if self._closed:
            return
        source, view, entry = self._source(self._current_key), self._current_view(), self._current_entry()
        has_truth = source is not None and source[2] is not None
        self._update_legend(has_truth, self._overlay_options()[0])
        truth = view.truth_layer if view is not None and self.truth_check.isChecked() else None
        ready = view is not None and entry is not None and entry.result is not None
        layers = entry.layers if ready and self._layers_current(entry) else None
        if ready and layers is None:
            self._make_overlays(entry)
        self._put(self.before_canvas, "truth", truth)
        self._put(self.before_canvas, "prediction", layers.before if layers else None)
        if self._shown_step is not None and ready:
            self._render_step(entry)
        else:
            if self._after_shows_step:
                self._after_shows_step = False
                self.after_canvas.set_title("After watershed")
                self._set_image(self.after_canvas, view.display if view is not None else None)
            self._put(self.after_canvas, "truth", truth)
            self._put(self.after_canvas, "prediction", layers.after if layers else None)
            self._put(self.after_canvas, "outline", layers.outline if layers else None)
        self._apply_opacity()

    @staticmethod
    def _put(canvas: ImageCanvas, name: str, rgba: np.ndarray | None) -> None:
        """Set a layer unless it already shows that very array."""
        if canvas.layer(name) is not rgba:
            canvas.set_layer(name, rgba, z=LAYER_Z[name])
            if rgba is not None:
                _direct_paint(canvas._layers[name])

    @staticmethod
    def _set_image(canvas: ImageCanvas, rgb: np.ndarray | None) -> None:
        """Show an RGB uint8 image unless the view already shows that very array."""
        if rgb is None or canvas.image() is not rgb:
            canvas.set_image(rgb)
            if rgb is not None:
                _direct_paint(canvas.image_item)

    def _apply_opacity(self, *_args) -> None:
        """The slider's opacity on the prediction overlays' items (no array is rebuilt)."""
        opacity = self.opacity_slider.value() / 100.0
        for canvas in (self.before_canvas, self.after_canvas):
            items = canvas._layers  # the canvas's pyqtgraph items (no public accessor)
            if "prediction" in items:
                items["prediction"].setOpacity(opacity)
            if "outline" in items:
                items["outline"].setOpacity(max(opacity, OUTLINE_MIN_OPACITY))

    def _make_overlays(self, entry: _Entry) -> None:
        """Build the current entry's overlays for the current options in the background."""
        options, result, truth = self._overlay_options(), entry.result, self._source(self._current_key)[2]
        pending = self._pending["overlay"]
        if pending is not None and pending[0] is result and pending[1] == options:
            return
        self._pending["overlay"] = (result, options)
        labels = entry.prediction.labels
        self._start(self._overlay_runner, "overlay", lambda ctx: overlay_layers(labels, result, truth, options),
                    lambda layers: self._on_overlays(entry, result, layers),
                    lambda message: self._show_error(f"Could not draw the overlays: {message}"))

    def _on_overlays(self, entry: _Entry, result, layers: OverlayLayers) -> None:
        self._pending["overlay"] = None
        if entry.result is not result:
            return
        entry.layers = layers
        _trim(self._cache, CACHE_BYTES, self._cache_key(self._current_key))
        if entry is self._current_entry():
            self._render()
            self._announce_if_ready()

    def _render_step(self, entry: _Entry) -> None:
        """The shown step large in the After view, once drawn (in the background)."""
        self._after_shows_step = True
        self.after_canvas.set_title(f"After watershed · step: {self._shown_step}")
        for name in ("prediction", "outline", "truth"):
            self._put(self.after_canvas, name, None)
        shown = self._step_image
        if shown is not None and shown[0] is entry.result and shown[1] == self._shown_step:
            self._set_image(self.after_canvas, shown[2])
        else:
            self._make_step_image(entry, self._shown_step)

    def _make_step_image(self, entry: _Entry, name: str | None) -> None:
        """In the background: the entry's full-size steps when it lacks them, and the step
        ``name`` drawn as RGB (None: only the steps)."""
        result, params, prediction = entry.result, entry.params, entry.prediction
        pending = self._pending["step"]
        if pending is not None and pending[0] is result and pending[1] == name:
            return
        self._pending["step"] = (result, name)
        known = list(result.steps)

        def job(ctx):
            steps = known or clean_up(prediction, params).steps
            ctx.check()
            return steps, (step_rgb(dict(steps)[name]) if name is not None else None)

        self._start(self._step_runner, "step", job, lambda out: self._on_step_image(entry, result, name, out),
                    lambda message: self._show_error(f"Could not show the step {name}: {message}"))

    def _on_step_image(self, entry: _Entry, result, name: str | None, out) -> None:
        self._pending["step"] = None
        steps, rgb = out
        if entry is not self._current_entry() or entry.result is not result:
            return
        result.steps, self._steps_entry = steps, entry
        if name is not None:
            self._step_image = (result, name, rgb)
            if name == self._shown_step:
                self._render()

    def _update_legend(self, has_truth: bool, errors: bool) -> None:
        def swatch(colour, text):
            r, g, b = (int(c) for c in colour)
            return f"<span style='color: rgb({r}, {g}, {b})'>■</span> {text}"

        parts = [swatch(FALSE_POSITIVE, "false positive"), swatch(FALSE_NEGATIVE, "false negative")] if errors \
            else [swatch(CLASS_COLOURS[1], "predicted foreground")]
        if not errors and self.objects_check.isChecked():
            parts.append("after: one colour per object")
        if has_truth and self.truth_check.isChecked():
            parts.append(swatch(TRUTH_COLOUR, "ground-truth outline"))
        if not has_truth:
            parts.append("no ground truth for this image")
        self.legend.setText(" &nbsp; ".join(parts))

    def _show_metrics(self) -> None:
        metrics, source = self.metrics(), self._source(self._current_key)
        has_truth = "iou" in metrics["before"] if metrics else (source is not None and source[2] is not None)
        for row, (key, _label, _tip) in enumerate(METRIC_ROWS):
            self.metrics_table.setRowHidden(row, key != "objects" and not has_truth)
            for column, side in enumerate(("before", "after")):
                value = metrics.get(side, {}).get(key)
                text = "—" if value is None else (f"{int(value)}" if key == "objects" else f"{value:.3f}")
                item = self.metrics_table.item(row, column)
                if item is None:
                    item = QTableWidgetItem()
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    self.metrics_table.setItem(row, column, item)
                if item.text() != text:
                    item.setText(text)
        self._fit_table_height()

    def _fit_table_height(self) -> None:
        """Size the table to its visible rows so it neither scrolls nor leaves a gap."""
        table = self.metrics_table
        rows = sum(table.verticalHeader().sectionSize(r) for r in range(table.rowCount()) if not table.isRowHidden(r))
        table.setFixedHeight(table.horizontalHeader().sizeHint().height() + rows + 2 * table.frameWidth())
        table.setMinimumWidth(table.verticalHeader().sizeHint().width() + 2 * 56 + 2 * table.frameWidth())

    def _show_steps(self, thumbs: list[tuple[str, np.ndarray]]) -> None:
        """One clickable thumbnail per clean-up step (from its small RGB), its name underneath."""
        while len(self.step_buttons) > len(thumbs):
            button = self.step_buttons.pop()
            self.steps_layout.removeWidget(button)
            button.deleteLater()
        while len(self.step_buttons) < len(thumbs):
            button = QToolButton()
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.clicked.connect(lambda _checked=False, b=button: self._on_step_clicked(b))
            self.steps_layout.insertWidget(len(self.step_buttons), button)
            self.step_buttons.append(button)
        for button, (name, rgb) in zip(self.step_buttons, thumbs):
            button.setText(name)
            button.setMinimumWidth(max(THUMB_SIZE, button.fontMetrics().horizontalAdvance(name)) + 14)
            button.setObjectName(f"step_{name.replace(' ', '_')}")
            button.setIcon(QIcon(to_pixmap(rgb, THUMB_SIZE)))
            button.setToolTip(f"{name}: click to show it large in the After view (click again for the result)")
            button.setChecked(name == self._shown_step)

    def _on_step_clicked(self, button: QToolButton) -> None:
        self.show_step(None if button.text() == self._shown_step else button.text())

    def _clear_results(self) -> None:
        """No prediction for the image shown: only the image and its truth."""
        self._show_steps([])
        self._show_metrics()
        self._render()

    # -- status --------------------------------------------------------------------------------
    def _update_status(self) -> None:
        if self._predictor is None:
            text = "No model: open a checkpoint, or finish a training run to see its predictions."
        elif self._source(self._current_key) is None:
            text = "No image: load a dataset or open an image."
        else:
            text = f"Model on {self._predictor.device}."
            if self.state.training:
                text += " Training is running: predictions share the device with it, so both are slower."
        self.status_label.setText(f"{text} {self._device_note}".strip())

    def _update_busy(self, *_args) -> None:
        busy = any(r.busy for r in (self._load_runner, self._predict_runner, self._read_runner, self._view_runner))
        self.busy_bar.setVisible(busy)
        if busy and self._load_runner.busy:
            self.busy_bar.setRange(0, 0)

    def _show_error(self, message: str) -> None:
        self.banner.setText(message)
        self.banner.show()
        self.failed.emit(message)

    def _next(self, kind: str) -> int:
        self._tokens[kind] += 1
        return self._tokens[kind]
