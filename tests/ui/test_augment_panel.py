"""The augmentation panel: pipeline editing and a preview identical to what training draws."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.core.augment import TRANSFORMS
from app.core.patch_plan import training_patch, training_pipeline
from app.ui import augment_panel as ap
from app.ui.augment_panel import AugmentPanel, display_rgb
from app.ui.render import mask_overlay, padding_overlay
from app.ui.state import ExperimentState

from .conftest import tiny_config


@pytest.fixture
def panel(qtbot, state):
    widget = AugmentPanel(state)
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()
    assert widget.runner.shutdown(0)  # no preview thread left running


def train_samples(state):
    return state.dataset.split("train") or state.dataset.samples


def pipeline_of(*transforms, seed=0):
    return {"version": 1, "seed": seed, "transforms": list(transforms)}


def row_named(panel, name):
    return next(row for row in panel.transform_rows if row.name == name)


def expected(state, epoch, index):
    return training_patch(state.config, train_samples(state), epoch, index)


def test_preview_is_the_training_patch(panel, state):
    state.update("training", None, epochs=3)
    panel.epoch_spin.setValue(2)
    panel.index_spin.setValue(5)
    panel.refresh_now()
    sample, patch = expected(state, 2, 5)
    shown = panel.current_patch()
    assert panel.current_sample().name == sample.name
    assert shown.image.shape[:2] == (32, 32)
    assert np.array_equal(shown.image, patch.image)
    assert np.array_equal(shown.mask, patch.mask)
    assert np.array_equal(panel.original_canvas.image()[..., 0], sample.image[..., 0])


def test_preview_matches_the_training_data_set(panel, state):
    from app.core.training.data import Normaliser, PatchDataset

    state.update("training", None, epochs=4)
    dataset = PatchDataset(train_samples(state), state.config, Normaliser(0.0, 1.0))
    for epoch, index in ((0, 0), (3, 7)):
        dataset.set_epoch(epoch)
        image, mask, _weight = dataset[index]
        panel.epoch_spin.setValue(epoch)
        panel.index_spin.setValue(index)
        panel.refresh_now()
        shown = panel.current_patch()
        assert np.array_equal(image.numpy(), shown.image.transpose(2, 0, 1).astype(np.float32))
        assert np.array_equal(mask.numpy(), shown.mask.astype(np.int64))


def test_row_edits_update_the_config_and_the_preview(qtbot, panel, state):
    state.update("augmentation", None, value=pipeline_of(
        {"name": "brightness", "enabled": True, "p": 1.0, "params": {"max_shift": 0.0}}))
    panel.show()
    panel.refresh_now()
    before = panel.current_patch().image.copy()
    row = row_named(panel, "brightness")

    row.form.editor("max_shift").setValue(0.5)
    assert state.config.augmentation["transforms"][0]["params"]["max_shift"] == 0.5
    qtbot.waitUntil(lambda: not np.array_equal(panel.current_patch().image, before), timeout=3000)
    assert np.array_equal(panel.current_patch().image, expected(state, 0, 0)[1].image)

    row.p_spin.setValue(0.25)
    assert state.config.augmentation["transforms"][0]["p"] == 0.25
    assert row.p_slider.value() == 25
    row.p_slider.setValue(60)
    assert state.config.augmentation["transforms"][0]["p"] == 0.6

    row.enabled_box.setChecked(False)
    assert state.config.augmentation["transforms"][0]["enabled"] is False
    panel.refresh_now()
    assert np.array_equal(panel.current_patch().image, expected(state, 0, 0)[1].image)
    assert "disabled: brightness" in panel.applied_label.text()


def test_seed_edit_changes_the_draws(panel, state):
    state.update("augmentation", None, value=pipeline_of({"name": "gaussian_noise", "p": 1.0}))
    panel.refresh_now()
    before = panel.current_patch().image.copy()
    panel.seed_spin.setValue(7)
    assert state.config.augmentation["seed"] == 7
    panel.refresh_now()
    assert not np.array_equal(panel.current_patch().image, before)
    assert np.array_equal(panel.current_patch().image, expected(state, 0, 0)[1].image)


def test_change_from_elsewhere_rebuilds_rows(panel, state):
    assert [row.name for row in panel.transform_rows] == [t["name"] for t in state.config.augmentation["transforms"]]
    other = object()
    state.update("augmentation", other, value=pipeline_of(
        {"name": "rotate", "p": 0.3, "params": {"max_angle": 40.0}}, {"name": "flip", "enabled": False}, seed=5))
    assert [row.name for row in panel.transform_rows] == ["rotate", "flip"]
    assert panel.transform_rows[0].p_spin.value() == pytest.approx(0.3)
    assert panel.transform_rows[0].form.values()["max_angle"] == 40.0
    assert not panel.transform_rows[1].enabled_box.isChecked()
    assert panel.seed_spin.value() == 5
    assert panel.banner.isHidden() and panel.banner.text() == ""


def test_own_edit_does_not_rebuild_rows(panel, state):
    rows = list(panel.transform_rows)
    rows[0].p_spin.setValue(0.1)
    assert panel.transform_rows == rows
    assert state.config.augmentation["transforms"][0]["p"] == 0.1


def test_add_move_and_remove(panel, state):
    state.update("augmentation", None, value=pipeline_of({"name": "flip", "p": 1.0}))
    index = panel.add_combo.findData("rotate")
    panel.add_combo.setCurrentIndex(index)
    panel.add_combo.activated.emit(index)
    transforms = state.config.augmentation["transforms"]
    assert [t["name"] for t in transforms] == ["flip", "rotate"]
    assert transforms[1]["p"] == 0.5
    assert transforms[1]["params"] == {"max_angle": 15.0, "border": "mirror"}
    assert panel.add_combo.currentIndex() == 0
    assert len(panel.transform_rows) == 2

    panel.transform_rows[0].down_button.click()
    assert [t["name"] for t in state.config.augmentation["transforms"]] == ["rotate", "flip"]
    assert [row.name for row in panel.transform_rows] == ["rotate", "flip"]
    assert not panel.transform_rows[0].up_button.isEnabled()

    panel.transform_rows[0].remove_button.click()
    assert [t["name"] for t in state.config.augmentation["transforms"]] == ["flip"]
    assert [row.name for row in panel.transform_rows] == ["flip"]


def test_every_transform_can_be_added_and_rendered(panel, state):
    names = TRANSFORMS.names()
    assert [panel.add_combo.itemData(i) for i in range(1, panel.add_combo.count())] == names
    state.update("augmentation", None, value=pipeline_of())
    for name in names:
        assert panel.add_transform(name), panel.banner.text()
    assert [t["name"] for t in state.config.augmentation["transforms"]] == names
    for row in panel.transform_rows:
        row.p_spin.setValue(1.0)
    panel.refresh_now()
    assert panel.preview_stack.currentIndex() == 1
    assert np.array_equal(panel.current_patch().image, expected(state, 0, 0)[1].image)
    for name in names:  # each one alone, applied for sure
        state.update("augmentation", None, value=pipeline_of({"name": name, "p": 1.0}))
        panel.refresh_now()
        assert panel.preview_stack.currentIndex() == 1, panel.hint_label.text()
        assert panel.current_patch().image.shape[:2] == (32, 32)
        assert f"applied: {name}" in panel.applied_label.text()


def test_invalid_input_is_shown_and_not_applied(panel, state):
    before = state.config.augmentation
    assert not panel.apply_pipeline(pipeline_of({"name": "rotate", "params": {"max_angle": 500}}))
    assert panel.banner.isVisibleTo(panel) and "max_angle" in panel.banner.text()
    assert state.config.augmentation == before
    assert panel.apply_pipeline(pipeline_of({"name": "rotate"}))
    assert not panel.banner.isVisibleTo(panel)


def test_invalid_pipeline_from_elsewhere(panel, state):
    state.update("augmentation", object(), value=pipeline_of({"name": "flip"}, {"name": "swirl", "p": 1.0}))
    assert "swirl" in panel.banner.text() and panel.banner.isVisibleTo(panel)
    panel.refresh_now()
    assert panel.preview_stack.currentIndex() == 0 and "swirl" in panel.hint_label.text()
    unknown = row_named(panel, "swirl")
    assert not unknown.enabled_box.isEnabled()
    panel.transform_rows[0].p_spin.setValue(0.9)  # still invalid: nothing saved
    assert state.config.augmentation["transforms"][0].get("p", 1.0) == 1.0
    unknown.remove_button.click()
    assert state.config.augmentation["transforms"] == [
        {"name": "flip", "enabled": True, "p": 0.9, "params": {"direction": "random"}}]
    assert not panel.banner.isVisibleTo(panel)
    panel.refresh_now()
    assert panel.preview_stack.currentIndex() == 1


def test_padding_is_marked(panel, state):
    state.update("data", None, patch_size=64)  # the whole 64×64 image: rotated corners are padding
    state.update("augmentation", None, value=pipeline_of(  # zooming out by half pads every side
        {"name": "rotate", "p": 1.0, "params": {"max_angle": 45.0, "border": "constant"}},
        {"name": "scale", "p": 1.0, "params": {"factor": [0.5, 0.5], "border": "mirror"}}))
    panel.index_spin.setValue(1)
    panel.refresh_now()
    valid = panel.current_patch().valid
    assert valid is not None and not valid.all()
    layer = panel.augmented_canvas.layer("padding")
    assert layer is not None
    assert np.array_equal(layer[..., 3] > 0, ~valid)
    tile = panel.grid_canvases[0].rendered()
    assert tile is not None and tile.shape[:2] == (64, 64)
    panel.padding_box.setChecked(False)
    assert panel.augmented_canvas.layer("padding") is None


def test_no_padding_layer_without_padding(panel, state):
    state.update("augmentation", None, value=pipeline_of({"name": "flip", "p": 1.0}))
    panel.refresh_now()
    assert panel.current_patch().valid is None
    assert panel.augmented_canvas.layer("padding") is None


def test_whole_image_mode_shows_the_step_before_the_crop(panel, state):
    state.update("augmentation", None, value=pipeline_of({"name": "rotate", "p": 1.0}, {"name": "flip", "p": 1.0}))
    panel.index_spin.setValue(2)
    panel.whole_box.setChecked(True)
    panel.refresh_now()
    sample = panel.current_sample()
    steps = training_pipeline(state.config).trace(sample.image, sample.mask, key=(0, 2))
    shown = panel.current_patch()
    assert shown.image.shape[:2] == (64, 64)
    assert np.array_equal(shown.image, steps[-2].result.image)
    assert np.array_equal(shown.mask, steps[-2].result.mask)
    panel.whole_box.setChecked(False)
    assert panel.current_patch().image.shape[:2] == (32, 32)


def test_grid_shows_consecutive_draws(panel, state):
    state.update("augmentation", None, value=pipeline_of({"name": "rotate90", "p": 1.0}))
    panel.index_spin.setValue(3)
    panel.refresh_now()
    keys = [tile.key for tile in panel.grid_canvases]
    per_epoch = panel.index_spin.maximum() + 1
    assert keys[0] == (0, 3)
    assert all(key == (0 + (3 + i) // per_epoch, (3 + i) % per_epoch) for i, key in enumerate(keys))
    assert all(tile.rendered() is not None and tile.rendered().shape == (32, 32, 3) for tile in panel.grid_canvases)
    assert not np.array_equal(panel.grid_canvases[0].rendered(), panel.grid_canvases[1].rendered())


def test_clicking_a_tile_previews_it(qtbot, panel, state):
    panel.show()
    panel.refresh_now()
    tile = panel.grid_canvases[2]
    qtbot.mouseClick(tile, Qt.MouseButton.LeftButton)
    assert panel.index_spin.value() == 2
    qtbot.waitUntil(lambda: panel.current_draw() is not None and panel.current_draw().index == 2, timeout=3000)
    assert np.array_equal(panel.current_patch().image, expected(state, 0, 2)[1].image)


def test_new_sample_button_and_shortcut(qtbot, panel):
    with qtbot.waitActive(panel):
        panel.show()
        panel.activateWindow()
    panel.new_button.click()
    assert panel.index_spin.value() == 1
    panel.index_spin.setFocus()
    qtbot.keyClick(panel.index_spin, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert panel.index_spin.value() == 2
    panel.index_spin.setValue(panel.index_spin.maximum())
    panel.new_button.click()  # the last patch of the only epoch wraps to the first
    assert (panel.epoch_spin.value(), panel.index_spin.value()) == (0, 0)


def test_patch_size_change_elsewhere_rerenders(qtbot, panel, state):
    panel.show()
    panel.refresh_now()
    state.update("data", object(), patch_size=48)
    qtbot.waitUntil(lambda: panel.current_patch().image.shape[:2] == (48, 48), timeout=3000)
    assert np.array_equal(panel.current_patch().image, expected(state, 0, 0)[1].image)


def test_training_seed_change_elsewhere_rerenders(qtbot, panel, state):
    state.update("augmentation", None, value=pipeline_of())
    panel.refresh_now()
    panel.show()
    names = set()
    for seed in range(6):  # different seeds shuffle the sample order differently
        state.update("training", object(), seed=seed)
        qtbot.waitUntil(lambda s=seed: np.array_equal(panel.current_patch().image, expected(state, 0, 0)[1].image),
                        timeout=3000)
        names.add(panel.current_sample().name)
    assert len(names) > 1


def test_mask_overlay_modes(panel):
    panel.refresh_now()
    panel.mask_mode_combo.setCurrentText("fill")
    fill = panel.augmented_canvas.layer("mask").copy()  # later draws reuse the layer's array
    panel.opacity_slider.setValue(90)
    stronger = panel.augmented_canvas.layer("mask")
    assert stronger[..., 3].max() > fill[..., 3].max()
    panel.mask_mode_combo.setCurrentText("off")
    assert panel.augmented_canvas.layer("mask") is None and panel.original_canvas.layer("mask") is None


def test_hint_without_dataset(qtbot, demo_folder):
    from app.core.experiment_data import load_experiment_data

    state = ExperimentState(tiny_config(demo_folder))
    widget = AugmentPanel(state)
    qtbot.addWidget(widget)
    widget.refresh_now()
    assert widget.preview_stack.currentIndex() == 0
    assert "dataset" in widget.hint_label.text().lower()
    assert widget.current_patch() is None
    widget.show()
    state.set_dataset(load_experiment_data(state.config))
    qtbot.waitUntil(lambda: widget.current_patch() is not None, timeout=3000)
    assert widget.preview_stack.currentIndex() == 1
    widget.shutdown()
    widget.shutdown()


def test_training_locks_the_editor(panel, state):
    state.set_training(True)
    assert not panel.rows_box.isEnabled() and not panel.controls.isEnabled()
    assert panel.new_button.isEnabled()
    state.set_training(False)
    assert panel.rows_box.isEnabled() and panel.controls.isEnabled()


def test_no_preview_without_training_samples(panel, state):
    """With every sample in val it previewed validation images as "training patches", which
    training (which then refused to start) never draws."""
    state.set_split([s.name for s in state.dataset.samples], "val")
    panel.refresh_now()
    assert panel.preview_stack.currentIndex() == 0 and panel.current_patch() is None
    assert "No training samples" in panel.hint_label.text() and "Dataset panel" in panel.hint_label.text()


def test_the_grid_ends_with_the_runs_last_draw(qtbot, panel, state):
    """Tiles went on into epochs the run never reaches, and clicking one showed another draw."""
    state.update("training", None, epochs=1)
    per_epoch = panel.index_spin.maximum() + 1
    panel.index_spin.setValue(per_epoch - 2)
    panel.refresh_now()
    keys = [tile.key for tile in panel.grid_canvases]
    assert keys[:2] == [(0, per_epoch - 2), (0, per_epoch - 1)] and keys[2:] == [None] * (len(keys) - 2)


def test_reset_to_default(panel, state):
    from app.core.augment import default_pipeline

    state.update("augmentation", None, value=pipeline_of({"name": "rotate"}))
    panel.reset_button.click()
    assert state.config.augmentation == default_pipeline().to_dict()
    assert [row.name for row in panel.transform_rows] == [t.name for t in default_pipeline().transforms]


# -- review fixes: big images are rendered off the GUI thread; nothing starts after shutdown -------
def test_masks_are_exact_overlays(panel, state):
    panel.refresh_now()
    sample, patch = panel.current_sample(), panel.current_patch()
    np.testing.assert_array_equal(panel.original_canvas.layer("mask"), mask_overlay(sample.mask, 0.45, "contour"))
    panel.mask_mode_combo.setCurrentText("both")
    panel.opacity_slider.setValue(70)
    np.testing.assert_array_equal(panel.original_canvas.layer("mask"), mask_overlay(sample.mask, 0.7, "both"))
    np.testing.assert_array_equal(panel.augmented_canvas.layer("mask"), mask_overlay(patch.mask, 0.7, "both"))


def test_source_display_is_cached(panel, state):
    state.update("augmentation", None, value=pipeline_of({"name": "gaussian_noise", "p": 1.0}))
    panel.refresh_now()
    source = panel._images.source
    assert source.sample is panel.current_sample() and panel.sources.get(source.sample) is source
    panel.seed_spin.setValue(3)  # new draws of the same source sample
    panel.refresh_now()
    assert panel._images.source is source  # not converted again
    np.testing.assert_array_equal(panel.original_canvas.image(), display_rgb(source.sample.image, None))
    state.set_dataset(state.dataset)  # a (re)loaded dataset: the cache starts over
    assert len(panel.sources) == 0


def test_large_render_runs_in_background(qtbot, panel, state, monkeypatch):
    monkeypatch.setattr(ap, "SYNC_RENDER_PIXELS", 0)  # every image counts as big
    state.update("augmentation", None, value=pipeline_of(
        {"name": "rotate", "p": 1.0, "params": {"max_angle": 45.0, "border": "constant"}}))
    panel.refresh_now()  # refresh_now renders at once, whatever the size
    assert panel.augmented_canvas.image().shape[:2] == (32, 32)
    panel.whole_box.setChecked(True)
    assert panel.render_runner.busy and panel.augmented_canvas.image().shape[:2] == (32, 32)  # not yet
    qtbot.waitUntil(lambda: not panel.render_runner.busy and panel._images.whole, timeout=5000)
    whole = panel.current_patch()
    assert whole.image.shape[:2] == (64, 64)
    np.testing.assert_array_equal(panel.augmented_canvas.image(), display_rgb(whole.image, None))
    np.testing.assert_array_equal(panel.augmented_canvas.layer("padding"), padding_overlay(whole.valid))
    assert all(tile.rendered().shape == (64, 64, 3) for tile in panel.grid_canvases)
    panel.opacity_slider.setValue(90)  # only the mask layers: no new render
    assert not panel.render_runner.busy
    np.testing.assert_array_equal(panel.augmented_canvas.layer("mask"), mask_overlay(whole.mask, 0.9, "contour"))


def test_background_refresh_brings_rendered_images(qtbot, panel, state, monkeypatch):
    monkeypatch.setattr(ap, "SYNC_RENDER_PIXELS", 0)
    panel.show()
    panel.index_spin.setValue(4)
    qtbot.waitUntil(lambda: panel._images is not None and panel.current_draw().index == 4, timeout=5000)
    sample, patch = expected(state, 0, 4)
    np.testing.assert_array_equal(panel.augmented_canvas.image(), display_rgb(patch.image, None))
    np.testing.assert_array_equal(panel.original_canvas.image(), display_rgb(sample.image, None))


def test_no_background_work_after_shutdown(panel, state):
    panel.refresh_now()
    draws = panel._draws
    panel.shutdown()
    started = []
    for runner in (panel.runner, panel.render_runner):
        runner.start = lambda *args, r=runner, **kwargs: started.append(r.name)
    panel.show()
    panel.index_spin.setValue(3)
    state.update("augmentation", object(), value=pipeline_of({"name": "flip", "p": 1.0}))
    panel.whole_box.setChecked(True)
    panel._start_background()  # even a timer that fired just before shutdown
    panel.refresh_now()
    assert started == [] and not panel._timer.isActive() and panel._draws is draws


def test_the_fields_of_every_transform_start_in_one_column(qtbot, panel):
    from PySide6.QtCore import QPoint

    panel.resize(1200, 900)
    panel.show()
    qtbot.waitExposed(panel)

    def lefts():
        """Where each row's probability slider and parameter editors start, from the row's edge."""
        out = set()
        for row in panel.transform_rows:
            out.add(row.p_slider.mapTo(row, QPoint(0, 0)).x())
            for param in row.form.params():
                editor = row.form.editor(param.name)
                widget = editor[0].parentWidget() if isinstance(editor, tuple) else editor
                out.add(widget.mapTo(row, QPoint(0, 0)).x())
        return out

    assert len(panel.transform_rows) >= 3 and any(row.form.params() for row in panel.transform_rows)
    qtbot.waitUntil(lambda: len(lefts()) == 1, timeout=2000)
    count = len(panel.transform_rows)
    assert panel.add_transform("rotate") and len(panel.transform_rows) == count + 1  # rows rebuilt
    qtbot.waitUntil(lambda: len(lefts()) == 1, timeout=2000)
