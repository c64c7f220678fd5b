"""Save dialogs that never replace a file without asking.

Qt's save dialog asks before replacing the file the user typed, but a name typed without its
extension only gets one after the dialog closed, and files written beside it (a figure next to
its data) are never mentioned. These helpers add the extension inside the dialog, so its own
question is about the real file, and ask once more about any companion file that would be
replaced.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget


def filter_suffix(file_filter: str) -> str:
    """The extension (no dot) of a filter's first pattern: ``"CSV files (*.csv)"`` → ``"csv"``."""
    match = re.search(r"\*\.(\w+)", file_filter)
    return match.group(1) if match else ""


def save_dialog(parent: QWidget | None, caption: str, default: str | Path, file_filter: str,
                suffix: str) -> QFileDialog:
    """A save dialog that appends ``suffix`` (no dot) to a name typed without one."""
    dialog = QFileDialog(parent, caption, str(default), file_filter)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    dialog.setDefaultSuffix(suffix)
    return dialog


def confirm_replacing(parent: QWidget | None, paths: Iterable[Path]) -> bool:
    """Ask before replacing the files of ``paths`` that exist; True when none do or the user agrees."""
    existing = [Path(p) for p in paths if Path(p).exists()]
    if not existing:
        return True
    names = "\n".join(str(p) for p in existing)
    answer = QMessageBox.question(parent, "Replace files?", f"These files will be replaced:\n\n{names}\n\nReplace them?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_save_file(parent: QWidget | None, caption: str, default: str | Path, file_filter: str, suffix: str,
                  companions: Callable[[Path], Iterable[Path]] = lambda path: ()) -> str | None:
    """The path to save to, or None (cancelled). ``companions(path)`` names the files written
    beside it; any that exist are confirmed unless the chosen file itself was being replaced
    (the dialog asked about that one, and its companions belong to it)."""
    dialog = save_dialog(parent, caption, default, file_filter, suffix)
    if not dialog.exec() or not dialog.selectedFiles():
        return None
    path = Path(dialog.selectedFiles()[0])
    if not path.exists() and not confirm_replacing(parent, companions(path)):
        return None
    return str(path)
