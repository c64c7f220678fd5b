"""The Predictions panel's *Predict folder…*: the loaded model predicts a whole folder of images
into a new folder, in the background with progress and Stop, writing what ``segstudio predict``
writes (the clean-up with the settings on screen). A review can then be started from it."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLineEdit, QMessageBox, QProgressBar, QPushButton, QToolButton, QWidget)

from app.core.batch_predict import BatchError, BatchOutputs, batch_inputs, predict_folder

from .tasks import TaskRunner

TOOLTIP = ("Predict every image of a folder with this model into a new folder (masks, clean-up with the settings "
           "shown, overlays, probability maps), as segstudio predict does")


def _folder_row(edit: QLineEdit, title: str, parent: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    browse = QPushButton("Browse…")
    browse.clicked.connect(lambda: edit.setText(QFileDialog.getExistingDirectory(parent, title, edit.text())
                                                or edit.text()))
    row.addWidget(edit, 1)
    row.addWidget(browse)
    return row


def _expanded(text: str) -> str:
    text = text.strip()
    return str(Path(text).expanduser()) if text else ""


class PredictFolderDialog(QDialog):
    """Which folder to predict, where to write, and which files beside each mask."""

    def __init__(self, images: str, out: str, binary: bool, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Predict a folder")
        self.setMinimumWidth(560)
        form = QFormLayout(self)
        self.images = QLineEdit(images)
        self.images.setObjectName("batch_images")
        self.images.setPlaceholderText("a folder of images (it is only read)")
        form.addRow("Images", _folder_row(self.images, "Images to predict", self))
        self.out = QLineEdit(out)
        self.out.setObjectName("batch_out")
        self.out.setPlaceholderText("a new or empty folder, outside the images folder")
        form.addRow("Write to", _folder_row(self.out, "Write the masks to (a new or empty folder)", self))
        self.watershed = QCheckBox("Cleaned-up masks (NAME_watershed.png), with the settings shown")
        self.watershed.setChecked(True)
        self.overlay = QCheckBox("Overlays of the mask on the image (NAME_overlay.png)")
        self.probabilities = QCheckBox("Probability maps (NAME_probability.png): a review cleans these up")
        self.probabilities.setChecked(binary)
        self.probabilities.setEnabled(binary)
        if not binary:
            self.probabilities.setToolTip("Only for models with one foreground class")
        for box in (self.watershed, self.overlay, self.probabilities):
            form.addRow(box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Predict")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def problem(self) -> str:
        """Why the folders cannot be used as typed ('' when they can): both must be full paths."""
        for label, text in (("Images", self.images.text().strip()), ("Write to", self.out.text().strip())):
            if not text:
                return f"{label}: choose a folder"
            if not Path(text).expanduser().is_absolute():
                return f"{label}: give the folder's full path (Browse… picks one)"
        return ""

    def accept(self) -> None:
        problem = self.problem()
        if problem:
            QMessageBox.warning(self, "Predict a folder", problem)
            return
        super().accept()

    def values(self) -> tuple[str, str, BatchOutputs]:
        return (_expanded(self.images.text()), _expanded(self.out.text()),
                BatchOutputs(self.watershed.isChecked(), self.overlay.isChecked(), self.probabilities.isChecked()))


class FolderPredictionBar(QWidget):
    """*Predict folder…* with its progress bar and Stop button, for ``panel`` (which has
    ``predictor``, ``params()``, ``checkpoint_path()`` and ``show_banner``)."""

    finished = Signal(object)  # BatchResult

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel
        self.runner = TaskRunner("predict-folder", self)
        self._stop = threading.Event()  # Stop: the job ends after its image and still reports what it wrote
        self.last_result = None
        self.action = QAction("Predict folder…", self)
        self.action.triggered.connect(self.ask_and_start)
        button = QToolButton()
        button.setDefaultAction(self.action)
        self.progress = QProgressBar()
        self.progress.setObjectName("batch_progress")
        self.progress.setMaximumWidth(160)
        self.progress.setFormat("%v / %m images")
        self.progress.hide()
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the image being predicted; what was written stays")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (button, self.progress, self.stop_button):
            layout.addWidget(widget)
        self.runner.busyChanged.connect(self._on_busy)
        self.update_enabled()

    def update_enabled(self) -> None:
        loaded = self.panel.predictor is not None
        self.action.setEnabled(loaded and not self.runner.busy)
        self.action.setToolTip(TOOLTIP if loaded else "Predict a folder: open a checkpoint first")

    def ask(self, binary: bool) -> tuple[str, str, BatchOutputs] | None:
        settings = QSettings()
        images = str(settings.value("predictions/batch_images", "") or "")
        dialog = PredictFolderDialog(images, "", binary, self)
        try:
            if not dialog.exec():
                return None
            settings.setValue("predictions/batch_images", dialog.values()[0])
            return dialog.values()
        finally:
            dialog.deleteLater()  # kept until quit, it crashed the interpreter's teardown

    def ask_and_start(self) -> bool:
        predictor = self.panel.predictor
        if predictor is None or self.runner.busy:
            return False
        answer = self.ask(predictor.num_classes <= 2)
        return answer is not None and self.start(*answer)

    def start(self, images: str, out: str, outputs: BatchOutputs) -> bool:
        """Predict ``images`` into ``out`` in the background; False (with a banner) if it cannot start."""
        predictor, checkpoint = self.panel.predictor, self.panel.checkpoint_path()
        if predictor is None or checkpoint is None or self.runner.busy:
            return False
        if not (images.strip() and out.strip()):  # "" would be the working folder
            self.panel.show_banner("Cannot predict that folder: choose the images and the folder to write to",
                                   "error")
            return False
        try:
            total = len(batch_inputs(images, out))
        except BatchError as exc:
            self.panel.show_banner(f"Cannot predict that folder: {exc}", "error")
            return False
        params = self.panel.params()
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self._stop.clear()

        def job(ctx):
            return predict_folder(predictor, checkpoint, images, out, outputs, params, progress=ctx.progress,
                                  should_stop=lambda: ctx.cancelled or self._stop.is_set())

        self.runner.start(job, on_done=self._done, on_progress=lambda done, _total: self.progress.setValue(done),
                          on_failed=lambda message: self.panel.show_banner(
                              f"Predicting the folder failed: {message}", "error"))
        return True

    def _done(self, result) -> None:
        self.last_result = result
        done = f"Predicted {len(result.written)} of {result.total} images into {result.out}"
        if result.cancelled:
            done += " (stopped; predictions.json says how far it got)"
        if result.skipped:
            name, reason = Path(result.skipped[0]["path"]).name, result.skipped[0]["reason"]
            done += f". {len(result.skipped)} skipped, e.g. " + (reason if name in reason else f"{name}: {reason}")
        self.panel.show_banner(done + ".", "warning" if result.skipped or result.cancelled else "success")
        self.finished.emit(result)

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def _on_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.stop_button.setVisible(busy)
        self.stop_button.setEnabled(True)
        self.stop_button.setText("Stop")
        self.update_enabled()

    def stop(self) -> None:
        """Stop after the image being predicted; the files written so far stay, and are reported."""
        self._stop.set()
        self.stop_button.setEnabled(False)
        self.stop_button.setText("Stopping…")

    def shutdown(self) -> None:
        self.runner.shutdown()
