"""The model, loss, optimizer and training-settings panel.

The pickers are filled in :meth:`ModelPanel.ensure_loaded`, which the panel calls itself the
first time it is shown; the registries are torch-free, but listing GPUs imports PyTorch (over a
second), so the device list is completed on a background task. The parameter count and the U-Net border weight map are computed on background
tasks (newest wins), so dragging a spin box never blocks the window. The widgets are built by
:class:`~app.ui.model_panel_layout.ModelPanelLayout`; the background jobs live in
:mod:`app.ui.model_jobs` and the small widgets in :mod:`app.ui.model_widgets`.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QWidget

from .model_jobs import count_job, list_devices, viridis_lut, weight_job
from .model_panel_layout import LOADING_TEXT, ModelPanelLayout
from .model_widgets import LearningRateSpinBox, Quiet, debounce_timer, format_count
from .param_form import ParamForm
from .state import ExperimentState
from .tasks import TaskRunner

TWO_COLUMN_WIDTH = 860  # panel width from which the sections sit in two columns
COUNT_DELAY_MS = 150
WEIGHT_DELAY_MS = 200
ERROR_STYLE = "color: #d93025;"


class ModelPanel(ModelPanelLayout, QWidget):
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
        self._count_timer = debounce_timer(self, COUNT_DELAY_MS, self._start_count)
        self._weight_timer = debounce_timer(self, WEIGHT_DELAY_MS, self._start_weight_map)

        self._build_ui()
        self._refresh_plain()
        self._apply_enabled()
        state.configChanged.connect(self._on_config_changed)
        state.datasetChanged.connect(self._on_dataset_changed)
        state.sampleSelected.connect(lambda _name: self._schedule_weight_map())
        state.trainingChanged.connect(lambda _running: self._apply_enabled())
        self._schedule_weight_map()

    # -- layout ------------------------------------------------------------------------------
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
        with Quiet(self):
            for combo, registry in ((self.model_combo, MODELS), (self.loss_combo, LOSSES),
                                    (self.optimizer_combo, OPTIMIZERS), (self.schedule_combo, SCHEDULES)):
                self._fill_registry_combo(combo, registry)
            self._fill_devices([SimpleNamespace(name="cpu", description="CPU")])  # GPUs follow when found
        self.device_runner.start(list_devices, on_done=self._devices_found,
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
        with Quiet(self):
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
        with Quiet(self):
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
            self.landscape_every_spin.setValue(training.landscape_every)
            self.landscape_dims_combo.setCurrentIndex(training.landscape_dims - 1)
            self.landscape_losses_edit.setText(training.landscape_losses)
            self._mark_landscape_losses(None)

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
        with Quiet(self):
            combo.setCurrentIndex(combo.findData(name))
            combo.setToolTip(entry.description or name)
            if [p.name for p in form.params()] != [p.name for p in entry.params] or form.property("entry") != name:
                form.set_params(entry.params, params)
                form.setProperty("entry", name)
                for before, editor in zip([combo, *form.focus_chain()], form.focus_chain()):
                    QWidget.setTabOrder(before, editor)  # Tab goes through the new fields right after their picker
                self.align_fields()
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
        with Quiet(self):
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
        with Quiet(self):
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
        with Quiet(self):
            self.patch_spin.setValue(self.state.config.data.patch_size)
        self._schedule_count()

    def _select_device(self, spec: str) -> None:
        """Select ``spec``; a device this machine lacks (config from elsewhere) is listed as such."""
        with Quiet(self):
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

    def _pick_entry(self, combo: QComboBox, section: str, field: str, params_field: str, refresh,
                    index: int) -> None:
        """A registry entry picked in ``combo``: store it with default parameters and show its form."""
        name = self._picked(combo, index)
        if name is not None:
            self.state.update(section, self, **{field: name, params_field: {}})
            refresh()

    def _store_params(self, section: str, field: str, values: dict) -> None:
        """The parameter form of ``section`` edited: store all its values in ``field``."""
        if not self._refreshing:
            self.state.update(section, self, **{field: values})

    def _on_model_picked(self, index: int) -> None:
        self._pick_entry(self.model_combo, "model", "name", "params", self._refresh_model, index)

    def _on_model_params(self, values: dict) -> None:
        if not self._refreshing:
            self._store_params("model", "params", values)
            self._schedule_count()

    def _on_loss_picked(self, index: int) -> None:
        self._pick_entry(self.loss_combo, "loss", "name", "params", self._refresh_loss, index)

    def _on_loss_params(self, values: dict) -> None:
        self._store_params("loss", "params", values)

    def _on_optimizer_picked(self, index: int) -> None:
        self._pick_entry(self.optimizer_combo, "optimizer", "name", "params", self._refresh_optimizer, index)

    def _on_optimizer_params(self, values: dict) -> None:
        self._store_params("optimizer", "params", values)

    def _on_schedule_picked(self, index: int) -> None:
        self._pick_entry(self.schedule_combo, "optimizer", "schedule", "schedule_params", self._refresh_optimizer,
                         index)

    def _on_schedule_params(self, values: dict) -> None:
        self._store_params("optimizer", "schedule_params", values)

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
        job = partial(count_job, config.model.name, in_channels, classes, dict(config.model.params),
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
            self._lut = viridis_lut()
        loss = self.state.config.loss
        self.weight_caption.setText(f"{sample.name}: computing…")
        job = partial(weight_job, sample.name, sample.mask, loss.weight_map_w0, loss.weight_map_sigma, self._lut)
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



__all__ = ["LOADING_TEXT", "LearningRateSpinBox", "ModelPanel", "format_count"]
