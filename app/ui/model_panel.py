"""The model, loss, optimizer and training-settings panel.

The pickers are filled in :meth:`ModelPanel.ensure_loaded`, which the panel calls itself the
first time it is shown; the registries are torch-free, but listing GPUs imports PyTorch (over a
second), so the device list is completed on a background task. The parameter count and the U-Net border weight map are computed on background
tasks (newest wins), so dragging a spin box never blocks the window.
"""

from __future__ import annotations

import math
from functools import partial
from types import SimpleNamespace
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from app.core.config import BEST_METRICS, MIXED_PRECISION

from .image_view import ImageCanvas
from .param_form import ParamForm
from .state import ExperimentState
from .tasks import TaskRunner

LOADING_TEXT = "Loading PyTorch…"
LR_MIN, LR_MAX = 1e-9, 10.0
INT_MAX = 2_147_483_647
TWO_COLUMN_WIDTH = 860  # panel width from which the sections sit in two columns
COUNT_DELAY_MS = 150
WEIGHT_DELAY_MS = 200
ERROR_STYLE = "color: #d93025;"
NOTE_STYLE = "color: #e8710a;"
BANNER_STYLE = ("QLabel { background: rgba(255, 160, 0, 0.18); border: 1px solid rgba(255, 160, 0, 0.7);"
                " border-radius: 3px; padding: 4px; }")

PRECISION_HELP = {
    "auto": "mixed precision (float16 autocast) on CUDA, full float32 elsewhere",
    "on": "always use float16 autocast (faster on GPUs, less memory)",
    "off": "always train in full float32",
}
METRIC_HELP = {
    "val_dice": "keep the checkpoint with the highest validation Dice",
    "val_iou": "keep the checkpoint with the highest validation IoU (Jaccard)",
    "val_pixel_accuracy": "keep the checkpoint with the highest validation pixel accuracy",
    "val_loss": "keep the checkpoint with the lowest validation loss",
}


def format_count(count: int) -> str:
    """``1.94 M parameters`` from a million on, the exact number below."""
    if count >= 1_000_000:
        return f"{count / 1e6:.2f} M parameters"
    return f"{count:,} parameters"


def _next_125(value: float, up: bool) -> float:
    """The next value of the 1-2-5 series (…, 1e-4, 2e-4, 5e-4, 1e-3, …) above or below ``value``."""
    exponent = math.floor(math.log10(value)) if value > 0 else -9
    series = sorted(float(f"{m * 10.0 ** e:.12g}") for e in range(exponent - 1, exponent + 2) for m in (1, 2, 5))
    if up:
        return next(v for v in series if v > value * (1 + 1e-9))
    return next(v for v in reversed(series) if v < value * (1 - 1e-9))


class LearningRateSpinBox(QDoubleSpinBox):
    """A rate between 1e-9 and 10 shown compactly (``0.001``, ``1e-05``); arrows step 1-2-5."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setDecimals(12)  # keeps 1e-9 representable; the text shows 6 significant digits
        self.setRange(LR_MIN, LR_MAX)
        self.setKeyboardTracking(False)
        self.setMinimumWidth(110)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt naming
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt naming
        try:
            return min(LR_MAX, max(LR_MIN, float(text.strip())))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        stripped = text.strip()
        try:
            number = float(stripped)
        except ValueError:
            ok = all(c in "0123456789.eE+-" for c in stripped)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        state = QValidator.State.Acceptable if LR_MIN <= number <= LR_MAX else QValidator.State.Intermediate
        return state, text, pos

    def fixup(self, text: str) -> str:
        return self.textFromValue(self.valueFromText(text))

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt naming
        value = self.value()
        for _ in range(abs(steps)):
            value = _next_125(value, steps > 0)
        self.setValue(min(LR_MAX, max(LR_MIN, value)))


def _count_job(name: str, in_channels: int, num_classes: int, params: dict, patch: int, ctx) -> tuple:
    """Build the model (background thread): its parameter count, and a note when the patch size
    does not fit it (e.g. unet_valid)."""
    from app.core.models import build_model, count_parameters

    ctx.check()
    model = build_model(name, in_channels, num_classes, **params)
    ctx.check()
    return count_parameters(model), _patch_note(model, patch)


def _patch_note(model, patch: int) -> str:
    """Empty when ``model`` takes ``patch``-pixel patches; otherwise why not."""
    try:
        model.output_size((patch, patch))
    except ValueError as exc:
        return f"patch size {patch}: {exc}"
    return ""


def _weight_job(name: str, mask: np.ndarray, w0: float, sigma: float, lut: np.ndarray, ctx) -> tuple:
    """The border weight map of ``mask`` and its heat-map colouring (background thread)."""
    from app.core.weight_map import unet_weight_map

    ctx.check()
    weights = unet_weight_map(mask, w0=w0, sigma=sigma)
    low, high = float(weights.min()), float(weights.max())
    scaled = (weights - low) / (high - low) if high > low else np.zeros_like(weights)
    rgb = np.ascontiguousarray(lut[np.clip(scaled * 255.0, 0, 255).astype(np.uint8)][..., :3])
    return name, weights, rgb


def _viridis_lut() -> np.ndarray:
    import pyqtgraph as pg

    return pg.colormap.get("viridis").getLookupTable(0.0, 1.0, 256, alpha=False, mode="byte")


class _Quiet:
    """Context: widget changes made inside are refreshes from the config, not user edits."""

    def __init__(self, panel: "ModelPanel"):
        self.panel = panel

    def __enter__(self):
        self.panel._refreshing += 1

    def __exit__(self, *exc):
        self.panel._refreshing -= 1


class ModelPanel(QWidget):
    """Edits ``model``, ``loss``, ``optimizer``, ``training`` and ``data.patch_size``."""

    title = "Model"
    registriesLoaded = Signal()  # the registry pickers are filled (after ensure_loaded)

    def __init__(self, state: ExperimentState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("modelPanel")
        self.state = state
        self.loaded = False
        self.param_count: int | None = None  # the last computed count (None while unknown)
        self.weight_values: np.ndarray | None = None  # the last weight map shown
        self._refreshing = 0
        self._load_scheduled = False
        self._closed = False
        self._errors: dict[str, str] = {}  # "load" or a registry kind -> message for the banner
        self._count_key: tuple | None = None  # inputs of the count shown (or being computed)
        self._weight_key: tuple | None = None  # inputs of the weight map shown (or being computed)
        self._registries: dict[str, Any] = {}
        self._lut: np.ndarray | None = None
        self._two_columns: bool | None = None
        self._registry_widgets: list[QWidget] = []
        self._plain_widgets: list[QWidget] = []

        self.count_runner = TaskRunner("param-count", self)
        self.weight_runner = TaskRunner("weight-map", self)
        self.device_runner = TaskRunner("devices", self)
        self._count_timer = self._debounce(COUNT_DELAY_MS, self._start_count)
        self._weight_timer = self._debounce(WEIGHT_DELAY_MS, self._start_weight_map)

        self._build_ui()
        self._refresh_plain()
        self._apply_enabled()
        state.configChanged.connect(self._on_config_changed)
        state.datasetChanged.connect(self._on_dataset_changed)
        state.sampleSelected.connect(lambda _name: self._schedule_weight_map())
        state.trainingChanged.connect(lambda _running: self._apply_enabled())
        self._schedule_weight_map()

    def _debounce(self, msecs: int, slot) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(msecs)
        timer.timeout.connect(slot)
        return timer

    # -- building ----------------------------------------------------------------------------
    def _build_ui(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        self.banner = QLabel()
        self.banner.setObjectName("modelPanelBanner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner.setToolTip("Problems with the current model, loss or training settings")
        self.banner.hide()
        outer.addWidget(self.banner)

        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        content = QWidget()
        self._columns = QHBoxLayout(content)
        self._columns.setContentsMargins(0, 0, 0, 0)
        self._column_a, self._column_b = QVBoxLayout(), QVBoxLayout()
        self._columns.addLayout(self._column_a, 1)
        self._columns.addLayout(self._column_b, 1)
        self.scroll.setWidget(content)
        outer.addWidget(self.scroll, 1)

        self.model_group = self._build_model_group()
        self.loss_group = self._build_loss_group()
        self.optimizer_group = self._build_optimizer_group()
        self.training_group = self._build_training_group()
        self._reflow(False)

    def _group(self, title: str, name: str, tip: str) -> tuple[QGroupBox, QVBoxLayout, QFormLayout]:
        box = QGroupBox(title)
        box.setObjectName(name)
        box.setToolTip(tip)
        layout = QVBoxLayout(box)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.addLayout(form)
        return box, layout, form

    @staticmethod
    def _row(form: QFormLayout, text: str, widget: QWidget, tip: str) -> QWidget:
        label = QLabel(text)
        label.setToolTip(tip)
        widget.setToolTip(tip)
        form.addRow(label, widget)
        return widget

    def _picker(self, name: str, tip: str) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(name)
        combo.setToolTip(tip)
        combo.addItem(LOADING_TEXT)
        combo.setEnabled(False)
        self._registry_widgets.append(combo)
        return combo

    def _form(self, name: str, slot) -> ParamForm:
        form = ParamForm()
        form.setObjectName(name)
        form.setToolTip("Parameters of the selected entry; hover a row for its meaning and range")
        form.hide()
        form.changed.connect(slot)
        self._registry_widgets.append(form)
        return form

    def _int_spin(self, name: str, low: int, high: int, slot, step: int = 1, special: str = "",
                  suffix: str = "") -> QSpinBox:
        spin = QSpinBox()
        spin.setObjectName(name)
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setKeyboardTracking(False)
        if special:
            spin.setSpecialValueText(special)
        if suffix:
            spin.setSuffix(suffix)
        spin.valueChanged.connect(slot)
        self._plain_widgets.append(spin)
        return spin

    def _float_spin(self, name: str, low: float, high: float, decimals: int, step: float, slot,
                    special: str = "", suffix: str = "") -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setObjectName(name)
        spin.setDecimals(decimals)
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setKeyboardTracking(False)
        if special:
            spin.setSpecialValueText(special)
        if suffix:
            spin.setSuffix(suffix)
        spin.valueChanged.connect(slot)
        self._plain_widgets.append(spin)
        return spin

    def _choice_combo(self, name: str, choices, helps: dict[str, str], slot) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(name)
        for index, choice in enumerate(choices):
            combo.addItem(choice, choice)
            combo.setItemData(index, helps.get(choice, choice), Qt.ItemDataRole.ToolTipRole)
        combo.currentIndexChanged.connect(slot)
        self._plain_widgets.append(combo)
        return combo

    def _build_model_group(self) -> QGroupBox:
        box, layout, form = self._group("Model", "modelGroup", "The network architecture and its parameters")
        self.model_combo = self._picker("modelCombo", "The network architecture (hover an entry for a summary)")
        self.model_combo.currentIndexChanged.connect(self._on_model_picked)
        self._row(form, "Architecture", self.model_combo, "The network architecture (hover an entry for a summary)")
        self.model_description = self._description_label("modelDescription")
        layout.addWidget(self.model_description)
        self.model_form = self._form("modelForm", self._on_model_params)
        layout.addWidget(self.model_form)
        self.param_count_label = QLabel(LOADING_TEXT)
        self.param_count_label.setObjectName("paramCountLabel")
        self.param_count_label.setToolTip("Trainable parameters of the model built for this dataset's channels "
                                          "and classes")
        layout.addWidget(self.param_count_label)
        self.patch_note_label = QLabel()
        self.patch_note_label.setObjectName("patchNoteLabel")
        self.patch_note_label.setWordWrap(True)
        self.patch_note_label.setStyleSheet(NOTE_STYLE)
        self.patch_note_label.setToolTip("Whether the model accepts the training patch size")
        self.patch_note_label.hide()
        layout.addWidget(self.patch_note_label)
        return box

    def _description_label(self, name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setToolTip("Description of the selected entry")
        return label

    def _build_loss_group(self) -> QGroupBox:
        box, layout, form = self._group("Loss", "lossGroup", "The training loss and the per-pixel weight map")
        self.loss_combo = self._picker("lossCombo", "The loss minimised during training")
        self.loss_combo.currentIndexChanged.connect(self._on_loss_picked)
        self._row(form, "Loss", self.loss_combo, "The loss minimised during training (hover an entry for a summary)")
        self.formula_label = QLabel()
        self.formula_label.setObjectName("formulaLabel")
        self.formula_label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.formula_label.setWordWrap(True)
        self.formula_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.formula_label.setToolTip("The loss formula (p: predicted probability, g/y: ground truth, w: weight)")
        layout.addWidget(self.formula_label)
        self.loss_description = self._description_label("lossDescription")
        layout.addWidget(self.loss_description)
        self.loss_form = self._form("lossForm", self._on_loss_params)
        layout.addWidget(self.loss_form)

        weights = QFormLayout()
        self.weight_map_check = QCheckBox("Use the U-Net border weight map")
        self.weight_map_check.setObjectName("weightMapCheck")
        self.weight_map_check.setToolTip("Weigh each pixel by w(x) = w_c(x) + w0·exp(−(d1+d2)²/2σ²): class balance "
                                         "plus extra weight in the thin gaps between touching objects")
        self.weight_map_check.toggled.connect(lambda on: self._edit_loss(weight_map=bool(on)))
        self._plain_widgets.append(self.weight_map_check)
        weights.addRow(self.weight_map_check)
        self.w0_spin = self._row(weights, "w0", self._float_spin(
            "weightMapW0", 0.0, 1000.0, 2, 1.0, lambda v: self._edit_loss(weight_map_w0=float(v))),
            "Weight added at the border between two touching objects (10 in the U-Net paper); range 0 … 1000")
        self.sigma_spin = self._row(weights, "σ", self._float_spin(
            "weightMapSigma", 0.1, 1000.0, 2, 0.5, lambda v: self._edit_loss(weight_map_sigma=float(v)),
            suffix=" px"), "Width in pixels of the border weight fall-off (5 in the U-Net paper); range 0.1 … 1000")
        layout.addLayout(weights)

        self.weight_view = QWidget()
        self.weight_view.setObjectName("weightMapView")
        view_layout = QVBoxLayout(self.weight_view)
        view_layout.setContentsMargins(0, 0, 0, 0)
        self.weight_canvas = ImageCanvas("Border weight map")
        self.weight_canvas.setObjectName("weightCanvas")
        self.weight_canvas.setMinimumHeight(220)
        self.weight_canvas.setMaximumHeight(420)
        self.weight_canvas.setToolTip("U-Net weight map of the selected image (viridis: dark = low, yellow = high); "
                                      "scroll to zoom, drag to pan, double-click to fit")
        view_layout.addWidget(self.weight_canvas)
        self.weight_caption = QLabel("no image selected")
        self.weight_caption.setObjectName("weightCaption")
        self.weight_caption.setWordWrap(True)
        self.weight_caption.setToolTip("The selected image's smallest and largest pixel weight")
        view_layout.addWidget(self.weight_caption)
        self.weight_view.hide()
        layout.addWidget(self.weight_view)
        return box

    def _build_optimizer_group(self) -> QGroupBox:
        box, layout, form = self._group("Optimizer", "optimizerGroup", "The optimizer and learning-rate schedule")
        self.optimizer_combo = self._picker("optimizerCombo", "The optimizer updating the weights")
        self.optimizer_combo.currentIndexChanged.connect(self._on_optimizer_picked)
        self._row(form, "Optimizer", self.optimizer_combo, "The optimizer updating the weights")
        self.optimizer_form = self._form("optimizerForm", self._on_optimizer_params)
        layout.addWidget(self.optimizer_form)
        lower = QFormLayout()
        self.lr_spin = LearningRateSpinBox()
        self.lr_spin.setObjectName("lrSpin")
        self.lr_spin.valueChanged.connect(lambda v: self._edit("optimizer", lr=float(v)))
        self._plain_widgets.append(self.lr_spin)
        self._row(lower, "Learning rate", self.lr_spin,
                  "Base learning rate; range 1e-09 … 10 (type e.g. 3e-4; arrows step 1-2-5)")
        self.schedule_combo = self._picker("scheduleCombo", "How the learning rate changes during training")
        self.schedule_combo.currentIndexChanged.connect(self._on_schedule_picked)
        self._row(lower, "Schedule", self.schedule_combo, "How the learning rate changes during training")
        layout.addLayout(lower)
        self.schedule_form = self._form("scheduleForm", self._on_schedule_params)
        layout.addWidget(self.schedule_form)
        tail = QFormLayout()
        self.warmup_spin = self._row(tail, "Warm-up steps", self._int_spin(
            "warmupSpin", 0, INT_MAX, lambda v: self._edit("optimizer", warmup_steps=int(v)), special="none"),
            "Optimizer steps of linear warm-up from 0 to the base rate (0 = none)")
        layout.addLayout(tail)
        return box

    def _build_training_group(self) -> QGroupBox:
        box, _layout, form = self._group("Training", "trainingGroup", "How long and how training runs")
        training = partial(self._edit, "training")
        self.batch_spin = self._row(form, "Batch size", self._int_spin(
            "batchSpin", 1, 4096, lambda v: training(batch_size=int(v))), "Patches per optimizer step; range 1 … 4096")
        self.patch_spin = self._row(form, "Patch size", self._int_spin(
            "patchSpin", 16, 8192, lambda v: self._edit("data", patch_size=int(v)), step=16, suffix=" px"),
            "Side of the square training patches cut from the images; range 16 … 8192")
        self.epochs_spin = self._row(form, "Epochs", self._int_spin(
            "epochsSpin", 1, INT_MAX, lambda v: training(epochs=int(v))), "Passes of training; 1 or more")
        self.steps_spin = self._row(form, "Steps per epoch", self._int_spin(
            "stepsSpin", 0, INT_MAX, lambda v: training(steps_per_epoch=int(v)), special="one pass"),
            "Optimizer steps per epoch; 0 = one pass over the training images' patches")
        self.time_limit_spin = self._row(form, "Time limit", self._float_spin(
            "timeLimitSpin", 0.0, 1e8, 0, 60.0, lambda v: training(time_limit=float(v)), special="none",
            suffix=" s"), "Stop training after this many seconds (the schedule follows the time); 0 = no limit")
        self.val_interval_spin = self._row(form, "Validate every", self._int_spin(
            "valIntervalSpin", 1, INT_MAX, lambda v: training(val_interval=int(v)), suffix=" epoch(s)"),
            "Validate (and maybe save the best checkpoint) every N epochs")
        self.seed_spin = self._row(form, "Seed", self._int_spin(
            "seedSpin", 0, INT_MAX, lambda v: training(seed=int(v))),
            "Random seed for weights, patch order and augmentation; same seed, same run")
        self.device_combo = self._picker("deviceCombo", "Where training runs; auto picks a GPU when there is one")
        self.device_combo.currentIndexChanged.connect(self._on_device_picked)
        self._row(form, "Device", self.device_combo, "Where training runs; auto picks a GPU when there is one")
        self.precision_combo = self._row(form, "Mixed precision", self._choice_combo(
            "precisionCombo", MIXED_PRECISION, PRECISION_HELP, self._on_precision_picked),
            "float16 autocast: auto = on for CUDA; on; off")
        self.best_metric_combo = self._row(form, "Best checkpoint by", self._choice_combo(
            "bestMetricCombo", BEST_METRICS, METRIC_HELP, self._on_metric_picked),
            "The validation metric that picks best.pt")
        self.flip_tta_check = QCheckBox("Flip test-time augmentation")
        self.flip_tta_check.setObjectName("flipTtaCheck")
        self.flip_tta_check.setToolTip("Validate and predict on the image and its flips, averaging the probabilities")
        self.flip_tta_check.toggled.connect(lambda on: training(flip_tta=bool(on)))
        self._plain_widgets.append(self.flip_tta_check)
        form.addRow(self.flip_tta_check)
        self.ema_spin = self._row(form, "EMA decay", self._float_spin(
            "emaSpin", 0.0, 0.9999, 4, 0.001, lambda v: training(ema_decay=float(v)), special="off"),
            "> 0: validate and predict with an exponential moving average of the weights (e.g. 0.999); 0 = off")
        self.tile_overlap_spin = self._row(form, "Tile overlap", self._float_spin(
            "tileOverlapSpin", 0.0, 0.9, 2, 0.05, lambda v: training(tile_overlap=float(v))),
            "Overlap of neighbouring tiles when validating and predicting whole images; range 0 … 0.9")
        return box

    # -- layout ------------------------------------------------------------------------------
    def _reflow(self, two: bool) -> None:
        """Place the sections in one column, or in two (model + loss | optimizer + training)."""
        if two == self._two_columns:
            return
        self._two_columns = two
        groups = [self.model_group, self.loss_group, self.optimizer_group, self.training_group]
        for column in (self._column_a, self._column_b):
            for group in groups:
                column.removeWidget(group)  # deletes the layout item, so size caches stay tied to the widget
            while column.count():
                column.takeAt(0)  # the stretch
        first, second = (groups[:2], groups[2:]) if two else (groups, [])
        for column, members in ((self._column_a, first), (self._column_b, second)):
            for group in members:
                column.addWidget(group)
            if members:
                column.addStretch(1)
        self._columns.setStretch(1, 1 if two else 0)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().resizeEvent(event)
        self._reflow(self.width() >= TWO_COLUMN_WIDTH)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        if not self.loaded and not self._load_scheduled and not self._closed:
            self._load_scheduled = True
            QTimer.singleShot(0, self, self.ensure_loaded)

    # -- loading the registries ----------------------------------------------------------------
    def ensure_loaded(self) -> bool:
        """Import the registries (PyTorch) and fill the pickers and forms; True once loaded."""
        if self.loaded or self._closed:
            return self.loaded
        try:
            from app.core.losses import LOSSES
            from app.core.models import MODELS
            from app.core.optim import OPTIMIZERS, SCHEDULES
        except Exception as exc:  # noqa: BLE001 - a broken PyTorch install is reported, not raised
            self._errors["load"] = f"PyTorch could not be loaded, so models cannot be chosen: {exc}"
            for combo in (self.model_combo, self.loss_combo, self.optimizer_combo, self.schedule_combo,
                          self.device_combo):
                combo.setItemText(0, "PyTorch unavailable")
            self.param_count_label.setText("PyTorch unavailable")
            self._update_banner()
            return False
        self._registries = {"model": MODELS, "loss": LOSSES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES}
        with _Quiet(self):
            for combo, registry in ((self.model_combo, MODELS), (self.loss_combo, LOSSES),
                                    (self.optimizer_combo, OPTIMIZERS), (self.schedule_combo, SCHEDULES)):
                self._fill_registry_combo(combo, registry)
            self._fill_devices([SimpleNamespace(name="cpu", description="CPU")])  # GPUs follow when found
        self.device_runner.start(_list_devices, on_done=self._devices_found,
                                 on_failed=lambda message: self.device_combo.setToolTip(
                                     f"Could not list GPUs ({message}); the CPU is always available"))
        for form in (self.model_form, self.loss_form, self.optimizer_form, self.schedule_form):
            form.show()
        self.loaded = True
        self._refresh_all()
        self._apply_enabled()
        self.registriesLoaded.emit()
        return True

    @staticmethod
    def _fill_registry_combo(combo: QComboBox, registry) -> None:
        combo.clear()
        for index, name in enumerate(registry.names()):
            combo.addItem(name, name)
            combo.setItemData(index, registry.get(name).description or name, Qt.ItemDataRole.ToolTipRole)

    def _devices_found(self, devices) -> None:
        """The devices PyTorch found (listed off the GUI thread, since it imports torch)."""
        if self._closed:
            return
        with _Quiet(self):
            self._fill_devices(devices)
        self._refresh_training()

    def _fill_devices(self, devices) -> None:
        self.device_combo.clear()
        self.device_combo.addItem("auto", "auto")
        self.device_combo.setItemData(0, "A CUDA GPU if there is one, then an Apple GPU, then the CPU",
                                      Qt.ItemDataRole.ToolTipRole)
        for info in devices:
            self.device_combo.addItem(f"{info.name} — {info.description}", info.name)
            self.device_combo.setItemData(self.device_combo.count() - 1, info.description,
                                          Qt.ItemDataRole.ToolTipRole)

    # -- config -> widgets -------------------------------------------------------------------
    def _on_config_changed(self, section: str, source: object) -> None:
        if source is self:
            return
        if section == "all":
            self._refresh_all()
            return
        refresh = {"model": self._refresh_model, "loss": self._refresh_loss, "optimizer": self._refresh_optimizer,
                   "training": self._refresh_training, "data": self._refresh_data}.get(section)
        if refresh is not None:
            refresh()

    def _refresh_all(self) -> None:
        self._refresh_plain()
        self._refresh_model()
        self._refresh_loss()
        self._refresh_optimizer()
        self._refresh_training()

    def _refresh_plain(self) -> None:
        """The widgets that need no registry: numbers, check boxes and fixed choices."""
        config = self.state.config
        loss, opt, training = config.loss, config.optimizer, config.training
        with _Quiet(self):
            self.patch_spin.setValue(config.data.patch_size)
            self.weight_map_check.setChecked(loss.weight_map)
            self.w0_spin.setValue(loss.weight_map_w0)
            self.sigma_spin.setValue(loss.weight_map_sigma)
            self.lr_spin.setValue(opt.lr)
            self.warmup_spin.setValue(opt.warmup_steps)
            self.batch_spin.setValue(training.batch_size)
            self.epochs_spin.setValue(training.epochs)
            self.steps_spin.setValue(training.steps_per_epoch)
            self.time_limit_spin.setValue(training.time_limit)
            self.val_interval_spin.setValue(training.val_interval)
            self.seed_spin.setValue(training.seed)
            self.precision_combo.setCurrentIndex(max(0, self.precision_combo.findData(training.mixed_precision)))
            self.best_metric_combo.setCurrentIndex(max(0, self.best_metric_combo.findData(training.best_metric)))
            self.flip_tta_check.setChecked(training.flip_tta)
            self.ema_spin.setValue(training.ema_decay)
            self.tile_overlap_spin.setValue(training.tile_overlap)

    def _show_entry(self, kind: str, combo: QComboBox, form: ParamForm, name: str, params: dict) -> bool:
        """Select ``name`` in ``combo`` and show its parameters; False when it is not registered."""
        registry = self._registries[kind]
        if name not in registry:
            self._errors[kind] = f"{kind} {name!r} is not registered; valid: {', '.join(registry.names())}"
            self._update_banner()
            return False
        if self._errors.pop(kind, None):
            self._update_banner()
        entry = registry.get(name)
        with _Quiet(self):
            combo.setCurrentIndex(combo.findData(name))
            combo.setToolTip(entry.description or name)
            if [p.name for p in form.params()] != [p.name for p in entry.params] or form.property("entry") != name:
                form.set_params(entry.params, params)
                form.setProperty("entry", name)
            else:
                form.set_values({**entry.defaults(), **params})
        return True

    def _refresh_model(self) -> None:
        if not self.loaded:
            return
        model = self.state.config.model
        if self._show_entry("model", self.model_combo, self.model_form, model.name, model.params):
            self.model_description.setText(self._registries["model"].get(model.name).description)
        self._schedule_count()

    def _refresh_loss(self) -> None:
        loss = self.state.config.loss
        with _Quiet(self):
            self.weight_map_check.setChecked(loss.weight_map)
            self.w0_spin.setValue(loss.weight_map_w0)
            self.sigma_spin.setValue(loss.weight_map_sigma)
        if self.loaded and self._show_entry("loss", self.loss_combo, self.loss_form, loss.name, loss.params):
            entry = self._registries["loss"].get(loss.name)
            self.formula_label.setText(entry.meta.get("formula", ""))
            self.loss_description.setText(entry.description)
        self._update_banner()
        self._schedule_weight_map()

    def _refresh_optimizer(self) -> None:
        opt = self.state.config.optimizer
        with _Quiet(self):
            self.lr_spin.setValue(opt.lr)
            self.warmup_spin.setValue(opt.warmup_steps)
        if self.loaded:
            self._show_entry("optimizer", self.optimizer_combo, self.optimizer_form, opt.name, opt.params)
            self._show_entry("schedule", self.schedule_combo, self.schedule_form, opt.schedule, opt.schedule_params)

    def _refresh_training(self) -> None:
        self._refresh_plain()
        if self.loaded:
            self._select_device(self.state.config.training.device)

    def _refresh_data(self) -> None:
        with _Quiet(self):
            self.patch_spin.setValue(self.state.config.data.patch_size)
        self._schedule_count()

    def _select_device(self, spec: str) -> None:
        """Select ``spec``; a device this machine lacks (config from elsewhere) is listed as such."""
        with _Quiet(self):
            index = self.device_combo.findData(spec)
            if index < 0:
                self.device_combo.addItem(f"{spec} (not available here)", spec)
                index = self.device_combo.count() - 1
                self.device_combo.setItemData(index, "Named by the experiment, but this PyTorch cannot use it",
                                              Qt.ItemDataRole.ToolTipRole)
            self.device_combo.setCurrentIndex(index)
            self.device_combo.setToolTip(self.device_combo.itemData(index, Qt.ItemDataRole.ToolTipRole) or spec)

    # -- widgets -> config -------------------------------------------------------------------
    def _edit(self, section: str, **fields: Any) -> None:
        if self._refreshing:
            return
        self.state.update(section, self, **fields)
        if section == "data":
            self._schedule_count()

    def _edit_loss(self, **fields: Any) -> None:
        if self._refreshing:
            return
        self._edit("loss", **fields)
        self._update_banner()
        self._schedule_weight_map()

    def _picked(self, combo: QComboBox, index: int) -> str | None:
        """The registry name chosen in ``combo``, or None for a refresh or an empty combo."""
        if self._refreshing or not self.loaded or index < 0:
            return None
        return combo.itemData(index)

    def _on_model_picked(self, index: int) -> None:
        name = self._picked(self.model_combo, index)
        if name is not None:
            self.state.update("model", self, name=name, params={})
            self._refresh_model()

    def _on_model_params(self, values: dict) -> None:
        if not self._refreshing:
            self.state.update("model", self, params=values)
            self._schedule_count()

    def _on_loss_picked(self, index: int) -> None:
        name = self._picked(self.loss_combo, index)
        if name is not None:
            self.state.update("loss", self, name=name, params={})
            self._refresh_loss()

    def _on_loss_params(self, values: dict) -> None:
        if not self._refreshing:
            self.state.update("loss", self, params=values)

    def _on_optimizer_picked(self, index: int) -> None:
        name = self._picked(self.optimizer_combo, index)
        if name is not None:
            self.state.update("optimizer", self, name=name, params={})
            self._refresh_optimizer()

    def _on_optimizer_params(self, values: dict) -> None:
        if not self._refreshing:
            self.state.update("optimizer", self, params=values)

    def _on_schedule_picked(self, index: int) -> None:
        name = self._picked(self.schedule_combo, index)
        if name is not None:
            self.state.update("optimizer", self, schedule=name, schedule_params={})
            self._refresh_optimizer()

    def _on_schedule_params(self, values: dict) -> None:
        if not self._refreshing:
            self.state.update("optimizer", self, schedule_params=values)

    def _on_device_picked(self, index: int) -> None:
        spec = self._picked(self.device_combo, index)
        if spec is not None:
            self._edit("training", device=spec)
            self.device_combo.setToolTip(self.device_combo.itemData(index, Qt.ItemDataRole.ToolTipRole) or spec)

    def _on_precision_picked(self, index: int) -> None:
        if index >= 0:
            self._edit("training", mixed_precision=self.precision_combo.itemData(index))

    def _on_metric_picked(self, index: int) -> None:
        if index >= 0:
            self._edit("training", best_metric=self.best_metric_combo.itemData(index))

    def _on_dataset_changed(self) -> None:
        self._schedule_count()
        self._update_banner()
        self._schedule_weight_map()

    # -- warnings and enabling ---------------------------------------------------------------
    def _warnings(self) -> list[str]:
        messages = list(self._errors.values())
        if not self.loaded:
            return messages
        loss = self.state.config.loss
        if loss.name not in self._registries["loss"]:
            return messages
        meta = self._registries["loss"].get(loss.name).meta
        classes = self.state.dataset.num_classes if self.state.dataset is not None else None
        limit = meta.get("max_channels")
        if limit is not None and classes is not None and classes > limit:
            messages.append(f"The {loss.name} loss handles at most {limit} classes, but this dataset has {classes}: "
                            "pick another loss (e.g. ce or dice_ce).")
        if meta.get("needs_weight") and not loss.weight_map:
            messages.append(f"The {loss.name} loss weighs pixels by the border weight map: tick “Use the U-Net "
                            "border weight map”, otherwise every pixel weighs the same.")
        return messages

    def _update_banner(self) -> None:
        messages = self._warnings()
        self.banner.setText("\n".join(f"⚠ {m}" for m in messages))
        self.banner.setVisible(bool(messages))

    def _apply_enabled(self) -> None:
        editable = not self.state.training
        for widget in self._plain_widgets:
            widget.setEnabled(editable)
        for widget in self._registry_widgets:
            widget.setEnabled(editable and self.loaded)

    # -- parameter count ---------------------------------------------------------------------
    def _model_io(self) -> tuple[int, int]:
        """Input channels and classes of the loaded dataset (1 and 2 without one)."""
        dataset = self.state.dataset
        if dataset is None or not dataset.samples:
            return 1, 2
        return dataset.samples[0].channels, max(1, dataset.num_classes)

    def _count_inputs(self) -> tuple:
        config = self.state.config
        return (config.model.name, repr(sorted(config.model.params.items())), *self._model_io(),
                config.data.patch_size)

    def _schedule_count(self) -> None:
        if self.loaded and not self._closed and self._count_inputs() != self._count_key:
            self.param_count = None
            self.param_count_label.setStyleSheet("")
            self.param_count_label.setText("counting…")
            self._count_timer.start()

    def _start_count(self) -> None:
        if self._closed:
            return
        self._count_key = self._count_inputs()
        config = self.state.config
        in_channels, classes = self._model_io()
        job = partial(_count_job, config.model.name, in_channels, classes, dict(config.model.params),
                      config.data.patch_size)
        self.count_runner.start(job, on_done=self._show_count, on_failed=self._show_count_error)

    def _show_count(self, result: tuple) -> None:
        count, note = result
        self.param_count = count
        in_channels, classes = self._model_io()
        self.param_count_label.setStyleSheet("")
        self.param_count_label.setText(format_count(count))
        self.param_count_label.setToolTip(f"{count:,} trainable parameters for {in_channels} input channel(s) "
                                          f"and {classes} classes")
        self.patch_note_label.setText(note)
        self.patch_note_label.setVisible(bool(note))

    def _show_count_error(self, message: str) -> None:
        self.param_count = None
        self._count_key = None
        self.param_count_label.setStyleSheet(ERROR_STYLE)
        self.param_count_label.setText(f"cannot build {self.state.config.model.name}: {message}")
        self.param_count_label.setToolTip(message)
        self.patch_note_label.hide()

    # -- weight map --------------------------------------------------------------------------
    def weight_view_wanted(self) -> bool:
        """The weight map is shown when it is switched on or the loss needs it."""
        loss = self.state.config.loss
        if loss.weight_map:
            return True
        registry = self._registries.get("loss")
        return bool(registry is not None and loss.name in registry and registry.get(loss.name).meta.get("needs_weight"))

    def _weight_inputs(self) -> tuple:
        sample, loss = self.state.sample(), self.state.config.loss
        return (None if sample is None else sample.name, None if sample is None else id(sample.mask),
                loss.weight_map_w0, loss.weight_map_sigma)

    def _schedule_weight_map(self) -> None:
        wanted = self.weight_view_wanted()
        self.weight_view.setVisible(wanted)
        if wanted and not self._closed and self._weight_inputs() != self._weight_key:
            self._weight_timer.start()
        else:
            self._weight_timer.stop()

    def _start_weight_map(self) -> None:
        if self._closed or not self.weight_view_wanted():
            return
        sample = self.state.sample()
        self._weight_key = self._weight_inputs()
        if sample is None:
            self.weight_values = None
            self.weight_canvas.set_image(None)
            self.weight_caption.setText("no image selected")
            return
        if self._lut is None:
            self._lut = _viridis_lut()
        loss = self.state.config.loss
        self.weight_caption.setText(f"{sample.name}: computing…")
        job = partial(_weight_job, sample.name, sample.mask, loss.weight_map_w0, loss.weight_map_sigma, self._lut)
        self.weight_runner.start(job, on_done=self._show_weight_map, on_failed=self._show_weight_error)

    def _show_weight_map(self, result: tuple) -> None:
        name, weights, rgb = result
        self.weight_values = weights
        self.weight_canvas.set_image(rgb)
        self.weight_canvas.set_title(f"Border weight map — {name}")
        loss = self.state.config.loss
        self.weight_caption.setStyleSheet("")
        self.weight_caption.setText(f"{name}: weights {weights.min():.3g} … {weights.max():.3g} "
                                    f"(w0 = {loss.weight_map_w0:g}, σ = {loss.weight_map_sigma:g} px)")

    def _show_weight_error(self, message: str) -> None:
        self.weight_values = None
        self._weight_key = None
        self.weight_canvas.set_image(None)
        self.weight_caption.setStyleSheet(ERROR_STYLE)
        self.weight_caption.setText(f"weight map failed: {message}")

    # -- lifetime ----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop the debounce timers, cancel the background tasks and wait for them (idempotent)."""
        self._closed = True
        self._count_timer.stop()
        self._weight_timer.stop()
        self.count_runner.shutdown()
        self.weight_runner.shutdown()
        self.device_runner.shutdown()


def _list_devices(_ctx):
    from app.core.training.device import available_devices

    return available_devices()


__all__ = ["LearningRateSpinBox", "ModelPanel", "format_count"]
