"""Opening a file given on the command line (a file manager's "Open with SegStudio")."""

import json
import os
import subprocess
import sys

import pytest
from PySide6.QtWidgets import QMessageBox

import app.cli as cli
import app.ui.main_window as main_window
from app.core.config import ExperimentConfig


@pytest.fixture
def experiment(tmp_path):
    config = ExperimentConfig(name="associated")
    config.training.epochs = 7
    return config.save(tmp_path / "associated.json")


@pytest.fixture
def launched(monkeypatch, qapp, qtbot):
    """Run ``main_window.run`` in-process until its window is shown; the windows it made. The
    event loop is run by qtbot instead of ``exec()``, so the tests' QApplication never quits."""
    windows, shown = [], []

    class RecordingWindow(main_window.MainWindow):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            qtbot.addWidget(self)
            windows.append(self)
            self.shown.connect(lambda: shown.append(self))  # before run()'s own slots, so they ran too

    def run_until_shown():
        qtbot.waitUntil(lambda: bool(shown), timeout=60000)
        return 0

    monkeypatch.setattr(main_window, "MainWindow", RecordingWindow)
    monkeypatch.setattr(qapp, "exec", run_until_shown)
    return windows


def test_a_path_argument_opens_the_window_with_it_and_commands_stay_commands(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(cli, "launch_gui", lambda argv=None, review=None, open_path=None: calls.append(open_path) or 0)
    (tmp_path / "exp.json").write_text("{}")
    assert cli.main([str(tmp_path / "exp.json")]) == 0
    assert cli.main(["relative/missing.json"]) == 0  # missing files too: the window says why
    assert calls == [str(tmp_path / "exp.json"), "relative/missing.json"]
    assert cli.main(["runs", str(tmp_path)]) == 0 and len(calls) == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["trian"])  # a mistyped command is an error, not a file
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_run_opens_the_experiment_file(qtbot, launched, experiment):
    assert main_window.run([], None, str(experiment)) == 0
    window = launched[0]
    assert window.state.config.name == "associated" and window.state.config.training.epochs == 7
    assert window.state.config_path == experiment
    assert window.settings.recent("experiments")[0] == str(experiment)


def test_an_unreadable_file_is_reported_in_the_window_and_the_app_keeps_running(qtbot, launched, tmp_path,
                                                                                monkeypatch):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: warnings.append((parent, title, text)))
    assert main_window.run([], None, str(bad)) == 0
    window = launched[0]
    assert warnings and warnings[0][0] is window and warnings[0][1] == "Cannot open experiment"
    assert str(bad) in warnings[0][2] and "not valid JSON" in warnings[0][2]
    assert window.state.config.name == "demo-unet"  # the first-launch experiment is kept


def launch_subprocess(args, tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SEGSTUDIO_EXIT_AFTER_SHOW": "1",
           "SEGSTUDIO_DATA_DIR": str(tmp_path / "user")}
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "window shown after" in result.stdout
    # The window saves the experiment it had open when it closes.
    return json.loads((tmp_path / "user" / "last_experiment.json").read_text())


def test_segstudio_gui_file_opens_it_after_qt_takes_its_own_options(tmp_path, experiment):
    code = "import sys; from app.cli import gui_main; sys.exit(gui_main())"
    saved = launch_subprocess(["-c", code, "-platform", "offscreen", str(experiment)], tmp_path)
    assert saved["name"] == "associated"


def test_segstudio_file_opens_it(tmp_path, experiment):
    saved = launch_subprocess(["-m", "app", str(experiment)], tmp_path)
    assert saved["name"] == "associated" and saved["training"]["epochs"] == 7


def test_the_splash_card_is_drawn_and_skipped_where_there_is_no_screen(qapp):
    from app.ui.resources import show_splash, splash_pixmap

    card = splash_pixmap()
    assert not card.isNull() and card.width() > card.height() > 100
    image = card.toImage()
    assert image.pixelColor(5, 5).name() == "#1f2a36"  # the card's background, drawn
    assert qapp.platformName() == "offscreen" and show_splash(qapp) is None
