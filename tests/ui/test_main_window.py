"""The real main window: the whole researcher flow end to end, closing during training, layout
and experiment files, and the ``--self-test`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtWidgets import QDockWidget

from app.core.config import ExperimentConfig
from app.core.postprocess import WatershedParams, watershed_postprocess
from app.ui.experiment_files import last_session_path
from app.ui.main_window import MainWindow
from app.ui.self_test import drive, tiny_experiment, wait_until
from app.ui.settings import AppSettings


def _threads_left(win) -> list[str]:
    training = win.panel("Training")
    return ["training"] if training.session.running else []


def test_end_to_end_demo_data_to_predictions_before_and_after_clean_up(window, tmp_path, qtbot):
    shot = tmp_path / "window.png"
    result = drive(window, screenshot=shot, log=lambda line: None, timeout=240)
    state, predictions = window.state, window.panel("Predictions")
    # demo data loaded, one epoch trained, the run's best checkpoint shown
    assert result["dataset"]["val"] > 0 and result["epoch"].epoch == 1
    assert state.checkpoint is not None and state.checkpoint.exists() and state.checkpoint.name == "best.pt"
    assert state.run_dir is not None and (state.run_dir / "history.csv").exists()
    # before and after views show the image with overlays
    assert predictions.before_canvas.image() is not None and predictions.after_canvas.image() is not None
    assert set(result["after"]) == {"before", "after"} and "dice" in result["after"]["after"]
    # the metrics shown are those of the current watershed parameters on the cached prediction
    prediction = predictions.current_prediction()
    params = WatershedParams.from_dict(state.config.postprocess)
    assert params.foreground_fraction == pytest.approx(predictions.params_form.values()["foreground_fraction"])
    expected = watershed_postprocess(prediction.probabilities[1], params)
    assert predictions.current_result().object_count == expected.object_count
    assert np.array_equal(predictions.current_result().mask, expected.mask)
    assert predictions.metrics()["after"]["objects"] == expected.object_count
    assert shot.stat().st_size > 10_000
    window.close()
    assert _threads_left(window) == []


def test_closing_during_training_asks_stops_the_run_and_saves_a_checkpoint(qtbot, demo_folder):
    win = MainWindow(restore_layout=False)
    qtbot.addWidget(win)
    asked = []
    win.confirm_close_during_training = lambda: asked.append(1) or len(asked) > 1  # "no", then "yes"
    win.show()
    wait_until(lambda: win.state.dataset is not None and not win.panel("Dataset").loading, 120, "data")
    tiny_experiment(win.state)
    win.state.update("training", None, epochs=500, steps_per_epoch=0)
    training = win.panel("Training")
    training.start()
    qtbot.waitUntil(lambda: len(training.step_losses()[0]) > 0, timeout=60000)
    assert not win.close()  # the user said no: still training
    assert win.state.training and training.session.running
    win.close()  # yes: the run is asked to stop; the window closes once it has
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=60000)
    assert len(asked) == 2 and not training.session.running and not win.state.training
    assert (training.run_dir / "checkpoints" / "last.pt").exists()
    assert training.session._thread is None


def test_experiment_save_open_round_trip_and_bad_file(window, tmp_path, qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: warnings.append(args[2]))
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Discard)
    window.state.update("training", None, epochs=7)
    path = tmp_path / "exp.json"
    assert window.files.save_to(path)
    assert not window.state.dirty and "exp.json" in window.windowTitle()
    assert ExperimentConfig.load(path).training.epochs == 7
    window.state.update("training", None, epochs=3)
    assert window.state.dirty and window.windowTitle().startswith("exp.json *")
    assert window.files.open(path)
    assert window.state.config.training.epochs == 7
    window.show_panel("Model")  # built on first show
    assert window.panel("Model").epochs_spin.value() == 7
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"training": {"epochs": -1}}))
    assert not window.files.open(bad)
    assert "training.epochs" in warnings[0] and window.state.config.training.epochs == 7
    assert window.settings.recent("experiments") == [str(path)]


def test_layout_and_experiment_are_restored_next_launch(qtbot):
    first = MainWindow()
    first.confirm_close_during_training = lambda: True
    qtbot.addWidget(first)
    first.show()
    dock = first.docks["Training"]
    dock.setFloating(True)
    first.state.update("training", None, epochs=11)
    first.close()
    assert last_session_path().exists()

    second = MainWindow()
    qtbot.addWidget(second)
    second.show()
    assert second.docks["Training"].isFloating()
    assert second.state.config.training.epochs == 11
    second.reset_layout()
    assert not second.docks["Training"].isFloating()
    second.close()


def test_a_session_that_cannot_be_restored_is_kept_not_overwritten(qtbot):
    """The next close wrote the first-launch experiment over the only copy of an unsaved one."""
    last_session_path().parent.mkdir(parents=True, exist_ok=True)
    mine = json.dumps({"name": "mine", "model": {"name": "unet3plus"}})  # e.g. written by a newer version
    last_session_path().write_text(mine)
    win = MainWindow(restore_layout=False)
    qtbot.addWidget(win)
    kept = list(last_session_path().parent.glob("last_experiment.unreadable-*.json"))
    assert len(kept) == 1 and kept[0].read_text() == mine
    qtbot.waitUntil(lambda: str(kept[0]) in win.status.currentMessage(), timeout=5000)
    win.close()
    assert last_session_path().exists() and kept[0].read_text() == mine


def test_a_file_changed_since_the_last_session_is_not_written_over(qtbot, tmp_path):
    """The window reattached to a.json without looking: it claimed to show the file, and Ctrl+S
    wrote the old experiment over the hand edits."""
    first = MainWindow(restore_layout=False)
    qtbot.addWidget(first)
    assert first.files.save_to(tmp_path / "a.json")
    first.close()
    data = json.loads((tmp_path / "a.json").read_text())
    data["training"]["epochs"] = 250
    (tmp_path / "a.json").write_text(json.dumps(data))  # edited by hand between sessions
    second = MainWindow(restore_layout=False)
    qtbot.addWidget(second)
    assert second.state.config_path is None and second.state.dirty
    qtbot.waitUntil(lambda: "a.json changed or is gone since the last session" in second.status.currentMessage(),
                    timeout=5000)
    second.close()
    assert json.loads((tmp_path / "a.json").read_text())["training"]["epochs"] == 250
    (tmp_path / "a.json").unlink()  # a file gone: the experiment is unsaved, so opening another asks first
    third = MainWindow(restore_layout=False)
    qtbot.addWidget(third)
    assert third.state.config_path is None and third.state.dirty
    third.close()


def test_the_session_is_saved_shortly_after_each_edit(qtbot):
    """Only a normal close saved it: after a kill or a crash every edit was gone."""
    from app.ui import experiment_files

    win = MainWindow(restore_layout=False)
    qtbot.addWidget(win)
    win.state.update("training", None, epochs=77)
    assert win.files._autosave.isActive() and experiment_files.AUTOSAVE_MS <= 5000
    qtbot.waitUntil(lambda: last_session_path().exists() and
                    json.loads(last_session_path().read_text())["training"]["epochs"] == 77, timeout=10000)
    win.close()


def test_every_main_action_has_a_shortcut_and_every_panel_is_a_dock(window):
    assert all(isinstance(window.docks[name], QDockWidget) for name in
               ("Dataset", "Augmentation", "Model", "Training", "Predictions"))
    for title in window.docks:  # build the panels not shown yet: their shortcuts count too
        window.panel(title)
    training = window.panel("Training")
    for action in (training.start_action, training.pause_action, training.stop_action, window.files.open_action,
                   window.files.save_action, window.panel("Dataset").open_folder_action):
        assert not action.shortcut().isEmpty(), action.text()
    keys = [a.shortcut().toString() for a in window.findChildren(type(training.start_action))
            if not a.shortcut().isEmpty()]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates  # an ambiguous shortcut fires nothing at all
    window.panel_actions[3].trigger()  # Ctrl+4
    assert window.docks["Training"].isVisible() and not window.docks["Training"].visibleRegion().isEmpty()


def test_corrupt_settings_file_does_not_stop_the_window(qtbot, tmp_path):
    settings = AppSettings(tmp_path / "settings.ini")
    (tmp_path / "settings.ini").write_bytes(b"\x00\xff[window]\ngeometry=@ByteArray(garbage\n")
    last_session_path().parent.mkdir(parents=True, exist_ok=True)
    last_session_path().write_text("{not json")
    win = MainWindow(settings=AppSettings(tmp_path / "settings.ini"))
    qtbot.addWidget(win)
    win.show()
    assert win.state.config.validate() is win.state.config
    assert settings.recent("experiments") == []
    win.close()


def test_self_test_command_exits_zero_and_writes_a_screenshot(tmp_path):
    shot = tmp_path / "self-test.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-m", "app", "--self-test", "--screenshot", str(shot)],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-test: passed" in result.stdout and shot.stat().st_size > 10_000


def test_no_arguments_opens_the_window(tmp_path):
    """``segstudio`` alone launches the GUI (here told to quit as soon as it is shown)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SEGSTUDIO_EXIT_AFTER_SHOW": "1",
           "SEGSTUDIO_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "app"], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "window shown after" in result.stdout


def test_dropping_files_on_the_window_opens_experiment_dataset_or_checkpoint(window, tmp_path, demo_folder, qtbot):
    config = ExperimentConfig(name="dropped")
    config.training.epochs = 4
    config.save(tmp_path / "dropped.json")
    assert window.open_paths([str(tmp_path / "dropped.json")])
    assert window.state.config.name == "dropped" and window.state.config.training.epochs == 4
    data = window.panel("Dataset")
    qtbot.waitUntil(lambda: not data.loading, timeout=60000)
    assert window.open_paths([str(demo_folder)])
    qtbot.waitUntil(lambda: window.state.dataset is not None and window.state.dataset.root == demo_folder
                    and not data.loading, timeout=60000)
    assert window.settings.recent("datasets")[0] == str(demo_folder)
    failures = []
    window.panel("Predictions").failed.connect(failures.append)
    assert window.open_paths([str(tmp_path / "dropped.json").replace(".json", ".pt")])  # missing file
    qtbot.waitUntil(lambda: bool(failures), timeout=30000)
    assert "dropped.pt" in failures[0]


def test_unsaved_edits_are_offered_for_saving_before_new_or_open(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Discard]
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: answers.pop(0))
    window.state.update("training", None, epochs=99)
    window.files.new()  # cancelled
    assert window.state.config.training.epochs == 99
    window.files.new()  # discarded
    assert window.state.config.training.epochs != 99 and not window.state.dirty


def test_edits_are_refused_while_training_and_typed_values_count_at_start(window, qtbot):
    wait_until(lambda: window.state.dataset is not None and not window.panel("Dataset").loading, 120, "data")
    tiny_experiment(window.state)
    model = window.panel("Model")
    model.ensure_loaded()
    window.show_panel("Model")
    model.epochs_spin.setFocus()
    qtbot.waitUntil(lambda: model.epochs_spin.hasFocus(), timeout=5000)
    model.epochs_spin.lineEdit().setText("500")  # typed, not yet committed
    training = window.panel("Training")
    assert training.start()
    qtbot.waitUntil(lambda: window.state.training, timeout=10000)
    assert window.state.config.training.epochs == 500
    window.state.update("training", None, epochs=3)  # refused during the run
    assert window.state.config.training.epochs == 500
    training.session.stop_and_wait(60000)


def test_hidden_panels_are_built_when_first_shown_and_work_then(qtbot, tmp_path):
    from app.ui.main_window import EAGER_PANELS

    window = MainWindow(restore_layout=False)
    window.prebuild_delay_ms = None  # only on demand here
    window.confirm_close_during_training = lambda: True
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: not window.warmup.busy, timeout=60000)
    qtbot.wait(600)  # longer than the usual pre-build delay
    assert set(window.panels) == set(EAGER_PANELS)  # the rest wait: start-up stays short
    assert window.docks["Runs"].widget() is None
    window.show_panel("Runs")
    qtbot.waitUntil(lambda: "Runs" in window.panels)
    runs = window.panel("Runs")
    assert window.docks["Runs"].widget() is runs and runs.isVisible()
    opened = []
    window.state.runChanged.connect(lambda: opened.append(window.state.run_dir))
    runs.openRun.emit(str(tmp_path))  # a lazily built panel is wired like the others
    assert opened == [tmp_path] and window.docks["Predictions"].isVisible()
    sweeps = window.panel("Sweeps")  # asked for by code: built at once, even while hidden
    assert window.docks["Sweeps"].widget() is sweeps and "Sweeps" in window.panels
    assert "Loss landscape" not in window.panels
    with pytest.raises(KeyError, match="Runs"):
        window.panel("Nope")
    window.close()  # closes with a sweep panel built and panels never built


def test_the_other_panels_are_built_soon_after_the_window_is_shown(qtbot):
    from app.ui.main_window import EAGER_PANELS

    window = MainWindow(restore_layout=False)
    qtbot.addWidget(window)
    assert set(window.panels) == set(EAGER_PANELS)
    window.show()
    qtbot.waitUntil(lambda: len(window.panels) == len(window.docks), timeout=30000)
    assert all(window.docks[title].widget() is window.panel(title) for title in window.docks)
    assert all(type(window.panel(title)).title == title for title in window.docks)  # PANELS matches the classes
    assert window.docks["Runs"].widget().visibleRegion().isEmpty()  # built, not brought to the front
    assert not window.docks["Dataset"].widget().visibleRegion().isEmpty()
    window.close()


def test_the_window_is_gone_before_background_jobs_are_waited_for(window, monkeypatch):
    """Closing during a slow loss-landscape point left a frozen window on screen for 30 s."""
    seen = []
    panel = window.panel("Dataset")
    monkeypatch.setattr(panel, "shutdown", lambda: seen.append(window.isVisible()))
    window.close()
    assert seen == [False]


def test_a_job_that_outlived_the_window_ends_the_process_instead_of_an_abort(monkeypatch):
    """Qt destroyed its still-running QThread at exit: "QThread: Destroyed while thread is still running", Aborted."""
    from app.ui import tasks

    exits = []
    monkeypatch.setattr(tasks.os, "_exit", exits.append)
    assert tasks.leave_if_jobs_outlived(0) == 0 and exits == []

    class Running:
        class _thread:
            @staticmethod
            def isRunning():
                return True

    monkeypatch.setattr(tasks, "_STILL_RUNNING", [Running()])
    tasks.leave_if_jobs_outlived(3)
    assert exits == [3]


def test_closing_while_a_folder_is_predicted_asks_then_stops_it(qtbot):
    win = MainWindow(restore_layout=False)
    qtbot.addWidget(win)
    win.confirm_close_during_training = lambda: True
    asked = []
    win.confirm_close_during_batch = lambda: asked.append(1) or len(asked) > 1  # "no", then "yes"
    win.show()
    bar = win.panel("Predictions").folder_bar
    bar.runner.start(lambda ctx: bar._stop.wait(60) and "stopped", on_done=lambda _result: None)
    qtbot.waitUntil(lambda: bar.busy, timeout=5000)
    assert not win.close() and bar.busy and win.isVisible()  # "no": it goes on
    assert win.close()  # "yes": stopped, then the window closes
    assert asked == [1, 1] and bar._stop.is_set() and not bar.busy


def test_recent_datasets_keep_folder_names_with_a_bar_and_stack_pairs(window, tmp_path, monkeypatch):
    """A stack pair was stored as "IMAGES|LABELS": a folder named "isbi|v2" came back as the
    pair isbi + v2 ("TIFF stack not found")."""
    barred, volume, labels = tmp_path / "isbi|v2", tmp_path / "vol.tif", tmp_path / "vol-labels.tif"
    barred.mkdir()
    volume.write_bytes(b"")
    labels.write_bytes(b"")
    (tmp_path / "old").mkdir()
    old_pair = f"{tmp_path / 'old'}|{labels}"  # as earlier versions wrote a pair
    for entry in (old_pair, f"{volume}\n{labels}", str(barred)):
        window.settings.add_recent("datasets", entry)
    panel, opened = window.panel("Dataset"), []
    monkeypatch.setattr(panel, "open_folder", lambda path: opened.append(("folder", str(path))))
    monkeypatch.setattr(panel, "open_stacks", lambda image, lab: opened.append(("stacks", str(image), str(lab))))
    window._fill_recent_datasets()
    actions = window.recent_datasets_menu.actions()
    assert [a.text() for a in actions] == [str(barred), f"{volume}  +  {labels}", f"{tmp_path / 'old'}  +  {labels}"]
    for action in actions:
        action.trigger()
    assert opened == [("folder", str(barred)), ("stacks", str(volume), str(labels)),
                      ("stacks", str(tmp_path / "old"), str(labels))]


def test_the_shortcuts_list_has_every_key_grouped_and_scrolls(window, monkeypatch):
    """F1 showed each action's first key only (no F5, Ctrl+., N/P, Ctrl+Shift+Z, hold Space), in an
    unaligned message box taller than the screen."""
    from app.ui import shortcuts_help

    shown = []
    monkeypatch.setattr(shortcuts_help.ShortcutsDialog, "exec", lambda dialog: shown.append(dialog) or 0)
    window.show_shortcuts()
    table = shown[0].table
    rows = [tuple(table.item(r, c).text() for c in range(3)) for r in range(table.rowCount())]
    keys = " ".join(r[1] for r in rows)
    for key in ("F5", "Ctrl+.", "Ctrl+Shift+Z", "Space (hold)", "F1"):
        assert key in keys, key
    areas = [r[0] for r in rows]
    assert areas == sorted(areas, key=lambda a: (a != "Window", a)) and "Review" in areas
    assert shown[0].height() <= 600
