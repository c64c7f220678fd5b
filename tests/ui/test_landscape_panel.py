"""The Loss landscape panel: computing around a really trained checkpoint, cancelling, snapshots
through training, loss versus prediction, saving and opening, and the messages it gives."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from app.core.imageio import read_image
from app.ui.landscape_jobs import check_loss_spec
from app.ui.landscape_panel import LandscapePanel
from app.ui.landscape_plots import fmt

from .conftest import tiny_config

WAIT = 60000
LOSSES = "dice,bce,tversky:alpha=0.7"


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, demo_folder):
    """A real (two-epoch) training run of the tiny experiment: best.pt and last.pt."""
    from app.core.training.engine import Trainer

    config = tiny_config(demo_folder)
    config.training.epochs = 2
    folder = tmp_path_factory.mktemp("landscape") / "run"
    Trainer(config, folder).run()
    assert (folder / "checkpoints" / "best.pt").is_file()
    return folder


@pytest.fixture(scope="session")
def snapshot_run(tmp_path_factory, trained_run):
    """A run folder with the trained checkpoint and two stored 1-D slices: epoch 1 of freshly
    initialised weights, epoch 2 of the trained ones (as the engine stores them)."""
    import torch

    from app.core.landscape import build_losses, fixed_batch, save_snapshot, snapshot_slice
    from app.core.models import build_model
    from app.core.predictor import Predictor

    folder = tmp_path_factory.mktemp("snapshots") / "run"
    (folder / "checkpoints").mkdir(parents=True)
    shutil.copy(trained_run / "checkpoints" / "best.pt", folder / "checkpoints" / "best.pt")
    predictor = Predictor.from_checkpoint(folder / "checkpoints" / "best.pt", "cpu")
    config = predictor.config
    batch = fixed_batch(config, count=2, patch=32, normaliser=predictor.normaliser)
    losses = build_losses("dice,bce", config)
    torch.manual_seed(0)
    fresh = build_model(config.model.name, 1, 2, **config.model.params)
    save_snapshot(folder, 1, snapshot_slice(fresh, batch, losses, steps=5, seed=0))
    save_snapshot(folder, 2, snapshot_slice(predictor.model, batch, losses, steps=5, seed=0))
    return folder


@pytest.fixture
def panel(qtbot, state):
    widget = LandscapePanel(state)
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    yield widget
    widget.shutdown()


def set_grid(panel, steps: int, images: int = 2, dims: int = 2, span: float = 0.5) -> None:
    panel.steps_spin.setValue(steps)
    panel.images_spin.setValue(images)
    panel.patch_spin.setValue(32)
    panel.span_spin.setValue(span)
    panel.dims_combo.setCurrentIndex(panel.dims_combo.findData(dims))


def list_item(panel, name: str):
    return panel.loss_list.findItems(name, Qt.MatchFlag.MatchExactly)[0]


def checked(panel) -> list[str]:
    items = (panel.loss_list.item(i) for i in range(panel.loss_list.count()))
    return sorted(item.text() for item in items if item.checkState() == Qt.CheckState.Checked)


def compute(qtbot, panel):
    with qtbot.waitSignal(panel.computed, timeout=WAIT) as done:
        assert panel.compute_button.isEnabled()
        panel.compute_button.click()
    return done.args[0]


def losses_at_checkpoint(checkpoint: Path, spec: str) -> list[float]:
    """Every loss of the unchanged checkpoint on the panel's batch (2 validation images, 32 px)."""
    import torch

    from app.core.landscape import build_losses, fixed_batch
    from app.core.predictor import Predictor

    predictor = Predictor.from_checkpoint(checkpoint, "cpu")
    batch = fixed_batch(predictor.config, count=2, patch=32, seed=0, normaliser=predictor.normaliser)
    losses = build_losses(spec, predictor.config, predictor.num_classes)
    with torch.no_grad():
        logits = predictor.model(batch.images)
    return [float(loss(logits, batch.targets, batch.weights)) for loss in losses.values()]


def test_follows_the_window_run_and_computes_a_2d_landscape_per_loss(qtbot, panel, state, trained_run):
    checkpoint = trained_run / "checkpoints" / "best.pt"
    assert not panel.compute_button.isEnabled()  # no run selected yet
    state.set_run(trained_run)
    assert panel.checkpoint == checkpoint and "best.pt" in panel.checkpoint_label.text()
    panel.set_losses(LOSSES)
    assert checked(panel) == ["bce", "dice", "tversky"]
    set_grid(panel, 5)
    assert panel.points_label.text().startswith("5 × 5 = 25 points")
    result = compute(qtbot, panel)
    assert result.losses == ["dice", "bce", "tversky:alpha=0.7"] and result.values.shape == (3, 5, 5)
    assert panel.shown_result is result and panel.progress.value() == 25
    assert np.isfinite(result.values).all()
    expected = losses_at_checkpoint(checkpoint, LOSSES)
    np.testing.assert_allclose(result.centre, expected, rtol=1e-4)  # the centre is the checkpoint's loss
    np.testing.assert_allclose(result.values[:, 2, 2], expected, rtol=1e-4)
    assert len(panel.plots.rows) == 3
    for k, row in enumerate(panel.plots.rows):
        x, y = row.curve.getData()
        assert row.name == result.losses[k]
        np.testing.assert_array_equal(x, result.axes[0])
        np.testing.assert_array_equal(y, result.curve(k))
        np.testing.assert_array_equal(row.grid, result.values[k])
        assert row.centre == result.centre[k]
        assert list(row.centre_marker.getData()[1]) == [result.centre[k]]
        image = row.image.image
        assert image is not None and image.shape[0] >= 5 and np.isfinite(image).all()
        curve_title, map_title = row.titles()
        assert row.name in curve_title and f"{result.centre[k]:.4g}" in curve_title
        assert f"min {np.min(result.curve(k)):.4g}" in curve_title
        assert row.name in map_title and f"min {np.min(result.values[k]):.4g}" in map_title
    assert "5 × 5 grid" in panel.source_label.text() and panel.save_button.isEnabled()
    panel.show()  # hovering a map reads out the nearest grid value
    row = panel.plots.rows[1]
    qtbot.waitUntil(lambda: row.map_plot.vb.width() > 10, timeout=WAIT)
    panel.plots._on_mouse((row.map_plot.vb.mapViewToScene(QPointF(0.26, -0.01)),))
    assert panel.plots.readout.text() == f"bce at (a, b) = (0.25, 0): {fmt(result.values[1, 3, 2])}"


def test_cancel_stops_a_running_computation(qtbot, panel, trained_run):
    panel.set_checkpoint(trained_run / "checkpoints" / "best.pt")
    panel.set_losses("bce")
    set_grid(panel, 201, images=1)  # 40401 points: far more than the test waits for
    with qtbot.assertNotEmitted(panel.computed), qtbot.waitSignal(panel.cancelled, timeout=WAIT):
        panel.compute_button.click()
        qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=WAIT)
        assert panel.cancel_button.isEnabled() and not panel.compute_button.isEnabled()
        panel.cancel_button.click()
    assert not panel.busy and panel.progress.value() < 201 * 201
    assert "Cancelled" in panel.banner.text() and not panel.banner.isHidden()
    assert panel.compute_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert panel.shown_result is None  # nothing half-computed is shown


def test_snapshot_slider_steps_through_the_stored_slices(qtbot, panel, state, snapshot_run):
    with qtbot.waitSignal(panel.snapshotsLoaded, timeout=WAIT) as loaded:
        state.set_run(snapshot_run)
    assert loaded.args == [2]
    slider = panel.snapshot_box.slider
    assert slider.isEnabled() and (slider.minimum(), slider.maximum(), slider.value()) == (0, 1, 1)
    assert panel.view_combo.currentData() == "snapshots"
    assert panel.snapshot_box.epoch_label.text().startswith("Epoch 2")
    epochs = [epoch for epoch, _ in panel.snapshots]
    assert epochs == [1, 2]
    last = panel.snapshots[1][1]
    assert panel.shown_result is last
    shown_last = [row.curve.getData()[1].copy() for row in panel.plots.rows]
    np.testing.assert_array_equal(shown_last[1], last.curve("bce"))
    with qtbot.waitSignal(panel.resultShown, timeout=WAIT) as shown:
        slider.setValue(0)
    assert shown.args == ["snapshot"] and panel.snapshot_box.epoch_label.text().startswith("Epoch 1")
    first = panel.snapshots[0][1]
    assert panel.shown_result is first
    for k, row in enumerate(panel.plots.rows):
        y = row.curve.getData()[1]
        np.testing.assert_array_equal(y, first.curve(k))
        assert not np.array_equal(y, shown_last[k])  # the plot really changed
    # one scale for every epoch: the curve range covers both epochs' values
    low, high = row.curve_plot.viewRange()[1]
    both = np.concatenate([first.values[1], last.values[1]])
    assert low <= both.min() and high >= both.max()
    assert all(r.map_plot is None for r in panel.plots.rows)  # stored slices are 1-D


def test_loss_versus_prediction_curves_for_each_loss(qtbot, panel):
    view = panel.prediction_view
    panel.set_losses("bce,dice,focal")
    with qtbot.assertNotEmitted(view.curvesReady, wait=500):
        pass  # hidden: nothing is computed
    with qtbot.waitSignal(view.curvesReady, timeout=WAIT):
        panel.show()
        panel.tabs.setCurrentWidget(view)
    assert sorted(view.items) == sorted((loss, case) for loss in ("bce", "dice", "focal")
                                        for case in ("foreground", "background"))
    assert view.scaled  # by default each curve is scaled to compare shapes
    x, y = view.items[("dice", "foreground")].getData()
    inside = (x >= 0.05) & (x <= 0.95)
    assert np.abs(y[inside]).max() == pytest.approx(1.0)
    assert len(view.legend.items) == 3  # one entry per loss
    view.scale_check.setChecked(False)  # the real values
    x, y = view.items[("bce", "foreground")].getData()
    i = int(np.argmin(np.abs(x - 0.5)))
    assert x[i] == pytest.approx(0.5) and y[i] == pytest.approx(math.log(2), rel=1e-5)
    assert view.values_at("bce", "background", 0.5)[0] == pytest.approx(math.log(2), rel=1e-5)
    assert view.values_at("focal", "foreground", 0.5)[0] == pytest.approx(0.25 * 0.25 * math.log(2), rel=1e-4)
    view.set_mode("gradient")
    _, gradient = view.items[("bce", "foreground")].getData()
    assert gradient[i] == pytest.approx(-2.0, rel=1e-4)  # d(−ln p)/dp = −1/p
    _, gradient = view.items[("bce", "background")].getData()
    assert gradient[i] == pytest.approx(2.0, rel=1e-4)
    _, dice = view.items[("dice", "foreground")].getData()
    assert (dice < 0).all()  # more foreground probability, lower Dice loss
    assert "d loss / d p" in view.plots["foreground"].getAxis("left").labelText


def test_save_writes_npz_and_png_and_open_reloads_them(qtbot, panel, state, trained_run, tmp_path):
    state.set_run(trained_run)
    panel.set_losses("bce,dice")
    set_grid(panel, 3, images=1, dims=1)
    result = compute(qtbot, panel)
    suggested = []
    target = tmp_path / "out" / "slice"  # no suffix: .npz is added

    def ask_save_path(default):
        suggested.append(default)
        return str(target)

    panel.ask_save_path = ask_save_path
    with qtbot.waitSignal(panel.saved, timeout=WAIT) as saved:
        panel.save_button.click()
    assert suggested == [trained_run / "landscape" / "landscape.npz"]
    npz, png = (Path(p) for p in saved.args)
    assert npz == tmp_path / "out" / "slice.npz" and png == tmp_path / "out" / "slice.png"
    assert read_image(png).ndim == 3 and "slice.npz" in panel.status_label.text()
    other = LandscapePanel(state)
    qtbot.addWidget(other)
    try:
        other.ask_result_path = lambda: str(npz)
        with qtbot.waitSignal(other.resultShown, timeout=WAIT) as shown:
            other.open_button.click()
        assert shown.args == ["opened"]
        opened = other.shown_result
        assert opened.losses == result.losses
        np.testing.assert_array_equal(opened.values, result.values)
        np.testing.assert_array_equal(other.plots.rows[0].curve.getData()[1], result.curve(0))
        assert "Opened slice.npz" in other.source_label.text()
    finally:
        other.shutdown()


def test_loss_text_is_validated_as_typed_and_synced_with_the_list(panel, trained_run):
    panel.set_checkpoint(trained_run / "checkpoints" / "best.pt")
    panel.set_losses("dice,no_such_loss")
    assert "no_such_loss" in panel.loss_problem.text() and not panel.compute_button.isEnabled()
    panel.set_losses("tversky:alpha")
    assert "key=value" in panel.loss_problem.text()
    panel.set_losses("tversky:alpha=7")
    assert "alpha" in panel.loss_problem.text() and not panel.compute_button.isEnabled()
    panel.set_losses("tversky:alpha=0.7")
    assert panel.compute_button.isEnabled() and panel.loss_problem.text() == ""
    list_item(panel, "jaccard").setCheckState(Qt.CheckState.Checked)
    assert panel.loss_edit.text() == "tversky:alpha=0.7,jaccard" and checked(panel) == ["jaccard", "tversky"]
    list_item(panel, "tversky").setCheckState(Qt.CheckState.Unchecked)
    assert panel.loss_edit.text() == "jaccard" and checked(panel) == ["jaccard"]
    assert check_loss_spec("dice,dice")[1] == "dice is listed twice."
    panel.set_losses("")
    assert "own loss" in panel.loss_problem.text() and panel.compute_button.isEnabled()


def test_clear_messages_for_unusable_checkpoints_and_data(qtbot, panel, trained_run, tmp_path):
    import torch

    from app.core.training.checkpoint import load_checkpoint, save_checkpoint

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint" * 20)
    state = load_checkpoint(trained_run / "checkpoints" / "best.pt")
    state["config"]["model"]["params"]["base_width"] = 8  # the weights are of a narrower model
    other_model = save_checkpoint(tmp_path / "other_model.pt", state)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    panel.set_losses("bce")
    set_grid(panel, 3, images=1, dims=1)
    for path, words in ((garbage, "cannot be used"), (other_model, "do not fit"), (foreign, "not a SegStudio"),
                        (tmp_path / "missing.pt", "no such checkpoint")):
        panel.ask_checkpoint_path = lambda p=path: str(p)
        panel.checkpoint_button.click()
        qtbot.waitUntil(lambda: panel.compute_button.isEnabled(), timeout=WAIT)  # the last job has ended
        with qtbot.waitSignal(panel.failed, timeout=WAIT) as failed:
            panel.compute_button.click()
        assert path.name in failed.args[0] and words in failed.args[0]
        assert not panel.banner.isHidden() and path.name in panel.banner.text()
    panel.set_checkpoint(trained_run / "checkpoints" / "best.pt")
    empty = tmp_path / "empty"
    empty.mkdir()
    panel.ask_data_folder = lambda: str(empty)
    panel.data_button.click()
    qtbot.waitUntil(lambda: panel.compute_button.isEnabled(), timeout=WAIT)
    with qtbot.waitSignal(panel.failed, timeout=WAIT) as failed:
        panel.compute_button.click()
    assert str(empty) in failed.args[0] and "empty" in failed.args[0]
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with qtbot.waitSignal(panel.failed, timeout=WAIT) as failed:
        panel.open_result(bad)
    assert "bad.npz" in failed.args[0] and "not a readable landscape" in failed.args[0]
    qtbot.waitUntil(lambda: panel.compute_button.isEnabled(), timeout=WAIT)  # the panel is still usable


def test_a_loss_needing_the_weight_map_gets_it_and_says_so(qtbot, panel, trained_run):
    panel.set_checkpoint(trained_run / "checkpoints" / "best.pt")
    panel.set_losses("weighted_ce,bce")
    set_grid(panel, 3, images=1, dims=1)
    result = compute(qtbot, panel)
    assert "weight map" in panel.banner.text() and not panel.banner.isHidden()
    assert result.losses == ["weighted_ce", "bce"] and np.isfinite(result.values).all()


def test_snapshots_stored_during_training_appear_when_it_ends(qtbot, panel, state, snapshot_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(snapshot_run / "checkpoints", run / "checkpoints")
    with qtbot.waitSignal(panel.snapshotsLoaded, timeout=WAIT) as loaded:
        state.set_run(run)
    assert loaded.args == [0] and not panel.snapshot_box.slider.isEnabled()
    assert "“Loss surface every” is set (Model panel" in panel.snapshot_box.epoch_label.text()
    state.set_training(True)
    shutil.copytree(snapshot_run / "landscapes", run / "landscapes")  # what the engine writes
    with qtbot.waitSignal(panel.snapshotsLoaded, timeout=WAIT) as loaded:
        state.set_training(False)
    assert loaded.args == [2] and panel.snapshot_box.epoch_label.text().startswith("Epoch 2")
    assert panel.shown_result is panel.snapshots[1][1]


def test_a_damaged_stored_slice_is_named_and_the_others_shown(qtbot, panel, state, snapshot_run, tmp_path):
    """A slice whose losses were a 0-d array raised TypeError: no slice shown, the slider stuck on
    "Reading 3 stored slices..." and the banner named no file."""
    run = tmp_path / "run"
    shutil.copytree(snapshot_run, run)
    np.savez(run / "landscapes" / "epoch_003.npz", losses=np.array("dice"), axis_0=np.zeros(3),
             values=np.zeros((1, 3)), centre=np.zeros(1), meta=np.array("{}"))
    with qtbot.waitSignal(panel.snapshotsLoaded, timeout=WAIT) as loaded:
        state.set_run(run)
    assert loaded.args == [2] and panel.snapshot_box.epoch_label.text().startswith("Epoch")
    assert "epoch_003.npz: not a readable landscape file (it names no losses)" in panel.banner.text()


def test_overflowed_points_are_holes_in_the_map_and_counted_in_its_title():
    from app.ui.landscape_plots import interpolated_field, not_finite_note

    grid = np.add.outer(np.linspace(0, 1, 5), np.linspace(0, 1, 5))
    grid[0, 0] = np.inf
    field = interpolated_field(grid, size=20)
    assert field.shape == (20, 20) and np.isnan(field[:4, :4]).all() and np.isfinite(field[4:, :]).all()
    assert not_finite_note(grid) == " · 1 of 25 points not finite"


def test_save_after_the_run_is_renamed_or_deleted_never_brings_the_old_folder_back(qtbot, panel, state,
                                                                                   trained_run, tmp_path):
    run = tmp_path / "ren_a"
    shutil.copytree(trained_run, run)
    state.set_run(run)
    set_grid(panel, 3, images=1, dims=1)
    compute(qtbot, panel)
    assert panel.source_label.text().startswith("Computed around ren_a/checkpoints/best.pt: ")  # not just best.pt
    run.rename(tmp_path / "ren_b")  # what the Runs panel's Rename does, then the window follows it
    state.set_run(tmp_path / "ren_b")
    suggested = []
    panel.ask_save_path = lambda default: suggested.append(default)
    panel.save_button.click()
    assert suggested == [tmp_path / "ren_b" / "landscape" / "landscape.npz"]
    shutil.rmtree(tmp_path / "ren_b")
    with qtbot.waitSignal(panel.failed, timeout=WAIT):
        panel.save(tmp_path / "ren_b" / "landscape" / "landscape.npz")
    assert "Could not save" in panel.banner.text() and not (tmp_path / "ren_b").exists()


def test_iso_lines_of_a_big_noisy_grid_stay_few():
    """A 401² noisy slice gave 165,000 line points a plot: seconds on the GUI thread at every redraw."""
    from PySide6.QtCore import QRectF

    from app.ui.landscape_plots import contour_lines

    axis = np.linspace(-1, 1, 401)
    noisy = np.add.outer(axis**2, axis**2) + 0.3 * np.random.default_rng(0).random((401, 401))
    u = ((noisy - noisy.min()) / np.ptp(noisy)).astype(np.float32)
    x, y = contour_lines(u, np.linspace(0.1, 0.9, 9), QRectF(-1, -1, 2, 2))
    assert 0 < len(x) < 30_000 and len(x) == len(y)
    assert np.nanmin(x) >= -1 and np.nanmax(x) <= 1  # still in the plot's coordinates


def test_module_import_and_construction_do_not_load_torch():
    code = ("import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]);"
            "from app.ui.state import ExperimentState; from app.ui.landscape_panel import LandscapePanel;"
            "p = LandscapePanel(ExperimentState()); p.set_losses('dice,bce'); p.shutdown();"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2], env={"QT_QPA_PLATFORM": "offscreen",
                                                                        "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_slices_still_being_read_for_the_previous_run_are_not_shown_for_the_next(qtbot, panel, state, snapshot_run,
                                                                                  tmp_path, monkeypatch):
    import threading

    import app.ui.landscape_panel as landscape_panel_module

    release, reading = threading.Event(), threading.Event()
    real_load = landscape_panel_module.load_results

    def slow_load(paths, context=None):
        loaded = real_load(paths, context)
        reading.set()
        release.wait(30)
        return loaded

    monkeypatch.setattr(landscape_panel_module, "load_results", slow_load)
    state.set_run(snapshot_run)  # its two slices are being read...
    qtbot.waitUntil(reading.is_set, timeout=WAIT)
    other = tmp_path / "other"
    shutil.copytree(snapshot_run / "checkpoints", other / "checkpoints")
    with qtbot.waitSignal(panel.snapshotsLoaded, timeout=WAIT) as loaded:
        state.set_run(other)  # ...when another run, without slices, is chosen
    assert loaded.args == [0]
    release.set()
    qtbot.waitUntil(lambda: not panel._snapshot_runner.busy, timeout=WAIT)
    qtbot.wait(50)  # let a late result arrive, if one would
    assert panel.snapshots == [] and panel.run_dir == other and panel.shown_result is None
    assert "No stored slices" in panel.snapshot_box.epoch_label.text()


def test_a_landscape_computed_before_the_run_changed_is_saved_beside_its_own_checkpoint(qtbot, panel, state,
                                                                                       trained_run, tmp_path):
    state.set_run(trained_run)
    set_grid(panel, 3, dims=1)
    with qtbot.waitSignal(panel.computed, timeout=WAIT):
        panel.compute()
        other = tmp_path / "other"
        shutil.copytree(trained_run / "checkpoints", other / "checkpoints")
        state.set_run(other)  # another run is chosen while the landscape of the first is computed
    assert panel.shown_result is panel.result and panel.checkpoint == other / "checkpoints" / "best.pt"
    asked = []
    panel.ask_save_path = lambda default: asked.append(default)
    panel.save()
    assert asked == [trained_run / "landscape" / "landscape.npz"]  # not into the other run's folder
