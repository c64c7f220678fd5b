"""Dialogs of the review workspace: a new review (from folders or from a run's checkpoint),
the export's folder and format, the clean-up settings, and the panel's questions
(:class:`ReviewDialogHooks`, which tests replace)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QMessageBox, QPushButton, QRadioButton, QStackedWidget, QVBoxLayout, QWidget)

from app.core.paths import user_data_dir
from app.core.postprocess import POSTPROCESS_PARAMS, WatershedParams

from .param_form import ParamForm


class PathField(QWidget):
    """A line edit with a Browse button for a folder or a file."""

    def __init__(self, caption: str, pick_file: str | None = None, parent=None):
        super().__init__(parent)
        self.caption, self.pick_file = caption, pick_file
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(caption)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        layout.addWidget(self.edit, 1)
        layout.addWidget(browse)

    def _browse(self) -> None:
        start = self.edit.text() or str(Path.home())
        if self.pick_file:
            path, _ = QFileDialog.getOpenFileName(self, self.caption, start, self.pick_file)
        else:
            path = QFileDialog.getExistingDirectory(self, self.caption, start)
        if path:
            self.edit.setText(path)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming
        self.edit.setText(text)


def default_review_folder(images: str) -> str:
    """A new folder under the user's reviews folder, named after the images folder."""
    base = user_data_dir() / "reviews"
    stem = Path(images).name or "review"
    candidate, n = base / stem, 2
    while candidate.exists():
        candidate, n = base / f"{stem}-{n}", n + 1
    return str(candidate)


class NewReviewDialog(QDialog):
    """Where the cases come from and where the review is kept."""

    def __init__(self, checkpoint: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("New review")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        self.from_folders = QRadioButton("Predicted masks I already have (paired with the images by file name)")
        self.from_run = QRadioButton("Predict the images now with a run's checkpoint")
        self.from_folders.setChecked(not checkpoint)
        self.from_run.setChecked(bool(checkpoint))
        layout.addWidget(self.from_folders)
        layout.addWidget(self.from_run)
        form = QFormLayout()
        self.images = PathField("Folder of images")
        form.addRow("Images", self.images)
        self.source_stack = QStackedWidget()
        self.masks = PathField("Folder of predicted masks")
        self.checkpoint = PathField("Checkpoint", "Checkpoints (*.pt)")
        self.checkpoint.setText(checkpoint)
        self.source_stack.addWidget(self.masks)
        self.source_stack.addWidget(self.checkpoint)
        self.source_label = QLabel("Masks")
        form.addRow(self.source_label, self.source_stack)
        self.review = PathField("New or empty folder for the review")
        form.addRow("Review folder", self.review)
        layout.addLayout(form)
        note = QLabel("The review keeps its decisions and corrected masks in its own folder; the images and "
                      "predicted masks are only read, never changed.")
        note.setWordWrap(True)
        layout.addWidget(note)
        self.error = QLabel()
        self.error.setStyleSheet("color: #e53935;")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create review")
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.from_run.toggled.connect(self._source_kind)
        self.images.edit.textChanged.connect(self._suggest_folder)
        self._suggested = ""
        self._source_kind()

    def _source_kind(self) -> None:
        run = self.from_run.isChecked()
        self.source_stack.setCurrentIndex(1 if run else 0)
        self.source_label.setText("Checkpoint" if run else "Masks")

    def _suggest_folder(self, images: str) -> None:
        if not self.review.text() or self.review.text() == self._suggested:
            self._suggested = default_review_folder(images) if images else ""
            self.review.setText(self._suggested)

    def values(self) -> dict:
        run = self.from_run.isChecked()
        return {"kind": "checkpoint" if run else "folders", "images": self.images.text(),
                "masks": "" if run else self.masks.text(), "checkpoint": self.checkpoint.text() if run else "",
                "review": self.review.text()}

    def _check(self) -> None:
        v = self.values()
        missing = [label for key, label in (("images", "the images folder"), ("review", "the review folder"))
                   if not v[key]]
        if v["kind"] == "folders" and not v["masks"]:
            missing.append("the masks folder")
        if v["kind"] == "checkpoint" and not v["checkpoint"]:
            missing.append("the checkpoint")
        if missing:
            self.error.setText("Please choose " + ", ".join(missing) + ".")
            return
        self.accept()


class ExportDialog(QDialog):
    """The export's folder and mask format."""

    def __init__(self, folder: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export review")
        self.setMinimumWidth(480)
        form = QFormLayout(self)
        self.folder = PathField("Folder for the masks and the report")
        self.folder.setText(folder)
        form.addRow("Export to", self.folder)
        self.format = QComboBox()
        self.format.addItem("PNG (8-bit, 0/255)", "png")
        self.format.addItem("TIFF (8-bit, 0/255)", "tiff")
        form.addRow("Mask format", self.format)
        note = QLabel("Writes the accepted and corrected masks (named like their images), review_report.csv and "
                      "a printable review_summary.html.")
        note.setWordWrap(True)
        form.addRow(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(lambda: self.accept() if self.folder.text() else None)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> tuple[str, str]:
        return self.folder.text(), self.format.currentData()


def ask_which_mask(parent) -> str | None:
    """Accepting a corrected case while its prediction is on screen: ``"correction"`` (accept the
    correction), ``"discard"`` (drop it and accept what is shown) or None (cancel)."""
    box = QMessageBox(QMessageBox.Icon.Question, "Accept which mask?",
                      "This case has a correction, but the uncorrected mask is on screen.", parent=parent)
    keep = box.addButton("Accept the correction", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Discard the correction, accept this", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.exec()
    return "correction" if box.clickedButton() is keep else "discard" if box.clickedButton() is discard else None


class CleanupDialog(QDialog):
    """The review's watershed clean-up settings: what the "After watershed" view shows and what
    a case accepted on it exports. Only shown, not changeable, while accepted cases export the
    current clean-up (``exports``) or the review is open read-only."""

    def __init__(self, params: WatershedParams, exports: list[str], parent=None, read_only: bool = False):
        super().__init__(parent)
        self.setWindowTitle("Clean-up settings")
        self.setMinimumWidth(420)
        layout = QVBoxLayout(self)
        self.form = ParamForm(POSTPROCESS_PARAMS, params.to_dict())
        self.form.setObjectName("review_cleanup_form")
        layout.addWidget(self.form)
        self.note = QLabel()
        self.note.setWordWrap(True)
        if read_only:
            self.note.setText("This review is open read-only here: its settings can be looked at, not changed.")
        elif exports:
            names = ", ".join(exports[:5]) + (" …" if len(exports) > 5 else "")
            self.note.setText(f"<b>Locked:</b> {len(exports)} accepted case(s) export the watershed mask made with "
                              f"these settings ({names}). Accept them on the prediction or set them back to "
                              "undecided to change the clean-up.")
        else:
            self.note.setText("Applies to every case of this review; the case on screen is cleaned up again from "
                              "its stored prediction.")
        layout.addWidget(self.note)
        locked = read_only or bool(exports)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            lambda: self.form.set_values(WatershedParams().to_dict()))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        for button in (QDialogButtonBox.StandardButton.Ok, QDialogButtonBox.StandardButton.RestoreDefaults):
            buttons.button(button).setVisible(not locked)
        if locked:
            buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Close")
        self.form.set_read_only(locked)
        self.locked = locked
        layout.addWidget(buttons)

    def params(self) -> WatershedParams:
        return WatershedParams.from_dict(self.form.values())


class ReviewDialogHooks:
    """The Review panel's questions to the user, each a modal dialog (tests replace them)."""

    def ask_read_only(self, message: str, title: str = "Review in use") -> bool:
        answer = QMessageBox.question(self, title, f"{message}\n\nOpen it read-only?",
                                      QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Open

    def ask_new_review(self) -> dict | None:
        checkpoint = str(self.state.checkpoint) if self.state is not None and getattr(self.state, "checkpoint", None) else ""
        dialog = NewReviewDialog(checkpoint, self)
        return dialog.values() if dialog.exec() else None

    def ask_accept_corrected(self) -> str | None:
        """``"correction"``, ``"discard"`` or None (cancel): see :func:`ask_which_mask`."""
        return ask_which_mask(self)

    def ask_revert(self) -> bool:
        answer = QMessageBox.question(self, "Revert to prediction",
                                      "Drop this case's correction? Its edits cannot be brought back.",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def ask_review_folder(self) -> str | None:
        return QFileDialog.getExistingDirectory(self, "Open review folder") or None

    def ask_export(self) -> tuple[str, str] | None:
        dialog = ExportDialog(str(self.settings.value("review/export_folder", "") or ""), self)
        return dialog.values() if dialog.exec() else None

    def ask_overwrite(self, conflicts: str) -> bool:
        """Whether the files ``conflicts`` describes (see ``describe_conflicts``) may be replaced
        or removed."""
        answer = QMessageBox.question(self, "Replace files?", f"{conflicts} Go on?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def ask_cleanup(self, params: WatershedParams, exports: list[str], read_only: bool = False
                    ) -> WatershedParams | None:
        """New clean-up settings, or None (cancelled, or only shown: locked or read-only)."""
        dialog = CleanupDialog(params, exports, self, read_only)
        return dialog.params() if dialog.exec() and not dialog.locked else None
