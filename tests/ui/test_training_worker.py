"""The worker bridge: a tiny run on a QThread reports plain data and leaves no thread behind."""

from __future__ import annotations

import threading

import numpy as np

from app.core.training.run_folder import new_run_dir
from app.ui.training_worker import StepBatch, TrainingSession

from .conftest import tiny_config


def _run(qtbot, session, config, dataset, run_dir, timeout=60000):
    events = {"steps": [], "epochs": [], "finished": [], "failed": [], "threads": set()}
    session.stepsReady.connect(lambda b: (events["steps"].append(b), events["threads"].add(threading.get_ident())))
    session.epochFinished.connect(events["epochs"].append)
    session.finished.connect(events["finished"].append)
    session.failed.connect(events["failed"].append)
    with qtbot.waitSignal(session.runningChanged, check_params_cb=lambda running: not running, timeout=timeout):
        session.start(config, dataset, run_dir)
    return events


def test_tiny_run_reports_steps_epochs_and_finish_on_the_gui_thread(qtbot, state, tmp_path):
    config = state.snapshot()
    config.training.epochs = 2
    session = TrainingSession()
    events = _run(qtbot, session, config, state.dataset, tmp_path / "run")
    assert not session.running
    assert events["failed"] == [] and [f.reason for f in events["finished"]] == ["completed"]
    assert [e.epoch for e in events["epochs"]] == [1, 2]
    assert events["threads"] == {threading.get_ident()}
    batches = events["steps"]
    assert all(isinstance(b, StepBatch) for b in batches)
    steps = np.concatenate([b.steps for b in batches])
    assert np.array_equal(steps, np.arange(1, len(steps) + 1))  # every step, once, in order
    assert np.isfinite(np.concatenate([b.losses for b in batches])).all()
    assert (tmp_path / "run" / "checkpoints" / "best.pt").exists()


def test_stop_ends_the_run_saves_a_checkpoint_and_leaves_no_thread(qtbot, state, tmp_path):
    config = state.snapshot()
    config.training.epochs = 200
    session = TrainingSession()
    finished = []
    session.finished.connect(finished.append)
    run_dir = new_run_dir("stop", tmp_path)
    with qtbot.waitSignal(session.stepsReady, timeout=60000):
        session.start(config, state.dataset, run_dir)
    thread = session._thread
    assert session.stop_and_wait(60000)
    assert not thread.isRunning() and not session.running
    qtbot.waitUntil(lambda: bool(finished), timeout=10000)
    assert finished[0].reason == "stopped"
    assert (run_dir / "checkpoints" / "last.pt").exists()


def test_pause_holds_the_run_until_resumed(qtbot, state, tmp_path):
    config = state.snapshot()
    config.training.epochs = 200
    session = TrainingSession()
    batches = []
    session.stepsReady.connect(batches.append)
    with qtbot.waitSignal(session.stepsReady, timeout=60000):
        session.start(config, state.dataset, tmp_path / "run")
    with qtbot.waitSignal(session.pausedChanged):
        session.pause()
    qtbot.wait(400)  # let a step in flight land
    count = len(batches)
    qtbot.wait(400)
    assert len(batches) == count and session.paused
    session.resume()
    qtbot.waitUntil(lambda: len(batches) > count, timeout=30000)
    assert session.stop_and_wait(60000)


def test_a_bad_experiment_is_reported_as_failed_and_the_session_can_start_again(qtbot, state, tmp_path):
    dataset = state.dataset
    session = TrainingSession()
    broken = tiny_config(tmp_path / "missing-folder")
    events = _run(qtbot, session, broken, None, tmp_path / "bad")
    assert events["finished"] == [] and len(events["failed"]) == 1
    assert "missing-folder" in events["failed"][0].message
    events = _run(qtbot, session, state.snapshot(), dataset, tmp_path / "good")
    assert [f.reason for f in events["finished"]] == ["completed"]


def test_an_engine_that_cannot_be_imported_fails_the_run_instead_of_hanging(qtbot, state, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "app.core.training.engine", None)  # import raises ImportError
    session = TrainingSession()
    events = _run(qtbot, session, state.snapshot(), state.dataset, tmp_path / "run", timeout=10000)
    assert not session.running and events["finished"] == []
    assert [f.kind for f in events["failed"]] == ["error"]
    assert "the training engine could not be loaded (ModuleNotFoundError" in events["failed"][0].message
