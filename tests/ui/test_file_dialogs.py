"""Save dialogs add the extension themselves and ask before replacing companion files."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.ui import file_dialogs
from app.ui.file_dialogs import ask_save_file, confirm_replacing, save_dialog


def test_the_save_dialog_adds_the_extension_and_asks_about_the_real_file(qtbot, tmp_path):
    dialog = save_dialog(None, "Save", tmp_path / "landscape.npz", "Loss landscapes (*.npz)", "npz")
    qtbot.addWidget(dialog)
    assert dialog.acceptMode() == QFileDialog.AcceptMode.AcceptSave
    assert dialog.defaultSuffix() == "npz"
    assert not dialog.testOption(QFileDialog.Option.DontConfirmOverwrite)


def test_companions_that_exist_are_confirmed(qtbot, tmp_path, monkeypatch):
    asked = []
    answer = [QMessageBox.StandardButton.No]
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: asked.append(args[2]) or answer[0])
    figure = tmp_path / "mine.png"
    assert confirm_replacing(None, [figure]) and not asked  # nothing there: nothing to ask
    figure.write_bytes(b"a picture the user made")
    assert not confirm_replacing(None, [figure]) and str(figure) in asked[0]
    answer[0] = QMessageBox.StandardButton.Yes
    assert confirm_replacing(None, [figure])


class FakeDialog:
    def __init__(self, chosen):
        self.chosen = chosen

    def exec(self):
        return 1

    def selectedFiles(self):  # noqa: N802 (Qt's name)
        return [str(self.chosen)]


def test_ask_save_file_checks_companions_only_for_a_new_file(qtbot, tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: asked.append(args[2]) or QMessageBox.StandardButton.No)
    npz, png = tmp_path / "foo.npz", tmp_path / "foo.png"
    png.write_bytes(b"someone else's figure")
    monkeypatch.setattr(file_dialogs, "save_dialog", lambda *args: FakeDialog(npz))
    companions = lambda path: [path.with_suffix(".png")]  # noqa: E731
    assert ask_save_file(None, "Save", npz, "*.npz", "npz", companions) is None  # declined: nothing chosen
    assert len(asked) == 1 and str(png) in asked[0]
    npz.write_bytes(b"an older landscape")  # replacing the landscape itself: the dialog asked already
    assert ask_save_file(None, "Save", npz, "*.npz", "npz", companions) == str(npz)
    assert len(asked) == 1


def test_every_save_dialog_of_the_window_adds_its_extension(qtbot, monkeypatch, state, tmp_path):
    """Save As, the Training panel's exports, and the Runs and Sweeps panels' exports wrote a name
    typed without an extension as it was (an experiment "exp" that File → Open then did not list)."""
    from app.ui import experiment_files, runs_dialogs, sweep_panel, training_file_actions
    from app.ui.file_dialogs import filter_suffix
    from app.ui.settings import AppSettings

    assert [filter_suffix(f) for f in ("CSV files (*.csv)", "PNG images (*.png)", "All files (*)")] == \
        ["csv", "png", ""]
    asked = []

    def fake(parent, caption, default, file_filter, suffix, companions=None):
        asked.append(suffix)
        return None

    for module in (experiment_files, runs_dialogs, sweep_panel, training_file_actions):
        monkeypatch.setattr(module, "ask_save_file", fake)
    files = experiment_files.ExperimentFiles(state, AppSettings(tmp_path / "s.ini"), None)
    assert files.save_as() is False and asked == ["json"]
    training = training_file_actions.TrainingDialogs()
    training.run_dir = None
    training._export_csv_dialog()
    training._export_png_dialog()
    assert asked == ["json", "csv", "png"]
    assert runs_dialogs.RunsDialogHooks.ask_save_path(None, "Export", "runs.csv", "CSV files (*.csv)") is None
    assert asked[-1] == "csv"
    panel = sweep_panel.SweepPanel(state)
    qtbot.addWidget(panel)
    assert panel.ask_save_path("Export", str(tmp_path / "r.csv"), "CSV files (*.csv)") is None
    assert asked[-1] == "csv"
    panel.shutdown()


def test_save_as_names_the_experiment_after_its_file(qtbot, monkeypatch, state, tmp_path):
    """Save As "lesion_focal.json" kept the name "demo-unet": runs were called …-demo-unet."""
    import json

    from app.ui import experiment_files
    from app.ui.settings import AppSettings

    monkeypatch.setattr(experiment_files, "ask_save_file", lambda *args, **kwargs: str(tmp_path / "lesion_focal.json"))
    files = experiment_files.ExperimentFiles(state, AppSettings(tmp_path / "s.ini"), None)
    assert files.save_as()
    assert state.config.name == "lesion_focal" and state.config_path == tmp_path / "lesion_focal.json"
    assert json.loads((tmp_path / "lesion_focal.json").read_text())["name"] == "lesion_focal" and not state.dirty
