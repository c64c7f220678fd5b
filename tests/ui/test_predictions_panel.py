"""The Predictions panel: checkpoint loading, cached predictions, watershed re-runs, metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.imageio import write_image
from app.core.postprocess import WatershedParams, watershed_postprocess
from app.ui.predictions_panel import PredictionsPanel, step_rgb
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


def test_without_model_shows_first_val_image_and_says_so(panel, state):
    first_val = state.dataset.split("val")[0].name
    assert panel.image_combo.currentData() == first_val
    assert panel.image_combo.currentText() == f"{first_val} (val)"
    assert [panel.image_combo.itemText(i).endswith("(val)") for i in range(2)] == [True, True]
    assert panel.before_canvas.image() is not None
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
    panel.opacity_slider.setValue(0)
    assert not panel.before_canvas.layer("prediction")[..., 3].any()
    panel.opacity_slider.setValue(100)
    fill = panel.before_canvas.layer("prediction")[..., 3]
    assert np.array_equal(fill == 255, labels > 0)


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
    expected = np.mean((prediction.labels > 0) == (sample.mask > 0))
    assert metrics["before"]["pixel_accuracy"] == pytest.approx(expected)
    assert metrics["after"]["objects"] == panel.current_result().object_count
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
    assert np.array_equal(panel.after_canvas.image(), step_rgb(panel.current_result().step("markers")))
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
    assert set(metrics["before"]) == {"objects"} and set(metrics["after"]) == {"objects"}
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
    panel.errors_check.setChecked(True)
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
