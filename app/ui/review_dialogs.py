"""Dialogs of the review workspace: a new review (from folders or from a run's checkpoint),
the reviewer's name, and the export's folder and format."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QMessageBox, QPushButton, QRadioButton, QStackedWidget, QVBoxLayout, QWidget)

from app.core.paths import user_data_dir


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
