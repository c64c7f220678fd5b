"""The Training panel's file actions (:class:`TrainingDialogs`): exporting the curves, opening
the run folder, and continuing a stopped or finished run: pick its folder, then say how far to
train it (:class:`ContinueDialog`). A continued run keeps its own settings; only the number of
epochs, the time limit and the learning rate can change."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QPalette
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QLabel, QSpinBox

from app.core.config import EPOCHS_MAX
from app.core.training.continuation import Continuation, load_run
from app.core.training.run_folder import default_runs_dir

from .file_dialogs import ask_save_file
from .model_widgets import LearningRateSpinBox
from .training_export import write_history_csv, write_png
from .training_progress import format_duration


class ContinueDialog(QDialog):
    """How far to continue ``plan``'s run: until which epoch, within which time limit."""

    def __init__(self, plan: Continuation, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Continue run")
        self.setMinimumWidth(420)
        training = plan.config.training
        form = QFormLayout(self)
        done, planned = plan.epochs_done, training.epochs
        facts = QLabel(f"<b>{plan.run_dir.name}</b><br>{plan.config.model.name}, {plan.config.loss.name}, "
                       f"{plan.config.optimizer.name} — {done} of {planned} epochs trained in "
                       f"{format_duration(plan.seconds_done)}. It continues from its last checkpoint with its "
                       "own model, loss and data; only how long it trains and its learning rate can change here.")
        facts.setWordWrap(True)
        form.addRow(facts)
        self.epochs = QSpinBox()
        self.epochs.setObjectName("continue_epochs")
        self.epochs.setRange(done + 1, EPOCHS_MAX)  # as many as an experiment allows
        self.epochs.setValue(planned if planned > done else done + 10)
        self.epochs.setToolTip("Train until this epoch (the run has trained the ones before it)")
        form.addRow("Train until epoch", self.epochs)
        self.time_limit = QSpinBox()
        self.time_limit.setObjectName("continue_time_limit")
        self.time_limit.setRange(0, 10_000_000)
        self.time_limit.setSpecialValueText("none")
        self.time_limit.setSuffix(" s")
        used = int(plan.seconds_done + 0.5)
        limit = int(training.time_limit)
        self.time_limit.setValue(limit if not limit or limit > used else 0)
        self.time_limit.setToolTip(f"The run's whole training time, {used} s of which are used (0: no limit)")
        form.addRow("Time limit (whole run)", self.time_limit)
        rate = plan.config.optimizer.lr
        self.lr = LearningRateSpinBox()
        self.lr.setObjectName("continue_lr")
        self.lr.setValue(rate / 10 if plan.diverged else rate)
        self.lr.setToolTip(f"Base learning rate from here on (the run's: {rate:g}). The schedule is laid over "
                           "the new number of epochs, so a run that had decayed to the end of its schedule "
                           "picks up at the rate the longer schedule has at this point (a warm restart)")
        form.addRow("Learning rate", self.lr)
        if plan.failure:
            advice = (f" A tenth of its base learning rate {rate:g} ({rate / 10:g}) is proposed; another loss "
                      "needs a new run.") if plan.diverged else ""
            failure = plan.failure.rstrip(".") + "."
            self.warning = QLabel(f"It ended with a failure: {failure}{advice}")
            self.warning.setObjectName("continue_warning")
            self.warning.setWordWrap(True)
            self.warning.setStyleSheet("color: #b3261e;")
            form.addRow(self.warning)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Continue")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> tuple[int, float, float]:
        return self.epochs.value(), float(self.time_limit.value()), self.lr.value()


class TrainingDialogs:
    """The Training panel's file actions: exports, opening the run folder and continuing a run
    (tests replace the ``ask_*`` dialogs)."""

    def _on_run_moved(self, old: Path, new: Path | None) -> None:
        """The Runs panel renamed or deleted a run folder: follow it, or stop pointing at it
        (its label, Open folder and the export's default folder)."""
        if self.run_dir is None or self.session.running or Path(self.run_dir).absolute() != Path(old).absolute():
            return
        if new is not None:
            self._set_run_dir(new)
            return
        self.run_dir = None
        self.run_label.setText(f"{old} (deleted)")
        self.open_run_button.setEnabled(False)

    def export_csv(self, path: str | Path) -> Path:
        """Write the epoch history as CSV (atomically)."""
        return write_history_csv(path, self._history)

    def export_png(self, path: str | Path, size: tuple[int, int] | None = None) -> Path:
        """Save an image of the plots as PNG (atomically), laid out at ``size`` (default: the
        on-screen size, at least 1200×800 so a small window still gives a readable figure)."""
        self.redraw()
        width, height = size or (max(1200, self.plots.width()), max(800, self.plots.height()))
        image = self.plots.render_image(int(width), int(height), self.palette().color(QPalette.ColorRole.Base))
        return write_png(path, image)

    def _open_run_folder(self) -> None:
        if self.run_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.run_dir)))


    def continue_run_dialog(self, folder: Path | None = None) -> bool:
        """Ask which run to continue (unless ``folder`` is given) and how far, then continue it."""
        if self.refuse_while_training():  # before any question, not after it
            return False
        folder = folder or self.ask_run_to_continue()
        if folder is None:
            return False
        try:
            plan = load_run(folder)
        except ValueError as exc:
            self.show_banner(f"Cannot continue that run: {exc}", "error")
            return False
        answer = self.ask_continue(plan)
        return answer is not None and self.continue_run(folder, *answer)

    def ask_run_to_continue(self) -> Path | None:
        start = str(self.runs_parent or default_runs_dir())
        folder = QFileDialog.getExistingDirectory(self, "Continue which run? (its folder)", start)
        return Path(folder) if folder else None

    def ask_continue(self, plan: Continuation) -> tuple[int, float, float] | None:
        dialog = ContinueDialog(plan, self)
        return dialog.values() if dialog.exec() else None

    def _default_export_path(self, suffix: str) -> str:
        folder = self.run_dir or Path.home()
        return str(folder / f"training-curves{suffix}")

    def _export_csv_dialog(self) -> None:
        path = ask_save_file(self, "Export training history", self._default_export_path(".csv"), "CSV files (*.csv)",
                             "csv")
        if path:
            self._export_with_banner(self.export_csv, path)

    def _export_png_dialog(self) -> None:
        path = ask_save_file(self, "Export plots", self._default_export_path(".png"), "PNG images (*.png)", "png")
        if path:
            self._export_with_banner(self.export_png, path)

    def _export_with_banner(self, export, path: str) -> None:
        try:
            written = export(path)
        except OSError as exc:
            self.show_banner(f"Could not export to {path}: {exc}", "error")
            return
        self._log(f"exported {written}")
