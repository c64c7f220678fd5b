"""The Predictions panel: a trained model's prediction of one image, before and after the
watershed clean-up, with scores against the ground truth and every clean-up step.

The network runs in a background task and its output is cached per (checkpoint, image), so
going back to an image is instant; changing a clean-up parameter re-runs only the watershed
(also off the GUI thread), never the network.
"""

from __future__ import annotations

import html
from collections import OrderedDict
from dataclasses import dataclass
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
from app.core.postprocess import POSTPROCESS_PARAMS, WatershedParams

from .image_view import ImageCanvas
from .param_form import ParamForm
from .render import CLASS_COLOURS, FALSE_NEGATIVE, FALSE_POSITIVE, error_overlay, mask_overlay, thumbnail
from .state import ExperimentState
from .tasks import TaskRunner

TRUTH_COLOUR = (255, 230, 0)
SPLIT_ORDER = ("val", "test", "train")
FILE_PREFIX = "file:"
CACHE_SIZE = 32
THUMB_SIZE = 80
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


@dataclass
class _Entry:
    """A cached prediction and its latest clean-up."""

    prediction: Any  # app.core.predictor.Prediction
    params: WatershedParams | None = None
    result: Any = None  # app.core.postprocess.PostprocessResult
    metrics: dict | None = None


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
        self._predictor = None
        self._model_key: tuple[str, int] | None = None
        self._params, params_problem = self._config_params()
        self._device_note = ""
        self._after_shows_step = False
        self._files: dict[str, tuple[str, np.ndarray]] = {}  # key -> (label, image) of opened files
        self._cache: OrderedDict[tuple, _Entry] = OrderedDict()
        self._current_key: str | None = None
        self._announce: str | None = None  # key whose predictionReady is pending
        self._shown_step: str | None = None
        self._tokens = {"load": 0, "predict": 0, "post": 0, "read": 0}
        self._load_runner = TaskRunner("load-checkpoint", self)
        self._predict_runner = TaskRunner("predict", self)
        self._post_runner = TaskRunner("postprocess", self)
        self._read_runner = TaskRunner("read-image", self)
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
        self.opacity_slider.valueChanged.connect(self._render)
        for runner in (self._load_runner, self._predict_runner, self._read_runner):
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
        entry = self._current_entry()
        return entry.prediction if entry is not None else None

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

    def open_checkpoint(self, path) -> None:
        """Load a checkpoint in the background; a bad one leaves the current model in place."""
        path = Path(path)
        device = self.state.config.training.device
        token = self._next("load")

        def job(ctx):
            predictor, note = load_predictor(path, device)
            return predictor, note, path.stat().st_mtime_ns

        self.status_label.setText(f"Loading {path.name}…")
        self._load_runner.start(job, on_done=lambda result: self._on_loaded(token, path, result),
                                on_failed=lambda message: self._on_load_failed(token, path, message))

    def open_image(self, path) -> None:
        """Read any image file in the background, add it to the image list and predict it."""
        path = Path(path)
        token = self._next("read")
        self._read_runner.start(lambda ctx: read_image(path),
                                on_done=lambda image: self._on_image_read(token, path, image),
                                on_failed=lambda message: self._on_image_failed(token, path, message))

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
        current result lacks: the result)."""
        result = self.current_result()
        self._shown_step = name if result is not None and name in {n for n, _ in result.steps} else None
        for button in self.step_buttons:
            button.setChecked(button.text() == self._shown_step)
        self._render()

    def reset_defaults(self) -> None:
        self.params_form.set_values(WatershedParams().to_dict())
        self._on_params_edited(self.params_form.values())

    def shutdown(self) -> None:
        """Cancel and wait for every background job; safe to call twice."""
        for name in self._tokens:
            self._next(name)
        for runner in (self._load_runner, self._predict_runner, self._post_runner, self._read_runner):
            runner.shutdown()

    # -- checkpoint ----------------------------------------------------------------------------
    def _ask_checkpoint(self) -> None:
        start = str(self.state.checkpoint.parent) if self.state.checkpoint else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", start, "Checkpoints (*.pt);;All files (*)")
        if path:
            self.open_checkpoint(path)

    def _on_run_changed(self) -> None:
        """Load the run's checkpoint unless that very file (same modification time) is loaded."""
        checkpoint = Path(self.state.checkpoint) if self.state.checkpoint is not None else None
        if checkpoint is None:
            return
        if not checkpoint.is_file():
            if self.state.training:
                self.status_label.setText(f"Waiting for the run's first checkpoint ({checkpoint.name})…")
            else:
                self._show_error(f"The run {self.state.run_dir or checkpoint.parent} has no checkpoint "
                                 f"({checkpoint.name}) to predict with")
            return
        if self._model_key != (str(checkpoint), checkpoint.stat().st_mtime_ns):
            self.open_checkpoint(checkpoint)

    def _on_training_changed(self, running: bool) -> None:
        if not running:  # the run's best checkpoint may have changed
            self._on_run_changed()

    def _on_loaded(self, token: int, path: Path, result) -> None:
        if token != self._tokens["load"]:
            return
        predictor, note, mtime = result
        self._predictor, self._model_key, self._device_note = predictor, (str(path), mtime), note
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

    def _on_load_failed(self, token: int, path: Path, message: str) -> None:
        if token != self._tokens["load"]:
            return
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

    def _on_image_read(self, token: int, path: Path, image: np.ndarray) -> None:
        if token != self._tokens["read"]:
            return
        key = FILE_PREFIX + str(path)
        self._files[key] = (path.name, image)
        self._drop_cached(key)
        self.banner.hide()
        self._refresh_images(select=key)

    def _on_image_failed(self, token: int, path: Path, message: str) -> None:
        if token == self._tokens["read"]:
            self._show_error(f"Could not open image {path.name}: {message}")

    def _on_dataset_changed(self) -> None:
        for key in [k for k in self._cache if not k[1].startswith(FILE_PREFIX)]:
            del self._cache[key]
        self._refresh_images(force=True)

    def _refresh_images(self, select: str | None = None, force: bool = False) -> None:
        """Rebuild the image list (val, test, train, then opened files) and keep the choice."""
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
        self._current_key = key
        self._shown_step, self._after_shows_step = None, False
        source = self._source(key)
        image = source[1] if source else None
        self.before_canvas.set_image(image)
        self.after_canvas.set_title("After watershed")
        self.after_canvas.set_image(image)
        entry = self._current_entry()
        if entry is None or entry.result is None:
            self._clear_results()
        else:
            self._render()
            self._show_metrics()
            self._show_steps(entry.result.steps)
        self._request_prediction()

    # -- prediction ----------------------------------------------------------------------------
    def _cache_key(self, key: str | None) -> tuple | None:
        return (self._model_key, key) if self._model_key is not None and key is not None else None

    def _current_entry(self) -> _Entry | None:
        cache_key = self._cache_key(self._current_key)
        return self._cache.get(cache_key) if cache_key is not None else None

    def _drop_cached(self, key: str) -> None:
        for cache_key in [k for k in self._cache if k[1] == key]:
            del self._cache[cache_key]

    def _request_prediction(self) -> None:
        source = self._source(self._current_key)
        if source is None or self._predictor is None:
            self._update_status()
            return
        cache_key = self._cache_key(self._current_key)
        self._announce = self._current_key
        if cache_key in self._cache:
            self._cache.move_to_end(cache_key)
            self._next("predict")
            self._predict_runner.cancel()
            self._run_postprocess()
            return
        name, image, _truth = source
        predictor, token = self._predictor, self._next("predict")
        self.network_passes += 1
        self.busy_bar.setRange(0, 0)
        self.status_label.setText(f"Predicting {Path(name).name}…")
        self._predict_runner.start(
            lambda ctx: predictor.predict(image, progress=ctx.progress, should_stop=lambda: ctx.cancelled),
            on_done=lambda prediction: self._on_predicted(token, cache_key, prediction),
            on_failed=lambda message: self._on_predict_failed(token, name, message),
            on_progress=self._on_progress)

    def _on_progress(self, done: int, total: int) -> None:
        self.busy_bar.setRange(0, max(1, total))
        self.busy_bar.setValue(done)

    def _on_predicted(self, token: int, cache_key: tuple, prediction) -> None:
        if token != self._tokens["predict"]:
            return
        self._cache[cache_key] = _Entry(prediction)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        self.banner.hide()
        self._update_status()
        if cache_key == self._cache_key(self._current_key):
            self._run_postprocess()

    def _on_predict_failed(self, token: int, name: str, message: str) -> None:
        if token != self._tokens["predict"]:
            return
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
        try:
            params = WatershedParams.from_dict(values)
        except Exception as exc:  # noqa: BLE001 - shown, the previous settings stay
            self._show_error(f"Invalid clean-up settings: {exc}")
            return
        self._params = params
        self.state.update("postprocess", self, value=params.to_dict())
        self._run_postprocess()

    def _on_config_changed(self, section: str, source: object) -> None:
        if source is self or section not in ("postprocess", "all"):
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
            self._next("post")
            self._post_runner.cancel()
            self._show_entry()
            return
        predictor, params, truth, token = self._predictor, self._params, source[2], self._next("post")
        prediction = entry.prediction

        def job(ctx):
            result = predictor.postprocess(prediction, params)
            ctx.check()
            return result, before_after_metrics(prediction.labels, result, truth)

        self._post_runner.start(job, on_done=lambda out: self._on_postprocessed(token, entry, params, out),
                                on_failed=lambda message: self._on_postprocess_failed(token, message))

    def _on_postprocessed(self, token: int, entry: _Entry, params: WatershedParams, out) -> None:
        if token != self._tokens["post"]:
            return
        entry.result, entry.metrics = out
        entry.params = params
        if entry is self._current_entry():
            self._show_entry()

    def _on_postprocess_failed(self, token: int, message: str) -> None:
        if token == self._tokens["post"]:
            self._show_error(f"Clean-up failed: {message}")

    def _show_entry(self) -> None:
        """Draw the current entry everywhere and announce it."""
        result = self.current_result()
        if self._shown_step is not None and self._shown_step not in {name for name, _ in result.steps}:
            self._shown_step = None
        self._render()
        self._show_metrics()
        self._show_steps(result.steps)
        self.postprocessed.emit()
        if self._announce == self._current_key:
            self._announce = None
            self.predictionReady.emit(self._source(self._current_key)[0])

    # -- display -------------------------------------------------------------------------------
    def _render(self, *_args) -> None:
        source, entry = self._source(self._current_key), self._current_entry()
        truth = source[2] if source else None
        truth_layer = mask_overlay(truth > 0, 1.0, "contour", TRUTH_COLOUR) \
            if truth is not None and self.truth_check.isChecked() else None
        errors = self.errors_check.isChecked() and truth is not None
        self._update_legend(truth is not None, errors)
        for canvas in (self.before_canvas, self.after_canvas):
            canvas.set_layer("truth", truth_layer, z=30)
        if entry is None or entry.result is None:
            for canvas in (self.before_canvas, self.after_canvas):
                canvas.set_layer("prediction", None, z=20)
            return
        opacity = self.opacity_slider.value() / 100.0
        labels, result = entry.prediction.labels, entry.result
        self.before_canvas.set_layer("prediction", error_overlay(labels, truth, opacity) if errors
                                     else mask_overlay(labels, opacity, "fill"), z=20)
        if self._shown_step is not None:
            self._render_step(result)
            return
        if self._after_shows_step:
            self._after_shows_step = False
            self.after_canvas.set_title("After watershed")
            self.after_canvas.set_image(source[1])
        if errors:
            after = error_overlay(result.mask, truth, opacity)
        elif self.objects_check.isChecked():
            after = mask_overlay(result.labels, opacity, "both")
        else:
            after = mask_overlay(result.mask, opacity, "fill")
        self.after_canvas.set_layer("prediction", after, z=20)

    def _render_step(self, result) -> None:
        self._after_shows_step = True
        self.after_canvas.set_title(f"After watershed · step: {self._shown_step}")
        self.after_canvas.set_image(step_rgb(result.step(self._shown_step)))
        self.after_canvas.set_layer("prediction", None, z=20)
        self.after_canvas.set_layer("truth", None, z=30)

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
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.metrics_table.setItem(row, column, item)
        self._fit_table_height()

    def _fit_table_height(self) -> None:
        """Size the table to its visible rows so it neither scrolls nor leaves a gap."""
        table = self.metrics_table
        rows = sum(table.verticalHeader().sectionSize(r) for r in range(table.rowCount()) if not table.isRowHidden(r))
        table.setFixedHeight(table.horizontalHeader().sizeHint().height() + rows + 2 * table.frameWidth())
        table.setMinimumWidth(table.verticalHeader().sizeHint().width() + 2 * 56 + 2 * table.frameWidth())

    def _show_steps(self, steps: list[tuple[str, np.ndarray]]) -> None:
        """One clickable thumbnail per clean-up step, its name underneath."""
        while len(self.step_buttons) > len(steps):
            button = self.step_buttons.pop()
            self.steps_layout.removeWidget(button)
            button.deleteLater()
        while len(self.step_buttons) < len(steps):
            button = QToolButton()
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.clicked.connect(lambda _checked=False, b=button: self._on_step_clicked(b))
            self.steps_layout.insertWidget(len(self.step_buttons), button)
            self.step_buttons.append(button)
        for button, (name, array) in zip(self.step_buttons, steps):
            button.setText(name)
            button.setMinimumWidth(max(THUMB_SIZE, button.fontMetrics().horizontalAdvance(name)) + 14)
            button.setObjectName(f"step_{name.replace(' ', '_')}")
            button.setIcon(QIcon(to_pixmap(step_rgb(array), THUMB_SIZE)))
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
        self.status_label.setText(f"{text} {self._device_note}".strip())

    def _update_busy(self, *_args) -> None:
        busy = any(r.busy for r in (self._load_runner, self._predict_runner, self._read_runner))
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
