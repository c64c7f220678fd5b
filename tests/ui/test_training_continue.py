"""Continuing a stopped or finished run from the Training panel: its curves so far, the dialog,
training on from last.pt in the same folder, and refusals."""

from __future__ import annotations

import csv

import pytest
from PySide6.QtWidgets import QLabel

from app.core.training.continuation import load_run
from app.ui.training_file_actions import ContinueDialog
from app.ui.training_panel import TrainingPanel

from .test_training_panel import RUN_TIMEOUT, run_to_end


@pytest.fixture
def panel(qtbot, state, tmp_path):
    widget = TrainingPanel(state)
    widget.runs_parent = tmp_path / "runs"
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


def history_epochs(run_dir) -> list[int]:
    with (run_dir / "history.csv").open() as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def test_a_finished_run_trains_on_in_its_folder_with_its_curves_so_far(qtbot, panel, state):
    state.update("training", None, epochs=1)
    run_to_end(qtbot, panel)
    run = panel.run_dir
    assert history_epochs(run) == [1]
    first = panel.history[0]
    panel.clear()
    state.update("training", None, epochs=7, batch_size=4)  # the experiment on screen is not the run's

    asked = []
    panel.ask_run_to_continue = lambda: run
    panel.ask_continue = lambda plan: asked.append((plan.epochs_done, plan.config.training.epochs)) or (3, 0.0)
    with qtbot.waitSignal(panel.session.runningChanged, timeout=RUN_TIMEOUT,
                          check_params_cb=lambda running: not running):
        assert panel.continue_button.isEnabled()
        assert panel.continue_run_dialog()
        assert [e.epoch for e in panel.history] == [1]  # the curves so far are on screen at once
        assert not panel.continue_action.isEnabled() and not panel.start_action.isEnabled()
    assert asked == [(1, 1)]
    assert panel.run_dir == run and panel.last_outcome.reason == "completed"
    assert [e.epoch for e in panel.history] == [1, 2, 3]
    assert panel.history[0].train_loss == pytest.approx(first.train_loss, rel=1e-5)  # history.csv: 6 digits
    assert panel.history[0].val_dice == pytest.approx(first.val_dice, rel=1e-5)
    assert history_epochs(run) == [1, 2, 3]  # the same folder, epochs appended
    assert panel.history[1].lr > 0  # the schedule decays over the 3 epochs now asked for, not the old 1
    x, _ = panel.curves["train_loss"].getData()
    assert list(x) == [1, 2, 3]
    assert f"continuing {run.name} from epoch 2 to 3" in panel.log.toPlainText()
    assert load_run(run).config.training.epochs == 3 and load_run(run).config.training.batch_size == 2
    assert state.config.training.epochs == 7  # the experiment on screen is left alone
    assert panel.continue_action.isEnabled()


def test_runs_that_cannot_continue_are_refused_with_a_reason(qtbot, panel, state, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    panel.ask_run_to_continue = lambda: empty
    panel.ask_continue = lambda plan: pytest.fail("no question for a folder that is no run")
    assert not panel.continue_run_dialog()
    assert panel.banner_kind == "error" and "is not a run folder" in panel.banner.text()
    assert not panel.session.running

    state.update("training", None, epochs=1)
    run_to_end(qtbot, panel)
    assert not panel.continue_run(panel.run_dir)  # its own plan is done
    assert "it has trained 1 of 1 epochs; ask for more epochs" in panel.banner.text()
    state.set_training(True)  # a sweep holds the experiment
    assert not panel.continue_run(panel.run_dir, epochs=2)
    assert "A sweep is running" in panel.banner.text()
    state.set_training(False)


def test_the_dialog_offers_the_runs_plan_or_more(qtbot, tmp_path):
    from ..core.test_continuation import make_run

    stopped = load_run(make_run(tmp_path / "stopped", 2, epochs=5, time_limit=100))
    dialog = ContinueDialog(stopped)
    qtbot.addWidget(dialog)
    assert dialog.values() == (5, 100.0, 1e-3) and dialog.epochs.minimum() == 3
    assert dialog.epochs.maximum() == 1_000_000  # as many as an experiment takes (it stopped at 100,000)
    assert dialog.findChild(QLabel, "continue_warning") is None
    done = load_run(make_run(tmp_path / "done", 4, epochs=4, time_limit=40))
    dialog = ContinueDialog(done)
    qtbot.addWidget(dialog)
    assert dialog.values() == (14, 0.0, 1e-3)  # ten more epochs; its time budget is used: no limit


def test_a_run_that_diverged_is_offered_a_tenth_of_its_rate(qtbot, tmp_path):
    from ..core.test_continuation import make_run

    run = make_run(tmp_path / "nan", 2, epochs=5)
    (run / "train.log").write_text(
        "2026-11-24 10:00:00 model unet (1,000 parameters), 4 training / 2 validation images, device cpu\n"
        "2026-11-24 10:01:00 failed: the loss became nan at epoch 3, step 4: training diverged. Try a lower "
        "learning rate (now 0.001) or another loss; last.pt holds epoch 2\n")
    plan = load_run(run)
    dialog = ContinueDialog(plan)
    qtbot.addWidget(dialog)
    assert dialog.values() == (5, 0.0, pytest.approx(1e-4))
    warning = dialog.findChild(QLabel, "continue_warning")
    assert "training diverged" in warning.text() and "A tenth of its base learning rate 0.001 (0.0001) is proposed" in warning.text()
    dialog.lr.setValue(5e-5)
    assert dialog.values()[2] == 5e-5


def test_the_runs_panel_hands_a_selected_run_to_the_training_panel(qtbot, window, demo_folder, tmp_path):
    from app.core.training.engine import Trainer

    from .conftest import tiny_config
    from .test_runs_panel import scan, select

    config = tiny_config(demo_folder)
    config.training.steps_per_epoch = 2
    run = tmp_path / "runs" / "mine"
    Trainer(config, run).run()
    (tmp_path / "runs" / "early").mkdir()  # a run folder without last.pt cannot continue
    (tmp_path / "runs" / "early" / "config.json").write_text("{}")
    window.show_panel("Runs")
    runs = window.panel("Runs")
    scan(qtbot, runs, tmp_path / "runs")
    select(qtbot, runs, tmp_path / "runs" / "early")
    assert not runs.continue_button.isEnabled()
    select(qtbot, runs, run)
    assert runs.continue_button.isEnabled()

    training = window.panel("Training")
    asked = []
    training.ask_continue = lambda plan: asked.append(plan.run_dir) or (2, 0.0, 2e-3)
    with qtbot.waitSignal(training.session.runningChanged, timeout=RUN_TIMEOUT,
                          check_params_cb=lambda running: not running):
        runs.continue_button.click()
        assert window.docks["Training"].isVisible()
    assert asked == [run] and history_epochs(run) == [1, 2]
    assert training.run_dir == run and training.last_outcome.reason == "completed"
    assert load_run(run).config.optimizer.lr == 2e-3  # the rate asked for is the one it went on with
    # while another run (or a sweep) trains, Continue… waits: disabled, and refused before any question
    select(qtbot, runs, run)
    assert runs.continue_button.isEnabled()
    window.state.set_run(tmp_path / "runs" / "another")  # the run that trains now is another one
    window.state.set_training(True)
    assert not runs.continue_button.isEnabled() and "A run is training now" in runs.continue_button.toolTip()
    training.ask_continue = lambda plan: pytest.fail("no question while another run trains")
    window.continue_run(run)
    assert "A sweep is running" in training.banner.text() and not training.session.running
    window.state.set_training(False)
    assert runs.continue_button.isEnabled()
