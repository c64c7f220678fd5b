"""The Runs panel's questions to the user and its file-manager call (:class:`RunsDialogHooks`;
tests replace them)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMessageBox

from .file_dialogs import ask_save_file, filter_suffix


class RunsDialogHooks:
    """Modal dialogs of the Runs panel, one method each."""

    def ask_folder(self, caption: str, start: str) -> str | None:
        return QFileDialog.getExistingDirectory(self, caption, start) or None

    def ask_new_name(self, current: str) -> str | None:
        name, ok = QInputDialog.getText(self, "Rename run", "New name of the run folder:", QLineEdit.EchoMode.Normal,
                                        current)
        return name if ok else None

    def ask_confirm_delete(self, names: list[str]) -> bool:
        listed = "\n".join(f"• {name}" for name in names[:15]) + (f"\n… and {len(names) - 15} more"
                                                                  if len(names) > 15 else "")
        answer = QMessageBox.question(
            self, "Delete runs", f"Delete {len(names)} run folder{'s' if len(names) > 1 else ''} and everything in "
            f"them (checkpoints, history, log)? This cannot be undone.\n\n{listed}",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def ask_save_path(self, caption: str, default: str, filter: str) -> str | None:  # noqa: A002 - Qt's word
        return ask_save_file(self, caption, default, filter, filter_suffix(filter))  # a typed name gets .csv

    def reveal_path(self, path: Path) -> None:
        """Open ``path`` in the system's file manager."""
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
