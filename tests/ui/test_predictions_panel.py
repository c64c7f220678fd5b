"""The Predictions panel: checkpoint loading, cached predictions, watershed re-runs, metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.imageio import write_image
from app.core.postprocess import WatershedParams, watershed_postprocess
import app.ui.image_view as image_view
import app.ui.predictions_panel as predictions_module
from app.ui.predictions_panel import CachedPrediction, PredictionsPanel, step_rgb, step_thumbnail
from app.ui.render import FALSE_NEGATIVE, FALSE_POSITIVE

from .conftest import tiny_config

WAIT = 30000
UNIT_METRICS = ("pixel_accuracy", "iou", "dice", "adapted_rand_error")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, demo_folder):
    """A real training run of the tiny experiment (best.pt and last.pt); five short epochs so the
    model already predicts some foreground (about a second)."""
    from app.core.training.engine import Trainer

    config = tiny_config(demo_folder)
    config.training.epochs = 5
    folder = tmp_path_factory.mktemp("predictions") / "run"
    Trainer(config, folder).run()
    assert (folder / "checkpoints" / "best.pt").is_file()
    return folder


@pytest.fixture
def checkpoint(run_dir):
    return run_dir / "checkpoints" / "best.pt"


@pytest.fixture
def panel(qtbot, state):
    widget = PredictionsPanel(state)
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    yield widget
    widget.shutdown()


def load(qtbot, panel, path) -> None:
    with qtbot.waitSignal(panel.predictionReady, timeout=WAIT):
        panel.open_checkpoint(path)


def set_param(qtbot, panel, name, value) -> None:
    with qtbot.waitSignal(panel.postprocessed, timeout=WAIT):
        panel.params_form.editor(name).setValue(value)


def test_without_model_shows_first_val_image_and_says_so(qtbot, panel, state):
    first_val = state.dataset.split("val")[0].name
    assert panel.image_combo.currentData() == first_val
    assert panel.image_combo.currentText() == f"{first_val} (val)"
    assert [panel.image_combo.itemText(i).endswith("(val)") for i in range(2)] == [True, True]
    qtbot.waitUntil(lambda: panel.before_canvas.image() is not None, timeout=WAIT)
    assert panel.after_canvas.image() is panel.before_canvas.image()  # one display array, shared
    assert panel.before_canvas.layer("truth") is not None
    assert panel.before_canvas.layer("prediction") is None
    assert "No model" in panel.status_label.text()
    assert panel.metrics() == {}


def test_open_checkpoint_predicts_first_val_image(qtbot, panel, state, checkpoint):
    with qtbot.waitSignal(panel.predictorLoaded, timeout=WAIT) as loaded, \
            qtbot.waitSignal(panel.predictionReady, timeout=WAIT) as ready:
        panel.open_checkpoint(checkpoint)
    assert loaded.args == [str(checkpoint)]
    assert ready.args == [state.dataset.split("val")[0].name]
    assert panel.network_passes == 1
    assert "unet" in panel.checkpoint_label.text() and "best.pt" in panel.checkpoint_label.text()
    for canvas in (panel.before_canvas, panel.after_canvas):
        assert canvas.image().shape == (64, 64, 3)
        assert canvas.layer("prediction") is not None
        assert canvas.layer("truth") is not None
    assert panel.banner.isHidden()
    labels = panel.current_prediction().labels
    assert labels.any() and not labels.all()
    fill = panel.before_canvas.layer("prediction")[..., 3]
    assert np.array_equal(fill == 255, labels > 0)  # layers at full alpha; the item sets the opacity
    panel.opacity_slider.setValue(0)
    assert panel.overlay_opacity(panel.before_canvas) == 0.0
    panel.opacity_slider.setValue(100)
    assert panel.overlay_opacity(panel.before_canvas) == 1.0


def test_metrics_match_an_independent_computation(qtbot, panel, state, checkpoint):
    from app.core.predictor import Predictor

    load(qtbot, panel, checkpoint)
    metrics = panel.metrics()
    assert set(metrics) == {"before", "after"}
    for side in ("before", "after"):
        for key in UNIT_METRICS:
            assert 0.0 <= metrics[side][key] <= 1.0
        assert metrics[side]["objects"] >= 0
    sample = state.dataset.split("val")[0]
    prediction = Predictor.from_checkpoint(checkpoint, "cpu").predict(sample.image)
    assert np.array_equal(panel.current_prediction().labels, prediction.labels)  # argmax of float32
    assert np.allclose(panel.current_prediction().probabilities, prediction.probabilities, atol=1e-5)
    predicted, truth = prediction.labels > 0, sample.mask > 0
    assert metrics["before"]["pixel_accuracy"] == pytest.approx(np.mean(predicted == truth))
    both, either = np.sum(predicted & truth), np.sum(predicted | truth)
    assert metrics["before"]["iou"] == pytest.approx(both / either)
    assert metrics["before"]["dice"] == pytest.approx(2 * both / (predicted.sum() + truth.sum()))
    cleaned = panel.current_result()
    after = cleaned.mask > 0
    assert metrics["after"]["iou"] == pytest.approx(np.sum(after & truth) / np.sum(after | truth))
    assert metrics["after"]["objects"] == cleaned.object_count == len(np.unique(cleaned.labels)) - 1
    assert panel.metrics_table.item(0, 0).text() == f"{metrics['before']['pixel_accuracy']:.3f}"
    assert panel.metrics_table.item(4, 1).text() == str(int(metrics["after"]["objects"]))
    assert not any(panel.metrics_table.isRowHidden(row) for row in range(5))


def test_param_change_reruns_only_postprocessing(qtbot, panel, state, checkpoint):
    load(qtbot, panel, checkpoint)
    passes = panel.network_passes
    set_param(qtbot, panel, "threshold", 0.99)
    assert panel.metrics()["after"]["objects"] == 0
    set_param(qtbot, panel, "threshold", 0.01)
    assert panel.metrics()["after"]["objects"] >= 1
    set_param(qtbot, panel, "foreground_fraction", 0.3)
    assert panel.network_passes == passes
    expected = watershed_postprocess(panel.current_prediction().probabilities[1],
                                     WatershedParams(threshold=0.01, foreground_fraction=0.3))
    assert np.array_equal(panel.current_result().labels, expected.labels)
    assert state.config.postprocess["foreground_fraction"] == pytest.approx(0.3)
    assert state.config.postprocess["threshold"] == pytest.approx(0.01)
    assert panel.params().foreground_fraction == pytest.approx(0.3)
    assert panel.after_canvas.layer("prediction")[..., 3].any()


def test_steps_strip_has_one_thumbnail_per_step(qtbot, panel, checkpoint):
    load(qtbot, panel, checkpoint)
    names = [name for name, _ in panel.current_result().steps]
    assert [button.text() for button in panel.step_buttons] == names
    assert all(not button.icon().isNull() for button in panel.step_buttons)
    set_param(qtbot, panel, "threshold", 0.01)
    set_param(qtbot, panel, "min_object_size", 1)
    names = [name for name, _ in panel.current_result().steps]
    assert "small objects removed" in names
    assert [button.text() for button in panel.step_buttons] == names
    panel.step_buttons[names.index("markers")].click()
    expected = step_rgb(panel.current_result().step("markers"))
    qtbot.waitUntil(lambda: np.array_equal(panel.after_canvas.image(), expected), timeout=WAIT)
    assert panel.after_canvas.layer("prediction") is None
    panel.step_buttons[names.index("markers")].click()
    assert panel.after_canvas.layer("prediction") is not None


def test_switching_images_uses_the_cache(qtbot, panel, state, checkpoint):
    load(qtbot, panel, checkpoint)
    first, second = (s.name for s in state.dataset.split("val"))
    with qtbot.waitSignal(panel.predictionReady, timeout=WAIT) as ready:
        panel.image_combo.setCurrentIndex(1)
        assert panel.before_canvas.layer("prediction") is None  # no stale overlay while predicting
        assert panel.metrics() == {} and panel.step_buttons == []
    assert ready.args == [second] and panel.network_passes == 2
    second_result = panel.current_result()
    with qtbot.waitSignal(panel.predictionReady, timeout=WAIT) as ready:
        panel.select_image(first)
    assert ready.args == [first] and panel.network_passes == 2
    with qtbot.waitSignal(panel.predictionReady, timeout=WAIT):
        panel.select_image(second)
    assert panel.network_passes == 2
    assert panel.current_result() is second_result


def test_bad_checkpoints_show_banner_and_keep_predictor(qtbot, panel, checkpoint, tmp_path):
    import torch

    load(qtbot, panel, checkpoint)
    previous = panel.predictor
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    for bad in (garbage, foreign, tmp_path / "missing.pt"):
        with qtbot.waitSignal(panel.failed, timeout=WAIT) as failed:
            panel.open_checkpoint(bad)
        assert bad.name in failed.args[0]
        assert not panel.banner.isHidden() and bad.name in panel.banner.text()
        assert panel.predictor is previous
    set_param(qtbot, panel, "foreground_fraction", 0.5)  # still usable
    assert "best.pt" in panel.checkpoint_label.text()


def test_set_run_loads_best_checkpoint(qtbot, panel, state, run_dir):
    with qtbot.waitSignal(panel.predictorLoaded, timeout=WAIT) as loaded:
        state.set_run(run_dir)
    assert loaded.args == [str(run_dir / "checkpoints" / "best.pt")]
    qtbot.waitUntil(lambda: panel.metrics() != {}, timeout=WAIT)
    with qtbot.assertNotEmitted(panel.predictorLoaded, wait=300):  # the same file is not loaded again
        state.set_run(run_dir)
        state.set_training(True)
        state.set_training(False)


def test_run_without_checkpoint_shows_banner_unless_training(qtbot, panel, state, tmp_path):
    state.set_training(True)
    state.set_run(tmp_path / "fresh-run")
    assert panel.banner.isHidden() and "Waiting" in panel.status_label.text()
    with qtbot.waitSignal(panel.failed, timeout=WAIT) as failed:
        state.set_training(False)
    assert "fresh-run" in failed.args[0] and not panel.banner.isHidden()


def test_unavailable_device_falls_back_to_cpu(qtbot, panel, state, checkpoint):
    state.config.training.device = "cuda:7"
    load(qtbot, panel, checkpoint)
    assert str(panel.predictor.device) == "cpu"
    assert "cuda:7" in panel.status_label.text()


def test_open_image_without_ground_truth(qtbot, panel, state, checkpoint, tmp_path):
    load(qtbot, panel, checkpoint)
    path = tmp_path / "extra.png"
    write_image(path, state.dataset.samples[0].image[:, :, 0])
    with qtbot.waitSignal(panel.predictionReady, timeout=WAIT) as ready:
        panel.open_image(path)
    assert ready.args == [str(path)]
    assert panel.image_combo.currentText() == "extra.png (file)"
    metrics = panel.metrics()
    assert set(metrics["before"]) == {"objects", "foreground"} and set(metrics["after"]) == {"objects", "foreground"}
    assert panel.metrics_table.isRowHidden(0) and not panel.metrics_table.isRowHidden(4)
    assert panel.before_canvas.layer("truth") is None
    assert panel.network_passes == 2


def test_open_image_failure_shows_banner(qtbot, panel, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with qtbot.waitSignal(panel.failed, timeout=WAIT) as failed:
        panel.open_image(broken)
    assert "broken.png" in failed.args[0] and not panel.banner.isHidden()


def test_config_change_elsewhere_updates_form_and_result(qtbot, panel, state, checkpoint):
    load(qtbot, panel, checkpoint)
    passes = panel.network_passes
    with qtbot.waitSignal(panel.postprocessed, timeout=WAIT):
        state.update("postprocess", None, value={"threshold": 0.01, "close_iterations": 0})
    assert panel.params_form.values()["threshold"] == pytest.approx(0.01)
    assert panel.params_form.values()["close_iterations"] == 0
    assert panel.metrics()["after"]["objects"] >= 1
    assert panel.network_passes == passes
    with qtbot.waitSignal(panel.postprocessed, timeout=WAIT):
        panel.reset_button.click()
    assert panel.params() == WatershedParams()
    assert state.config.postprocess == WatershedParams().to_dict()


def test_error_map_replaces_prediction_fill(qtbot, panel, state, checkpoint):
    load(qtbot, panel, checkpoint)
    set_param(qtbot, panel, "threshold", 0.01)
    panel.errors_check.setChecked(True)  # the error layers are drawn in the background
    qtbot.waitUntil(lambda: panel.after_canvas.layer("prediction") is not None, timeout=WAIT)
    layer = panel.after_canvas.layer("prediction")
    shown = layer[layer[..., 3] > 0][:, :3]
    assert len(shown) > 0
    allowed = {tuple(FALSE_POSITIVE), tuple(FALSE_NEGATIVE)}
    assert {tuple(int(v) for v in rgb) for rgb in shown} <= allowed
    truth = state.dataset.split("val")[0].mask > 0
    errors = (panel.current_result().mask > 0) != truth
    assert np.array_equal(layer[..., 3] > 0, errors)
    assert "false positive" in panel.legend.text()
    panel.truth_check.setChecked(False)
    assert panel.before_canvas.layer("truth") is None


def test_module_import_and_construction_do_not_load_torch():
    code = ("import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]);"
            "from app.ui.state import ExperimentState; from app.ui.predictions_panel import PredictionsPanel;"
            "p = PredictionsPanel(ExperimentState()); p.shutdown(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2], env={"QT_QPA_PLATFORM": "offscreen",
                                                                        "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_invalid_postprocess_settings_fall_back_to_defaults(qtbot, state):
    state.config.postprocess = {"bogus": 1}
    widget = PredictionsPanel(state)
    qtbot.addWidget(widget)
    assert not widget.banner.isHidden() and "bogus" in widget.banner.text()
    assert widget.params() == WatershedParams()
    assert widget.params_form.values() == WatershedParams().to_dict()
    widget.shutdown()


# -- GUI-thread cost, memory, duplicate loads, shutdown -----------------------------------------
def counting(monkeypatch, module, name: str) -> list:
    """Replace ``module.name`` by a wrapper that records each call; returns the record."""
    calls, original = [], getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_opacity_and_truth_toggle_rebuild_no_array(qtbot, panel, checkpoint, monkeypatch):
    load(qtbot, panel, checkpoint)
    calls = [counting(monkeypatch, predictions_module, name) for name in
             ("mask_overlay", "error_overlay", "contour_of", "to_display", "step_rgb")]
    layers = {name: panel.after_canvas.layer(name) for name in ("prediction", "outline")}
    assert layers["outline"] is not None and layers["outline"][..., 3].any()  # objects coloured: outlines
    for value in (0, 13, 50, 77, 100, 45):
        panel.opacity_slider.setValue(value)
        assert panel.overlay_opacity(panel.before_canvas) == pytest.approx(value / 100)
        assert panel.overlay_opacity(panel.after_canvas) == pytest.approx(value / 100)
        assert panel.overlay_opacity(panel.after_canvas, "outline") == pytest.approx(max(value / 100, 0.9))
    panel.truth_check.setChecked(False)
    assert panel.after_canvas.layer("truth") is None
    panel.truth_check.setChecked(True)
    assert panel.after_canvas.layer("truth") is not None
    assert all(not record for record in calls)
    assert all(panel.after_canvas.layer(name) is layer for name, layer in layers.items())
    panel.objects_check.setChecked(False)  # other overlays: built once, in the background
    qtbot.waitUntil(lambda: panel.after_canvas.layer("prediction") is not None, timeout=WAIT)
    assert panel.after_canvas.layer("outline") is None
    assert len(calls[0]) == 2 and not calls[1]
    assert np.array_equal(panel.after_canvas.layer("prediction")[..., 3] > 0, panel.current_result().mask > 0)


def test_display_is_computed_once_per_image_off_the_gui_thread(qtbot, state, checkpoint, monkeypatch):
    displays = counting(monkeypatch, predictions_module, "to_display")
    canvas_conversions = counting(monkeypatch, image_view, "to_display")
    widget = PredictionsPanel(state)
    qtbot.addWidget(widget)
    first, second = (s.name for s in state.dataset.split("val"))
    qtbot.waitUntil(lambda: widget.before_canvas.image() is not None, timeout=WAIT)
    assert len(displays) == 1
    load(qtbot, widget, checkpoint)
    with qtbot.waitSignal(widget.predictionReady, timeout=WAIT):
        widget.select_image(second)
    assert len(displays) == 2
    with qtbot.waitSignal(widget.predictionReady, timeout=WAIT):
        widget.select_image(first)  # cached: nothing recomputed
    assert len(displays) == 2 and widget.network_passes == 2
    assert widget.before_canvas.image() is widget.after_canvas.image()
    assert canvas_conversions == []  # the views get ready RGB
    widget.shutdown()


def test_thumbnails_are_drawn_from_small_arrays():
    labels = np.zeros((1000, 600), np.int32)
    labels[100:500, 50:300] = 3
    small = step_thumbnail(labels)
    assert max(small.shape[:2]) <= 128 and small.shape[2] == 3
    assert np.array_equal(small, step_rgb(labels[::8, ::8]))
    assert step_thumbnail(np.ones((40, 30), np.uint8)).shape == (40, 30, 3)


def test_cached_prediction_keeps_what_the_clean_up_needs_exactly():
    from app.core.predictor import Prediction

    rng = np.random.default_rng(1)
    binary = rng.random((2, 20, 30)).astype(np.float32)
    binary[0] = 1 - binary[1]
    cached = CachedPrediction.of(Prediction(binary, binary.argmax(0).astype(np.uint8)))
    assert cached.foreground.dtype == np.float32 and cached.probabilities16 is None
    assert cached.nbytes == 20 * 30 * 5  # float32 foreground + uint8 labels
    assert np.array_equal(cached.cleanup_source(), binary[1])
    assert np.allclose(cached.expanded().probabilities, binary, atol=1e-6)
    three = rng.random((3, 20, 30)).astype(np.float32)
    labels = three.argmax(0).astype(np.uint8)
    cached = CachedPrediction.of(Prediction(three, labels))
    assert cached.probabilities16.dtype == np.float16 and cached.foreground is None
    assert np.array_equal(cached.cleanup_source(), labels > 0) and cached.expanded().labels is labels
    assert np.allclose(cached.expanded().probabilities, three, atol=1e-3)


def test_cache_keeps_full_steps_only_for_the_image_shown(qtbot, panel, state, checkpoint):
    load(qtbot, panel, checkpoint)
    first, second = (s.name for s in state.dataset.split("val"))
    first_result = panel.current_result()
    assert first_result.steps
    with qtbot.waitSignal(panel.predictionReady, timeout=WAIT):
        panel.select_image(second)
    assert first_result.steps == [] and panel.current_result().steps
    with qtbot.waitSignal(panel.predictionReady, timeout=WAIT):
        panel.select_image(first)
    assert panel.current_result() is first_result and panel.network_passes == 2
    assert [b.text() for b in panel.step_buttons]  # thumbnails at once; full steps come back in the background
    qtbot.waitUntil(lambda: bool(first_result.steps), timeout=WAIT)
    expected = watershed_postprocess(panel.current_prediction().probabilities[1], panel.params())
    assert [name for name, _ in first_result.steps] == [name for name, _ in expected.steps]


def test_cache_is_bounded_by_bytes(qtbot, panel, state, checkpoint, monkeypatch):
    load(qtbot, panel, checkpoint)
    one_entry = panel._current_entry().nbytes
    monkeypatch.setattr(predictions_module, "CACHE_BYTES", one_entry + 1)
    first, second = (s.name for s in state.dataset.split("val"))
    with qtbot.waitSignal(panel.predictionReady, timeout=WAIT):
        panel.select_image(second)
    assert [key[1] for key in panel._cache] == [second]  # the current image is never dropped
    with qtbot.waitSignal(panel.predictionReady, timeout=WAIT):
        panel.select_image(first)
    assert panel.network_passes == 3  # it had been dropped


def test_new_checkpoint_drops_the_old_ones_predictions(qtbot, panel, state, run_dir):
    load(qtbot, panel, run_dir / "checkpoints" / "best.pt")
    with qtbot.waitSignal(panel.predictionReady, timeout=WAIT):
        panel.select_image(state.dataset.split("val")[1].name)
    assert len(panel._cache) == 2
    load(qtbot, panel, run_dir / "checkpoints" / "last.pt")
    assert [key[0][0] for key in panel._cache] == [str(run_dir / "checkpoints" / "last.pt")]


def test_opened_files_are_capped(qtbot, panel, state, tmp_path, monkeypatch):
    monkeypatch.setattr(predictions_module, "FILES_LIMIT", 2)
    paths = [tmp_path / f"extra{i}.png" for i in range(3)]
    for path in paths:
        write_image(path, state.dataset.samples[0].image[:, :, 0])
        panel.open_image(path)
        qtbot.waitUntil(lambda: panel.current_key == f"file:{path}", timeout=WAIT)
    files = [panel.image_combo.itemText(i) for i in range(panel.image_combo.count())
             if panel.image_combo.itemText(i).endswith("(file)")]
    assert files == ["extra1.png (file)", "extra2.png (file)"]
    assert list(panel._files) == [f"file:{p}" for p in paths[1:]]


def test_end_of_training_loads_the_checkpoint_once(qtbot, panel, state, run_dir, monkeypatch):
    loads = counting(monkeypatch, predictions_module, "load_predictor")
    state.set_training(True)
    with qtbot.waitSignal(panel.predictorLoaded, timeout=WAIT):
        state.set_run(run_dir)  # the run's checkpoint, while training...
        state.set_training(False)  # ...and again at its end, before the first load is over
    qtbot.wait(200)
    assert loads == ["load_predictor"]
    state.set_training(True)
    state.set_training(False)
    assert not panel._load_runner.busy and loads == ["load_predictor"]


def test_nothing_starts_after_shutdown(qtbot, panel, state, run_dir, tmp_path, monkeypatch):
    started = []
    panel.shutdown()
    for runner in panel._runners():
        monkeypatch.setattr(runner, "start", lambda *args, **kwargs: started.append(args))
    state.set_run(run_dir)
    state.set_training(True)
    state.set_training(False)
    panel.open_checkpoint(run_dir / "checkpoints" / "best.pt")
    panel.open_image(tmp_path / "any.png")
    state.update("postprocess", None, value={"threshold": 0.2})
    state.set_dataset(state.dataset)
    panel.opacity_slider.setValue(10)
    panel.errors_check.setChecked(True)
    assert started == []
    panel.shutdown()


def test_start_refused_by_the_runner_is_tolerated(qtbot, panel, checkpoint, monkeypatch):
    monkeypatch.setattr(panel._load_runner, "start", lambda *args, **kwargs: None)
    panel.open_checkpoint(checkpoint)
    assert panel._loading is None and panel.predictor is None


def test_status_says_predictions_share_the_device_while_training(qtbot, panel, state, checkpoint):
    load(qtbot, panel, checkpoint)
    assert "share" not in panel.status_label.text()
    state.set_training(True)
    assert "share the device" in panel.status_label.text()
    state.set_training(False)
    assert "share" not in panel.status_label.text()


def test_a_clean_up_that_drops_most_of_the_foreground_is_flagged(qtbot, panel, checkpoint):
    from app.ui.prediction_layout import cleanup_kept

    assert cleanup_kept({"before": {"foreground": 0.4}, "after": {"foreground": 0.1}}) == 0.25
    assert cleanup_kept({"before": {"foreground": 0.4}, "after": {"foreground": 0.3}}) is None
    assert cleanup_kept({"before": {"foreground": 0.0}, "after": {"foreground": 0.0}}) is None
    load(qtbot, panel, checkpoint)
    shown = []
    for fraction in (0.05, 0.99):
        set_param(qtbot, panel, "foreground_fraction", fraction)
        metrics = panel.metrics()
        kept = metrics["after"]["foreground"] / metrics["before"]["foreground"]
        shown.append((round(kept, 3), not panel.cleanup_warning.isHidden()))
        assert shown[-1][1] == (kept < 0.5), shown
        if kept < 0.5:
            assert f"kept {kept:.0%} of the predicted foreground" in panel.cleanup_warning.text()
            assert "lower the foreground fraction" in panel.cleanup_warning.text() and "dilate" not in panel.cleanup_warning.text()
    assert [flagged for _, flagged in shown] == [False, True], shown  # seeds at 99 % of the top distance: few
