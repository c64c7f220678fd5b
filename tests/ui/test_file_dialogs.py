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
