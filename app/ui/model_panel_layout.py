"""Builds the widgets of the model panel and lays its sections out.

:class:`ModelPanelLayout` is a mixin of :class:`app.ui.model_panel.ModelPanel`: it creates the
four sections (model, loss with the border weight-map view, optimizer, training settings), stores
every editor as an attribute of the panel and connects it to the panel's slots, and places the
sections in one or two columns. It registers the editors in the panel's ``_plain_widgets``
(always editable unless training) and ``_registry_widgets`` (editable once the registries are
loaded); binding the widgets to the configuration stays in the panel.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, \
    QScrollArea, QVBoxLayout, QWidget

from app.core.config import BEST_METRICS, EPOCHS_MAX, MANY, MIXED_PRECISION, SEED_MAX
from app.core.landscape.loss_text import check_loss_spec

from .image_view import ImageCanvas
from .model_widgets import (LearningRateSpinBox, choice_combo, description_label, float_spin, form_row,
                            group_box, int_spin)
from .param_form import ParamForm, align_labels, form_labels
from .styles import banner_style

LOADING_TEXT = "Loading PyTorch…"
NOTE_STYLE = "color: #e8710a;"
BANNER_STYLE = banner_style("warning", "QLabel")

PRECISION_HELP = {
    "auto": "float16 autocast on CUDA; bfloat16 on a CPU that computes it natively (AVX-512 BF16 or AMX: "
            "about twice as fast); float32 elsewhere",
    "on": "as auto, and bfloat16 on any CPU (slower than float32 where the CPU only emulates it)",
    "off": "always full float32 (slower; for comparing runs bit for bit across machines)",
}
METRIC_HELP = {
    "val_dice": "keep the checkpoint with the highest validation Dice",
    "val_iou": "keep the checkpoint with the highest validation IoU (Jaccard)",
    "val_pixel_accuracy": "keep the checkpoint with the highest validation pixel accuracy",
    "val_loss": "keep the checkpoint with the lowest validation loss",
}


class ModelPanelLayout:
    """Widget building and the one/two-column layout of the model panel (a mixin of ``ModelPanel``)."""

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
        self.align_fields()

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

    def _plain(self, widget):
        """Register ``widget`` as an editor that needs no registry (disabled only while training)."""
        self._plain_widgets.append(widget)
        return widget

    def _int_spin(self, *args, **kwargs):
        return self._plain(int_spin(*args, **kwargs))

    def _float_spin(self, *args, **kwargs):
        return self._plain(float_spin(*args, **kwargs))

    def _choice_combo(self, *args, **kwargs):
        return self._plain(choice_combo(*args, **kwargs))

    def _build_model_group(self) -> QGroupBox:
        box, layout, form = group_box("Model", "modelGroup", "The network architecture and its parameters")
        self.model_combo = self._picker("modelCombo", "The network architecture (hover an entry for a summary)")
        self.model_combo.currentIndexChanged.connect(self._on_model_picked)
        form_row(form, "Architecture", self.model_combo, "The network architecture (hover an entry for a summary)")
        self.model_description = description_label("modelDescription")
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

    def _build_loss_group(self) -> QGroupBox:
        box, layout, form = group_box("Loss", "lossGroup", "The training loss and the per-pixel weight map")
        self.loss_combo = self._picker("lossCombo", "The loss minimised during training")
        self.loss_combo.currentIndexChanged.connect(self._on_loss_picked)
        form_row(form, "Loss", self.loss_combo, "The loss minimised during training (hover an entry for a summary)")
        self.formula_label = QLabel()
        self.formula_label.setObjectName("formulaLabel")
        self.formula_label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.formula_label.setWordWrap(True)
        self.formula_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.formula_label.setToolTip("The loss formula (p: predicted probability, g/y: ground truth, w: weight)")
        layout.addWidget(self.formula_label)
        self.loss_description = description_label("lossDescription")
        layout.addWidget(self.loss_description)
        self.loss_form = self._form("lossForm", self._on_loss_params)
        layout.addWidget(self.loss_form)

        weights = QFormLayout()
        self.weight_map_check = QCheckBox("Use the U-Net border weight map")
        self.weight_map_check.setObjectName("weightMapCheck")
        self.weight_map_check.setToolTip("Weigh each pixel by w(x) = w_c(x) + w0·exp(−(d1+d2)²/2σ²): class balance "
                                         "plus extra weight in the thin gaps between touching objects")
        self.weight_map_check.toggled.connect(lambda on: self._edit_loss(weight_map=bool(on)))
        self._plain(self.weight_map_check)
        weights.addRow(self.weight_map_check)
        self.w0_spin = form_row(weights, "w0", self._float_spin(
            "weightMapW0", 0.0, 1000.0, 2, 1.0, lambda v: self._edit_loss(weight_map_w0=float(v))),
            "Weight added at the border between two touching objects (10 in the U-Net paper); range 0 … 1000")
        self.sigma_spin = form_row(weights, "σ", self._float_spin(
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
        box, layout, form = group_box("Optimizer", "optimizerGroup", "The optimizer and learning-rate schedule")
        self.optimizer_combo = self._picker("optimizerCombo", "The optimizer updating the weights")
        self.optimizer_combo.currentIndexChanged.connect(self._on_optimizer_picked)
        form_row(form, "Optimizer", self.optimizer_combo, "The optimizer updating the weights")
        self.optimizer_form = self._form("optimizerForm", self._on_optimizer_params)
        layout.addWidget(self.optimizer_form)
        lower = QFormLayout()
        self.lr_spin = LearningRateSpinBox()
        self.lr_spin.setObjectName("lrSpin")
        self.lr_spin.valueChanged.connect(lambda v: self._edit("optimizer", lr=float(v)))
        self._plain(self.lr_spin)
        form_row(lower, "Learning rate", self.lr_spin,
                  "Base learning rate; range 1e-09 … 10 (type e.g. 3e-4; arrows step 1-2-5)")
        self.schedule_combo = self._picker("scheduleCombo", "How the learning rate changes during training")
        self.schedule_combo.currentIndexChanged.connect(self._on_schedule_picked)
        form_row(lower, "Schedule", self.schedule_combo, "How the learning rate changes during training")
        layout.addLayout(lower)
        self.schedule_form = self._form("scheduleForm", self._on_schedule_params)
        layout.addWidget(self.schedule_form)
        tail = QFormLayout()
        self.warmup_spin = form_row(tail, "Warm-up steps", self._int_spin(
            "warmupSpin", 0, MANY, lambda v: self._edit("optimizer", warmup_steps=int(v)), special="none"),
            "Optimizer steps of linear warm-up from 0 to the base rate (0 = none)")
        layout.addLayout(tail)
        return box

    def _build_training_group(self) -> QGroupBox:
        box, _layout, form = group_box("Training", "trainingGroup", "How long and how training runs")
        training = partial(self._edit, "training")
        self.batch_spin = form_row(form, "Batch size", self._int_spin(
            "batchSpin", 1, 4096, lambda v: training(batch_size=int(v))), "Patches per optimizer step; range 1 … 4096")
        self.patch_spin = form_row(form, "Patch size", self._int_spin(
            "patchSpin", 16, 8192, lambda v: self._edit("data", patch_size=int(v)), step=16, suffix=" px"),
            "Side of the square training patches cut from the images; range 16 … 8192")
        self.epochs_spin = form_row(form, "Epochs", self._int_spin(
            "epochsSpin", 1, EPOCHS_MAX, lambda v: training(epochs=int(v))), "Passes of training; 1 or more")
        self.steps_spin = form_row(form, "Steps per epoch", self._int_spin(
            "stepsSpin", 0, MANY, lambda v: training(steps_per_epoch=int(v)), special="one pass"),
            "Optimizer steps per epoch; 0 = one pass over the training images' patches")
        self.time_limit_spin = form_row(form, "Time limit", self._float_spin(
            "timeLimitSpin", 0.0, 1e10, 0, 60.0, lambda v: training(time_limit=float(v)), special="none",
            suffix=" s"), "Stop training after this many seconds (the schedule follows the time); 0 = no limit")
        self.val_interval_spin = form_row(form, "Validate every", self._int_spin(
            "valIntervalSpin", 1, EPOCHS_MAX, lambda v: training(val_interval=int(v)), suffix=" epoch(s)"),
            "Validate (and maybe save the best checkpoint) every N epochs")
        self.seed_spin = form_row(form, "Seed", self._int_spin(
            "seedSpin", 0, SEED_MAX, lambda v: training(seed=int(v))),
            "Random seed for weights, patch order and augmentation; same seed, same run")
        self.device_combo = self._picker("deviceCombo", "Where training runs; auto picks a GPU when there is one")
        self.device_combo.currentIndexChanged.connect(self._on_device_picked)
        form_row(form, "Device", self.device_combo, "Where training runs; auto picks a GPU when there is one")
        self.precision_combo = form_row(form, "Mixed precision", self._choice_combo(
            "precisionCombo", MIXED_PRECISION, PRECISION_HELP, self._on_precision_picked),
            "Lower-precision arithmetic for the network (weights and losses stay float32): auto = float16 "
            "on CUDA, bfloat16 on CPUs with native support; on; off")
        self.best_metric_combo = form_row(form, "Best checkpoint by", self._choice_combo(
            "bestMetricCombo", BEST_METRICS, METRIC_HELP, self._on_metric_picked),
            "The validation metric that picks best.pt")
        self.flip_tta_check = QCheckBox("Flip test-time augmentation")
        self.flip_tta_check.setObjectName("flipTtaCheck")
        self.flip_tta_check.setToolTip("Validate and predict on the image and its flips, averaging the probabilities")
        self.flip_tta_check.toggled.connect(lambda on: training(flip_tta=bool(on)))
        self._plain(self.flip_tta_check)
        form.addRow(self.flip_tta_check)
        self.ema_spin = form_row(form, "EMA decay", self._float_spin(
            "emaSpin", 0.0, 0.9999, 4, 0.001, lambda v: training(ema_decay=float(v)), special="off"),
            "> 0: validate and predict with an exponential moving average of the weights (e.g. 0.999); 0 = off")
        self.tile_overlap_spin = form_row(form, "Tile overlap", self._float_spin(
            "tileOverlapSpin", 0.0, 0.9, 2, 0.05, lambda v: training(tile_overlap=float(v))),
            "Overlap of neighbouring tiles when validating and predicting whole images; range 0 … 0.9")
        self._build_landscape_rows(form, training)
        return box

    def _build_landscape_rows(self, form: QFormLayout, training) -> None:
        """Loss-surface slices stored during training, for the Loss landscape panel's slider."""
        self.landscape_every_spin = form_row(form, "Loss surface every", self._int_spin(
            "landscapeEverySpin", 0, EPOCHS_MAX, lambda v: training(landscape_every=int(v)), special="off",
            suffix=" epoch(s)"),
            "Store a loss-surface slice around the current weights every N epochs (and after the last), "
            "to step through in the Loss landscape panel; 0 = off")
        self.landscape_dims_combo = form_row(form, "Surface slice", self._choice_combo(
            "landscapeDimsCombo", ("1-D", "2-D"), {"1-D": "A curve along one random direction (cheap)",
                                                   "2-D": "A grid over two random directions (steps² evaluations)"},
            lambda index: index >= 0 and training(landscape_dims=index + 1)),
            "1-D: a curve along one random filter-normalised direction; 2-D: a grid over two")
        self.landscape_losses_edit = QLineEdit()
        self.landscape_losses_edit.setObjectName("landscapeLossesEdit")
        self.landscape_losses_edit.setPlaceholderText("the training loss")
        self.landscape_losses_edit.editingFinished.connect(self._on_landscape_losses_edited)
        self._plain(self.landscape_losses_edit)
        form_row(form, "Surface losses", self.landscape_losses_edit,
                 "Losses of the stored slices, comma-separated, with parameters as name:key=value "
                 "(e.g. dice,bce,tversky:alpha=0.7); empty = the training loss")

    def _on_landscape_losses_edited(self) -> None:
        """Store the slice losses when the text is a valid loss set; otherwise say what is wrong."""
        items, problem = check_loss_spec(self.landscape_losses_edit.text())
        if problem:
            self._mark_landscape_losses(problem)
            return
        text = ",".join(items)
        self._mark_landscape_losses(None)
        if text != self.state.config.training.landscape_losses:
            self._edit("training", landscape_losses=text)

    def _mark_landscape_losses(self, error: str | None) -> None:
        edit = self.landscape_losses_edit
        edit.setProperty("invalid", error is not None)
        edit.setStyleSheet("QLineEdit { border: 1px solid #c62828; }" if error else "")
        edit.setToolTip(error or "Losses of the stored slices, comma-separated, with parameters as name:key=value "
                        "(e.g. dice,bce,tversky:alpha=0.7); empty = the training loss")

    # -- layout ------------------------------------------------------------------------------
    def align_fields(self) -> None:
        """Start every editor of the four sections in one column (each section holds several forms)."""
        align_labels(form_labels(self.scroll.widget()))

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

