"""The model / loss / optimizer / training panel: registry pickers, two-way binding, background jobs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from app.core.config import ExperimentConfig
from app.ui.model_panel import LOADING_TEXT, ModelPanel, format_count

OTHER = object()  # stands for another panel editing the config


@pytest.fixture
def panel(qtbot, state):
    widget = ModelPanel(state)
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


def combo_data(combo) -> list:
    return [combo.itemData(i) for i in range(combo.count())]


def test_pickers_wait_for_pytorch_then_list_every_registry_entry(panel):
    assert not panel.loaded
    assert panel.model_combo.currentText() == LOADING_TEXT and not panel.model_combo.isEnabled()
    assert panel.device_combo.currentText() == LOADING_TEXT and not panel.device_combo.isEnabled()
    assert panel.ensure_loaded() and panel.ensure_loaded()  # idempotent

    from app.core.losses import LOSSES
    from app.core.models import MODELS
    from app.core.optim import OPTIMIZERS, SCHEDULES

    assert combo_data(panel.model_combo) == MODELS.names()
    assert combo_data(panel.loss_combo) == LOSSES.names()
    assert combo_data(panel.optimizer_combo) == OPTIMIZERS.names()
    assert combo_data(panel.schedule_combo) == SCHEDULES.names()
    assert panel.model_combo.isEnabled() and panel.model_combo.currentData() == "unet"
    assert panel.model_form.values()["depth"] == 2 and panel.model_form.values()["base_width"] == 4
    devices = combo_data(panel.device_combo)
    assert devices[0] == "auto" and "cpu" in devices
    assert panel.device_combo.currentData() == "cpu"  # the tiny config's device
    assert panel.model_combo.itemData(0, 3)  # Qt.ToolTipRole: the entry's description


def test_panel_loads_the_registries_itself_when_shown(qtbot, panel):
    panel.show()
    qtbot.waitUntil(lambda: panel.loaded, timeout=10000)
    assert panel.loss_combo.currentData() == panel.state.config.loss.name


def test_picking_a_model_resets_its_params_and_rebuilds_the_form(panel):
    panel.ensure_loaded()
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("segnet"))
    assert panel.state.config.model.name == "segnet"
    assert panel.state.config.model.params == {}
    names = [p.name for p in panel.model_form.params()]
    assert "convs_per_block" in names and "up_mode" not in names
    assert panel.model_form.values()["depth"] == 4  # segnet's default, not the old value


def test_editing_a_model_param_stores_the_whole_form(panel):
    panel.ensure_loaded()
    panel.model_form.editor("dropout").setValue(0.25)
    params = panel.state.config.model.params
    assert params["dropout"] == pytest.approx(0.25)
    assert params["depth"] == 2 and params["up_mode"] == "transpose"


def test_changes_from_elsewhere_refresh_without_echo(qtbot, panel):
    panel.ensure_loaded()
    edits = []
    panel.state.configChanged.connect(lambda section, source: edits.append((section, source)))
    panel.state.update("model", OTHER, name="segnet", params={"convs_per_block": 3})
    assert panel.model_combo.currentData() == "segnet"
    assert panel.model_form.values()["convs_per_block"] == 3
    panel.state.update("training", OTHER, batch_size=7, seed=42)
    panel.state.update("optimizer", OTHER, lr=0.05, schedule="step")
    assert panel.batch_spin.value() == 7 and panel.seed_spin.value() == 42
    assert panel.lr_spin.text() == "0.05"
    assert panel.schedule_combo.currentData() == "step" and "step_fraction" in panel.schedule_form.values()
    assert [source for _, source in edits] == [OTHER, OTHER, OTHER]  # the panel emitted nothing back
    assert panel.state.config.model.params == {"convs_per_block": 3}


def test_replaced_config_refreshes_every_section(panel):
    panel.ensure_loaded()
    config = ExperimentConfig(name="other")
    config.loss.name = "focal"
    config.optimizer.name = "sgd"
    config.training.epochs = 9
    config.data.patch_size = 128
    panel.state.set_config(config)
    assert panel.loss_combo.currentData() == "focal"
    assert panel.optimizer_combo.currentData() == "sgd"
    assert "momentum" in panel.optimizer_form.values()
    assert panel.epochs_spin.value() == 9 and panel.patch_spin.value() == 128
    assert panel.device_combo.currentData() == "auto"


def test_small_float_parameters_show_and_take_what_is_stored(qtbot, panel):
    """Weight decay had a 2-decimal box: 5e-4 showed as 0.00 and 1e-4 could not be typed."""
    panel.ensure_loaded()
    config = ExperimentConfig(name="wd")
    config.optimizer.name = "adamw"
    config.optimizer.params = {"weight_decay": 5e-4}
    panel.state.set_config(config)
    box = panel.optimizer_form.editor("weight_decay")
    assert box.text() == "0.0005" and panel.optimizer_form.values()["weight_decay"] == 5e-4
    box.lineEdit().selectAll()
    qtbot.keyClicks(box, "1e-05")
    box.interpretText()
    assert box.value() == 1e-05 and box.text() == "1e-05"
    assert panel.optimizer_form.values()["weight_decay"] == 1e-05


def test_boxes_offer_only_what_the_experiment_accepts(panel):
    """Epochs and the like went to 2**31 − 1, which the experiment refuses: it could then neither
    train nor be saved, and the session was dropped at close."""
    from app.core.config import EPOCHS_MAX, MANY, SEED_MAX

    panel.ensure_loaded()
    assert [s.maximum() for s in (panel.epochs_spin, panel.val_interval_spin, panel.landscape_every_spin)] == \
        [EPOCHS_MAX] * 3
    assert (panel.steps_spin.maximum(), panel.warmup_spin.maximum(), panel.seed_spin.maximum()) == (MANY, MANY, SEED_MAX)
    config = ExperimentConfig(name="long")
    config.training.time_limit = 5e8
    panel.state.set_config(config)
    assert panel.time_limit_spin.value() == 5e8


def test_parameter_count_matches_the_built_model(qtbot, panel):
    from app.core.models import build_model, count_parameters

    panel.ensure_loaded()
    qtbot.waitUntil(lambda: panel.param_count is not None, timeout=10000)
    dataset = panel.state.dataset
    expected = count_parameters(build_model("unet", dataset.samples[0].channels, dataset.num_classes,
                                            depth=2, base_width=4))
    assert panel.param_count == expected
    assert panel.param_count_label.text() == format_count(expected)
    assert format_count(1_940_000) == "1.94 M parameters"


def test_a_model_that_cannot_be_built_is_reported_in_red(qtbot, panel):
    panel.ensure_loaded()
    panel.state.update("model", OTHER, params={"depth": 99})  # out of range: building fails
    qtbot.waitUntil(lambda: panel.param_count_label.text().startswith("cannot build"), timeout=10000)
    assert "depth" in panel.param_count_label.text()
    assert "d93025" in panel.param_count_label.styleSheet()
    assert panel.param_count is None


def test_patch_size_that_does_not_fit_the_model_is_noted(qtbot, panel):
    panel.ensure_loaded()
    panel.state.update("model", OTHER, name="unet_valid", params={"depth": 2})  # 32 px does not fit
    qtbot.waitUntil(lambda: panel.param_count is not None, timeout=10000)
    assert "cannot take a side of 32" in panel.patch_note_label.text()
    assert not panel.patch_note_label.isHidden()


def test_loss_shows_its_formula_and_the_weight_map_when_needed(qtbot, panel):
    from app.core.losses import LOSSES

    panel.ensure_loaded()
    assert panel.formula_label.text() == LOSSES.get("dice_ce").meta["formula"]
    assert panel.weight_view.isHidden()
    panel.loss_combo.setCurrentIndex(panel.loss_combo.findData("weighted_ce"))
    assert panel.state.config.loss.name == "weighted_ce" and panel.state.config.loss.params == {}
    assert panel.formula_label.text() == LOSSES.get("weighted_ce").meta["formula"]
    assert not panel.weight_view.isHidden()  # the loss needs the weight map
    assert not panel.banner.isHidden() and "border weight map" in panel.banner.text()
    panel.weight_map_check.setChecked(True)
    assert panel.state.config.loss.weight_map is True
    assert panel.banner.isHidden()


def test_weight_map_is_computed_for_the_selected_sample(qtbot, panel):
    from app.core.weight_map import unet_weight_map

    state = panel.state
    sample = state.dataset.samples[1]
    state.select_sample(sample.name)
    panel.weight_map_check.setChecked(True)
    panel.w0_spin.setValue(4.0)
    panel.sigma_spin.setValue(2.0)
    assert state.config.loss.weight_map_w0 == 4.0 and state.config.loss.weight_map_sigma == 2.0
    expected = unet_weight_map(sample.mask, w0=4.0, sigma=2.0)
    qtbot.waitUntil(lambda: panel.weight_values is not None and np.allclose(panel.weight_values, expected),
                    timeout=10000)
    assert panel.weight_canvas.image().shape == (*sample.mask.shape, 3)
    assert sample.name in panel.weight_caption.text()
    assert f"{expected.max():.3g}" in panel.weight_caption.text()
    other = state.dataset.samples[2]
    state.select_sample(other.name)  # a new selection recomputes
    expected = unet_weight_map(other.mask, w0=4.0, sigma=2.0)
    qtbot.waitUntil(lambda: np.allclose(panel.weight_values, expected), timeout=10000)
    assert other.name in panel.weight_caption.text()


def test_binary_only_loss_warns_for_a_multiclass_dataset(qtbot, panel):
    panel.ensure_loaded()
    samples = panel.state.dataset.samples
    panel.state.dataset = SimpleNamespace(samples=samples, num_classes=3)
    panel.state.datasetChanged.emit()
    panel.loss_combo.setCurrentIndex(panel.loss_combo.findData("bce"))
    assert not panel.banner.isHidden()
    assert "at most 2 classes" in panel.banner.text() and "has 3" in panel.banner.text()
    panel.loss_combo.setCurrentIndex(panel.loss_combo.findData("ce"))
    assert panel.banner.isHidden()


def test_training_and_optimizer_edits_reach_the_config(panel):
    panel.ensure_loaded()
    config = panel.state.config
    panel.lr_spin.lineEdit().setText("3e-4")
    panel.lr_spin.interpretText()
    assert config.optimizer.lr == pytest.approx(3e-4)
    panel.lr_spin.stepBy(1)
    assert config.optimizer.lr == pytest.approx(5e-4)
    panel.batch_spin.setValue(8)
    panel.epochs_spin.setValue(12)
    panel.patch_spin.setValue(64)
    panel.steps_spin.setValue(20)
    panel.warmup_spin.setValue(100)
    panel.ema_spin.setValue(0.999)
    panel.flip_tta_check.setChecked(True)
    panel.precision_combo.setCurrentIndex(panel.precision_combo.findData("off"))
    panel.best_metric_combo.setCurrentIndex(panel.best_metric_combo.findData("val_loss"))
    panel.device_combo.setCurrentIndex(panel.device_combo.findData("auto"))
    assert (config.training.batch_size, config.training.epochs, config.data.patch_size) == (8, 12, 64)
    assert config.training.steps_per_epoch == 20 and config.optimizer.warmup_steps == 100
    assert config.training.ema_decay == pytest.approx(0.999) and config.training.flip_tta is True
    assert config.training.mixed_precision == "off" and config.training.best_metric == "val_loss"
    assert config.training.device == "auto"
    panel.schedule_combo.setCurrentIndex(panel.schedule_combo.findData("poly"))
    assert config.optimizer.schedule == "poly" and config.optimizer.schedule_params == {}
    panel.schedule_form.editor("power").setValue(2.0)
    assert config.optimizer.schedule_params == {"power": 2.0}
    panel.state.snapshot()  # every edit left a valid experiment


def test_ranges_are_enforced(panel):
    config = panel.state.config
    panel.batch_spin.setValue(1_000_000)
    panel.patch_spin.setValue(3)
    panel.lr_spin.setValue(100.0)
    panel.ema_spin.setValue(5.0)
    assert config.training.batch_size == 4096
    assert config.data.patch_size == 16
    assert config.optimizer.lr == 10.0
    assert config.training.ema_decay == pytest.approx(0.9999)
    panel.lr_spin.setValue(1e-12)
    assert config.optimizer.lr == pytest.approx(1e-9)
    assert panel.patch_spin.singleStep() == 16


def test_editing_is_disabled_while_training(panel):
    panel.ensure_loaded()
    editors = [panel.model_combo, panel.model_form, panel.loss_combo, panel.optimizer_form, panel.lr_spin,
               panel.batch_spin, panel.patch_spin, panel.device_combo, panel.weight_map_check, panel.seed_spin]
    assert all(w.isEnabled() for w in editors)
    panel.state.set_training(True)
    assert not any(w.isEnabled() for w in editors)
    panel.state.set_training(False)
    assert all(w.isEnabled() for w in editors)


def test_every_editor_has_a_tooltip(panel):
    panel.ensure_loaded()
    widgets = [panel.model_combo, panel.loss_combo, panel.optimizer_combo, panel.schedule_combo, panel.lr_spin,
               panel.batch_spin, panel.patch_spin, panel.epochs_spin, panel.steps_spin, panel.time_limit_spin,
               panel.val_interval_spin, panel.seed_spin, panel.device_combo, panel.precision_combo,
               panel.best_metric_combo, panel.flip_tta_check, panel.ema_spin, panel.tile_overlap_spin,
               panel.weight_map_check, panel.w0_spin, panel.sigma_spin, panel.warmup_spin,
               panel.model_form.editor("depth")]
    assert all(w.toolTip() for w in widgets)


def test_shutdown_is_safe_twice(qtbot, panel):
    panel.ensure_loaded()
    panel.shutdown()
    panel.shutdown()
    assert not panel.count_runner.busy and not panel.weight_runner.busy


def test_loss_surface_slice_options_reach_the_config(panel):
    panel.ensure_loaded()
    training = panel.state.config.training
    assert panel.landscape_every_spin.text().strip() == "off" and training.landscape_every == 0
    panel.landscape_every_spin.setValue(5)
    panel.landscape_dims_combo.setCurrentIndex(1)
    assert training.landscape_every == 5 and training.landscape_dims == 2
    panel.landscape_losses_edit.setText(" dice , tversky:alpha=0.7 ")
    panel.landscape_losses_edit.editingFinished.emit()
    assert training.landscape_losses == "dice,tversky:alpha=0.7"
    assert not panel.landscape_losses_edit.property("invalid")
    panel.landscape_losses_edit.setText("dice,nosuch")
    panel.landscape_losses_edit.editingFinished.emit()
    assert training.landscape_losses == "dice,tversky:alpha=0.7"  # refused, not stored
    assert panel.landscape_losses_edit.property("invalid")
    assert "'nosuch' is not a loss; valid:" in panel.landscape_losses_edit.toolTip()
    replaced = panel.state.snapshot()
    replaced.training.landscape_every = 0
    replaced.training.landscape_losses = ""
    panel.state.set_config(replaced)
    assert panel.landscape_losses_edit.text() == "" and not panel.landscape_losses_edit.property("invalid")
    assert panel.landscape_every_spin.value() == 0
    panel.state.config.validate()


def field_lefts(panel) -> set[int]:
    """Where the editors of every form row start, measured from their section's box."""
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QFormLayout, QGroupBox

    lefts = set()
    for box in panel.findChildren(QGroupBox):
        for form in box.findChildren(QFormLayout):
            owner = form.parentWidget()
            for row in range(form.rowCount()):
                label = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
                field = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
                if label is None or field is None or not owner.isVisible():
                    continue
                lefts.add(owner.mapTo(box, QPoint(field.geometry().x(), 0)).x())
    return lefts


@pytest.mark.parametrize("width", [700, 1400])  # one column, two columns
def test_the_editors_of_all_sections_start_in_one_column(qtbot, panel, width):
    panel.ensure_loaded()
    panel.resize(width, 900)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.waitUntil(lambda: len(field_lefts(panel)) > 0)
    assert len(field_lefts(panel)) == 1, field_lefts(panel)
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("segnet"))  # another form, other labels
    panel.loss_combo.setCurrentIndex(panel.loss_combo.findData("focal_tversky"))
    qtbot.wait(50)
    assert len(field_lefts(panel)) == 1, field_lefts(panel)


def test_tab_goes_through_the_parameters_right_after_their_picker(panel):
    """The forms built from each choice's parameters came last in the Tab order, after the whole panel."""
    from PySide6.QtCore import Qt

    from PySide6.QtWidgets import QAbstractSpinBox

    def next_tab_stop(widget):  # as Tab moves: enabled tab stops, a spin box's own line edit not counted
        widget = widget.nextInFocusChain()
        while (not (widget.focusPolicy() & Qt.FocusPolicy.TabFocus) or not widget.isEnabled()
               or isinstance(widget.parent(), QAbstractSpinBox)):
            widget = widget.nextInFocusChain()
        return widget

    panel.ensure_loaded()
    config = ExperimentConfig(name="tabs")
    config.loss.name, config.optimizer.name = "dice_ce", "adamw"
    panel.state.set_config(config)
    for combo, form in ((panel.model_combo, panel.model_form), (panel.loss_combo, panel.loss_form),
                        (panel.optimizer_combo, panel.optimizer_form)):
        chain = form.focus_chain()
        assert chain and next_tab_stop(combo) is chain[0]
        assert all(next_tab_stop(a) is b for a, b in zip(chain, chain[1:]))
