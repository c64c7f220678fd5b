"""The training panel: run control, live curves, throttled redraws, export, failures."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtGui import QImage, QKeySequence

from app.core.experiment_data import load_experiment_data
from app.core.training.run_folder import HISTORY_COLUMNS
from app.ui import training_panel as tp
from app.ui.training_panel import RunProgress, StepSeries, TrainingPanel, format_duration
from app.ui.training_worker import StepBatch

RUN_TIMEOUT = 60000


@pytest.fixture
def panel(qtbot, state, tmp_path):
    widget = TrainingPanel(state)
    widget.runs_parent = tmp_path / "runs"
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()
    assert not widget.session.running


def run_to_end(qtbot, panel) -> list[StepBatch]:
    """Start a run, collect its step batches and wait until its thread has ended."""
    batches: list[StepBatch] = []
    panel.session.stepsReady.connect(batches.append)
    with qtbot.waitSignal(panel.session.runningChanged, timeout=RUN_TIMEOUT,
                          check_params_cb=lambda running: not running):
        assert panel.start()
        assert panel.state.training and panel.state.training_run == panel.run_dir  # (not the run shown)
        assert not panel.start_action.isEnabled()
        assert panel.stop_action.isEnabled() and panel.pause_action.isEnabled()
    return batches


def batch(first: int, count: int, epoch: int = 1, steps_in_epoch: int = 1000) -> StepBatch:
    steps = np.arange(first, first + count)
    return StepBatch(steps, np.linspace(1.0, 0.5, count), epoch, int(steps[-1]), steps_in_epoch, 12.5, 1e-3)


def test_idle_panel_actions_and_tooltips(panel):
    assert TrainingPanel.title == "Training"
    assert panel.start_action.isEnabled()
    assert not panel.pause_action.isEnabled() and not panel.stop_action.isEnabled()
    assert panel.pause_action.isCheckable()
    assert QKeySequence("F5") in panel.start_action.shortcuts()
    assert QKeySequence("F6") == panel.pause_action.shortcut()
    assert QKeySequence("Shift+F5") in panel.stop_action.shortcuts()
    assert "run folder" in panel.start_action.toolTip() and str(panel.runs_parent) in panel.start_action.toolTip()
    assert panel.start_button.defaultAction() is panel.start_action
    assert not panel.export_csv_button.isEnabled()


def test_start_without_dataset_shows_banner(panel, state):
    state.set_dataset(None)
    assert not panel.start()
    assert not panel.session.running and not state.training and state.training_run is None
    assert "Load a dataset first" in panel.banner.text() and not panel.banner.isHidden()


def test_start_is_refused_while_the_split_settings_are_not_the_loaded_ones(panel, state):
    """A new validation fraction, its reload not done: the run trained on the old split while its
    config.json recorded the new fraction."""
    state.update("data", None, val_fraction=0.5)
    assert not panel.start() and not panel.session.running
    assert "not those of the loaded dataset" in panel.banner.text()
    state.set_split([state.dataset.samples[0].name], "val")  # a move does not make the new fraction loaded
    assert not panel.start() and not state.dataset_matches_config()
    state.set_dataset(load_experiment_data(state.config))  # the reload the Dataset panel starts
    assert state.dataset_matches_config()
    state.set_split([state.dataset.samples[1].name], "val")  # a move while matched stays matched
    assert state.dataset_matches_config() and len(state.config.data.splits) == 2


def test_invalid_config_shows_banner(panel, state):
    state.config.training.epochs = 0  # bypasses validation, as a broken edit would
    assert not panel.start()
    assert not panel.session.running
    assert panel.banner_kind == "error" and "training.epochs" in panel.banner.text()


def test_full_run_curves_checkpoint_and_export(qtbot, panel, state, tmp_path):
    state.update("training", None, epochs=2)
    batches = run_to_end(qtbot, panel)

    assert panel.last_outcome.reason == "completed"
    assert not state.training and panel.start_action.isEnabled() and not panel.stop_action.isEnabled()
    assert state.run_dir == panel.run_dir and panel.run_dir.parent == tmp_path / "runs"
    assert (state.run_dir / "checkpoints" / "best.pt").exists()
    assert state.checkpoint == state.run_dir / "checkpoints" / "best.pt"
    assert panel.run_label.text() == str(panel.run_dir)
    assert panel.banner.text().startswith("Finished (completed): best validation Dice")
    assert panel.progress.format() == "Completed"  # not "Finished (completed)" a second time
    assert panel.log.minimumHeight() >= 5 * panel.log.fontMetrics().lineSpacing()  # was 50 px: 3 lines and a half

    assert [e.epoch for e in panel.history] == [1, 2]
    panel.redraw()
    for name in ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "val_iou", "val_dice"):
        x, y = panel.curves[name].getData()
        assert list(x) == [1, 2], name
    total_steps = sum(len(b.steps) for b in batches)
    assert total_steps == 2 * batches[-1].steps_in_epoch
    steps, losses = panel.step_losses()
    assert list(steps) == list(range(1, total_steps + 1)) and np.isfinite(losses).all()
    assert len(panel.curves["step_loss"].getData()[0]) == total_steps
    assert len(panel.curves["step_loss_smooth"].getData()[0]) == total_steps
    assert panel.progress.value() == panel.progress.maximum() == total_steps

    low = min(panel.history, key=lambda e: e.val_loss)
    texts = panel.marker_texts()
    assert texts["min_val_loss"] == f"min val loss {low.val_loss:.3g} @ {low.epoch}"
    assert texts["max_val_accuracy"].startswith("max val accuracy")
    assert list(panel.markers["min_val_loss"].getData()[0]) == [low.epoch]
    log = panel.log.toPlainText()
    assert "run started" in log and "best.pt" in log and "Finished (completed)" in log

    panel.log_scale.setChecked(True)
    assert panel.plot_loss.getAxis("left").logMode and panel.plot_steps.getAxis("left").logMode

    csv_path = panel.export_csv(tmp_path / "history.csv")
    with csv_path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == HISTORY_COLUMNS and len(rows) == 3
    assert float(rows[2][HISTORY_COLUMNS.index("val_loss")]) == pytest.approx(panel.history[1].val_loss, rel=1e-6)
    geometry = panel.plots.ci.geometry()
    png_path = panel.export_png(tmp_path / "curves.png")
    image = QImage(str(png_path))
    assert not image.isNull() and (image.width(), image.height()) == (1200, 800)
    assert panel.plots.ci.geometry() == geometry  # the on-screen layout is restored
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_stop_during_run_saves_last_checkpoint(qtbot, panel, state):
    """Stopped inside its first epoch: last.pt holds the initial weights, so the run shown for
    predictions stays (it was replaced by the untrained run without a word)."""
    state.update("training", None, epochs=50, steps_per_epoch=10_000)
    with qtbot.waitSignal(panel.session.stepsReady, timeout=RUN_TIMEOUT):
        panel.start()
    with qtbot.waitSignal(panel.session.runningChanged, timeout=RUN_TIMEOUT):
        panel.stop_action.trigger()
        assert not panel.stop_action.isEnabled()  # no second stop while it saves
    assert panel.last_outcome.reason == "stopped"
    assert not panel.session.running and not state.training
    assert (panel.run_dir / "checkpoints" / "last.pt").exists()
    assert panel._history == [] and state.run_dir is None
    assert panel.start_action.isEnabled() and not panel.pause_action.isChecked()
    panel.shutdown()
    panel.shutdown()  # safe twice


def test_pause_and_resume(qtbot, panel, state):
    state.update("training", None, epochs=50)
    with qtbot.waitSignal(panel.session.stepsReady, timeout=RUN_TIMEOUT):
        panel.start()
    panel.pause_action.trigger()
    assert panel.session.paused and panel.pause_action.isChecked()
    assert panel.pause_action.text() == "Resume"
    qtbot.waitUntil(lambda: panel.session._worker.control.held, timeout=RUN_TIMEOUT)  # the step under way ends
    qtbot.wait(300)  # and the batches already on their way arrive
    count = len(panel.step_losses()[0])
    qtbot.wait(500)
    assert len(panel.step_losses()[0]) == count
    assert panel.progress.format().startswith("Paused")
    with qtbot.waitSignal(panel.session.stepsReady, timeout=RUN_TIMEOUT):
        panel.pause_action.trigger()
    assert not panel.session.paused and panel.pause_action.text() == "Pause"
    assert len(panel.step_losses()[0]) > count
    panel.shutdown()
    assert not panel.session.running and not state.training
    assert (panel.run_dir / "checkpoints" / "last.pt").exists()


def test_no_training_images_is_refused_before_a_run_folder_is_made(qtbot, panel, state):
    state.set_split([s.name for s in state.dataset.samples], "val")
    assert not panel.start()
    assert not panel.session.running and not state.training
    assert panel.banner_kind == "warning" and "No training images" in panel.banner.text()
    assert not panel.runs_parent.exists() or not any(panel.runs_parent.iterdir())


def test_engine_failure_shows_banner_and_returns_to_idle(qtbot, panel, state, monkeypatch):
    from app.core.training import engine

    def fail(self):
        raise engine.TrainingError("the loss became NaN at step 3; lower the learning rate", "nan")

    monkeypatch.setattr(engine.Trainer, "_prepare", fail)
    with qtbot.waitSignal(panel.session.runningChanged, timeout=RUN_TIMEOUT,
                          check_params_cb=lambda running: not running):
        panel.start()
    assert panel.last_outcome.kind == "nan"
    assert panel.banner_kind == "error" and not panel.banner.isHidden()
    assert "NaN" in panel.banner.text() and "lower the learning rate" in panel.banner.text()
    assert panel.start_action.isEnabled() and not state.training
    assert state.run_dir is None  # nothing to predict with
    assert panel.progress.format() == "Failed (nan)"


def test_redraw_is_throttled(qtbot, panel, monkeypatch):
    calls = []
    original = panel.curves["step_loss"].setData
    monkeypatch.setattr(panel.curves["step_loss"], "setData", lambda *a, **k: (calls.append(1), original(*a, **k)))
    for i in range(200):  # no event loop runs in between: the timer cannot fire
        panel.session.stepsReady.emit(batch(1 + 5 * i, 5))
    assert calls == []
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=5000)
    qtbot.wait(2 * tp.REDRAW_MS + 50)
    assert len(calls) == 1
    assert len(panel.curves["step_loss"].xData) == 1000
    assert panel.progress.value() == 1000
    assert "Epoch 1/1 · step 1000/1000 · 12.5 img/s" in panel.progress.format()


def test_step_series_is_bounded_and_evenly_strided(monkeypatch):
    monkeypatch.setattr(tp, "MAX_STEP_POINTS", 100)
    series = StepSeries()
    for start in range(1, 1001, 7):
        count = min(7, 1001 - start)
        series.append(np.arange(start, start + count), np.full(count, 0.5))
    assert series.received == 1000
    assert 50 <= len(series) <= 100
    gaps = np.diff(series.steps)
    assert (gaps == series.stride).all() and series.steps[0] == 1
    assert np.allclose(series.smooth, 0.5)  # bias-corrected average of a constant is that constant


def test_progress_text_and_time_left():
    now = [0.0]
    progress = RunProgress(epochs=2, time_limit=0.0, clock=lambda: now[0])
    progress.update(StepBatch(np.array([1]), np.array([1.0]), 1, 1, 10, 8.0, 1e-3))
    assert progress.seconds_left() is None
    now[0] = 10.0
    progress.update(StepBatch(np.array([6]), np.array([1.0]), 1, 6, 10, 8.0, 1e-3))
    assert progress.seconds_left() == pytest.approx(28.0)  # 5 steps in 10 s, 14 to go
    assert progress.text() == "Epoch 1/2 · step 6/10 · 8.0 img/s · 28s left"
    progress.set_paused(True)
    now[0] = 110.0
    progress.set_paused(False)
    assert progress.seconds_left() == pytest.approx(28.0)  # paused time does not count
    limited = RunProgress(epochs=2, time_limit=15.0, clock=lambda: now[0])
    limited.update(StepBatch(np.array([1]), np.array([1.0]), 1, 1, 10, 8.0, 1e-3))
    now[0] = 120.0
    limited.update(StepBatch(np.array([6]), np.array([1.0]), 1, 6, 10, 8.0, 1e-3))
    assert limited.seconds_left() == pytest.approx(5.0)
    assert format_duration(80) == "1m 20s" and format_duration(45) == "45s" and format_duration(7500) == "2h 05m"


def test_after_an_epoch_the_three_epoch_plots_are_updated_one_turn_at_a_time(qtbot, panel):
    from app.core.training.events import EpochFinished

    drawn = []
    for name in ("train_loss", "train_accuracy", "val_iou"):
        curve = panel.curves[name]
        original = curve.setData
        curve.setData = lambda *a, _n=name, _o=original, **k: (drawn.append(_n), _o(*a, **k))
    panel.session.epochFinished.emit(EpochFinished(1, 0.5, 0.8, 0.4, 0.85, 0.6, 0.7, 1e-3, 2.0))
    qtbot.waitUntil(lambda: len(drawn) >= 1, timeout=5000)
    assert drawn == ["train_loss"]  # the first plot only, in this turn of the event loop
    qtbot.waitUntil(lambda: len(drawn) == 3, timeout=5000)
    assert drawn == ["train_loss", "train_accuracy", "val_iou"]
    assert list(panel.curves["val_dice"].getData()[1]) == [0.7]


def test_epoch_and_step_axes_tick_only_whole_numbers(qtbot, panel):
    axis = panel.plot_loss.getAxis("bottom")
    for low, high in ((1, 5), (0.8, 5.2), (1, 300), (1, 1.0001)):
        values = [v for _, level in axis.tickValues(low, high, 600) for v in level]
        assert values and all(float(v).is_integer() for v in values), (low, high, values)


def test_train_is_refused_while_a_sweep_holds_the_experiment(panel):
    panel.state.set_training(True)  # what the Sweeps panel does while it runs
    assert not panel.start_action.isEnabled()
    assert panel.start() is False and not panel.session.running
    assert "A sweep is running" in panel.banner.text()
    panel.state.set_training(False)
    assert panel.start_action.isEnabled()


def test_best_epoch_labels_point_towards_the_middle_away_from_the_legends(qtbot):
    """The loss plot's legend is top right, the accuracy plot's bottom right: a label goes below a
    point in the upper half of its plot's data and above one in the lower half."""
    from app.core.training.events import EpochFinished
    from app.ui.training_plots import TrainingPlots

    from PySide6.QtWidgets import QApplication

    plots = TrainingPlots(QApplication.palette())
    qtbot.addWidget(plots)

    def anchors(history):
        plots.draw_epochs(history)
        return {name: tuple(label.anchor) for name, label in plots.marker_labels.items()}

    falling = [EpochFinished(e, 1.0 / e, 0.5 + e / 20, 0.9 / e, 0.5 + e / 20, 0.5, 0.5, 1e-3, 1.0) for e in (1, 2, 3)]
    assert anchors(falling) == {"min_val_loss": (1.05, 1.2), "max_val_accuracy": (1.05, -0.2)}
    # a validation loss that is lowest early, high above the training loss; accuracy best while low
    odd = [EpochFinished(1, 0.2, 0.90, 0.8, 0.60, 0.5, 0.5, 1e-3, 1.0),
           EpochFinished(2, 0.1, 0.95, 0.9, 0.55, 0.5, 0.5, 1e-3, 1.0),
           EpochFinished(3, 0.05, 0.99, 1.0, 0.50, 0.5, 0.5, 1e-3, 1.0)]
    assert anchors(odd) == {"min_val_loss": (-0.05, -0.2), "max_val_accuracy": (-0.05, 1.2)}


def test_the_panel_follows_its_run_when_the_runs_panel_renames_or_deletes_it(panel, state, tmp_path):
    """The panel kept the old folder after a rename: Open folder and the export's default
    folder pointed at a folder that was gone."""
    old, new = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    panel._set_run_dir(old)
    state.runMoved.emit(tmp_path / "runs" / "other", tmp_path / "runs" / "c")  # not this panel's run
    assert panel.run_dir == old
    state.runMoved.emit(old, new)
    assert panel.run_dir == new and panel.run_label.text() == str(new)
    assert panel._default_export_path(".csv") == str(new / "training-curves.csv")
    state.runMoved.emit(new, None)
    assert panel.run_dir is None and "(deleted)" in panel.run_label.text()
    assert not panel.open_run_button.isEnabled()
    assert not panel._default_export_path(".csv").startswith(str(new))


def test_every_failure_kind_has_its_title():
    """A comment swallowed half of this table once: "out of memory" and "data" fell back to "Training failed"."""
    assert tp.FAILURE_TITLES == {"nan": "Training stopped", "out of memory": "Out of memory", "data": "Data problem",
                                 "settings": "Settings problem", "error": "Training failed"}
