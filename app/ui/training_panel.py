"""The training panel: start, pause and stop a run, follow its progress and live curves, export them.

The run itself lives in a :class:`~app.ui.training_worker.TrainingSession` (its own thread).
Incoming data is only stored when it arrives; a single-shot timer redraws the plots at most
every :data:`REDRAW_MS` milliseconds, so a fast model cannot slow the window down. Per-step
losses stay memory-bounded: past :data:`MAX_STEP_POINTS` points every second one is dropped
and later steps are kept at the same stride. The plot grid, the run bookkeeping, the exports
and the small widgets live in ``training_plots``, ``training_progress``, ``training_export`` and
``training_controls``; this module composes and wires them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QSplitter, QVBoxLayout, QWidget

from app.core.config import ConfigError
from app.core.training.continuation import plan_continuation
from app.core.training.run_folder import default_runs_dir, new_run_dir

from . import training_progress
from .state import ExperimentState
from .training_file_actions import TrainingDialogs
from .training_controls import (BANNER_STYLES, banner_label, commit_pending_edit, continue_action, control_actions,
                                export_buttons, log_scale_check, run_folder_row, run_log, run_progress_bar,
                                start_tooltip, tool_button)
from .training_plots import EPOCH_PLOTS, TrainingPlots, marker_texts
from .training_progress import MAX_STEP_POINTS, RunProgress, epoch_text, format_duration, summary_text
from .training_worker import StepBatch, TrainingSession

__all__ = ["MAX_STEP_POINTS", "REDRAW_MS", "RunProgress", "StepSeries", "TrainingPanel", "commit_pending_edit",
           "format_duration"]

REDRAW_MS = 250  # plots are redrawn at most this often
STAGGER_MS = 30  # after an epoch, the next per-epoch plot is updated this much later
FAILURE_TITLES = {"nan": "Training stopped", "out of memory": "Out of memory", "data": "Data problem",
                  "settings": "Settings problem", "error": "Training failed"}  # ("nan": the message says diverged)


class StepSeries(training_progress.StepSeries):
    """A :class:`~app.ui.training_progress.StepSeries` bounded by this module's
    :data:`MAX_STEP_POINTS` (read on every append, so setting it here takes effect)."""

    @property
    def max_points(self) -> int:
        return MAX_STEP_POINTS


class TrainingPanel(TrainingDialogs, QWidget):
    """Run control, progress, live loss/accuracy/IoU curves and export of one training run."""

    title = "Training"
    historyChanged = Signal()  # an epoch finished or the curves were cleared

    def __init__(self, state: ExperimentState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.state = state
        self.session = TrainingSession(self)
        self._runs_parent: Path | None = None
        self.run_dir: Path | None = None
        self.last_outcome = None  # the Finished or Failed event of the last run
        self._history: list = []
        self._series = StepSeries()
        self._progress: RunProgress | None = None
        self._steps_dirty = self._epochs_dirty = False
        self._stopping = False
        self._closed = False
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self._redraw)
        self._pending_plots: list[str] = []
        self._build_actions()
        self._build_ui()
        self._connect()
        self._apply_palette()
        self._update_actions()
        self._update_exports()
        self._refresh_tooltips()

    # -- construction ------------------------------------------------------------------------
    def _build_actions(self) -> None:
        self.start_action, self.pause_action, self.stop_action = control_actions(self)
        self.continue_action = continue_action(self)

    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(self._build_controls())
        self.banner = banner_label()
        self.banner_kind = ""
        layout.addWidget(self.banner)
        self.progress = run_progress_bar()
        layout.addWidget(self.progress)
        run_row, self.run_label, self.open_run_button = run_folder_row()
        layout.addLayout(run_row)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self._build_plots())
        self.log = run_log()
        self.splitter.addWidget(self.log)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 1)
        layout.addWidget(self.splitter, 1)

    def _build_controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.start_button, self.pause_button, self.stop_button, self.continue_button = (
            tool_button(a, n) for a, n in ((self.start_action, "trainButton"),
                                           (self.pause_action, "pauseButton"),
                                           (self.stop_action, "stopButton"),
                                           (self.continue_action, "continueButton")))
        for button in (self.start_button, self.pause_button, self.stop_button, self.continue_button):
            row.addWidget(button)
        row.addSpacing(12)
        self.log_scale = log_scale_check()
        row.addWidget(self.log_scale)
        row.addStretch(1)
        self.export_csv_button, self.export_png_button = export_buttons()
        row.addWidget(self.export_csv_button)
        row.addWidget(self.export_png_button)
        return row

    def _build_plots(self) -> TrainingPlots:
        """The plot grid; its plots, curves and markers are also reachable from the panel."""
        self.plots = TrainingPlots(self.palette())
        self.plot_loss, self.plot_accuracy = self.plots.plot_loss, self.plots.plot_accuracy
        self.plot_overlap, self.plot_steps = self.plots.plot_overlap, self.plots.plot_steps
        self.curves = self.plots.curves
        self.markers, self.marker_labels = self.plots.markers, self.plots.marker_labels
        return self.plots

    def _connect(self) -> None:
        self.start_action.triggered.connect(self.start)
        self.pause_action.toggled.connect(self._on_pause_toggled)
        self.stop_action.triggered.connect(self.stop)
        self.continue_action.triggered.connect(self.continue_run_dialog)
        self.log_scale.toggled.connect(self._on_log_scale)
        self.export_csv_button.clicked.connect(self._export_csv_dialog)
        self.export_png_button.clicked.connect(self._export_png_dialog)
        self.open_run_button.clicked.connect(self._open_run_folder)
        s = self.session
        s.runStarted.connect(self._on_run_started)
        s.stepsReady.connect(self._on_steps)
        s.epochFinished.connect(self._on_epoch)
        s.checkpointSaved.connect(self._on_checkpoint)
        s.warning.connect(self._on_warning)
        s.finished.connect(self._on_finished)
        s.failed.connect(self._on_failed)
        s.runningChanged.connect(self._on_running_changed)
        s.pausedChanged.connect(self._on_paused_changed)
        self.state.configChanged.connect(lambda *_: self._refresh_tooltips())
        self.state.datasetChanged.connect(self._refresh_tooltips)
        self.state.trainingChanged.connect(lambda _running: self._update_actions())
        self.state.splitsChanged.connect(lambda *_: self._refresh_tooltips())
        self.state.runMoved.connect(self._on_run_moved)

    # -- look ----------------------------------------------------------------------------------
    def _apply_palette(self) -> None:
        """Plot background and text follow the application palette (light or dark theme)."""
        self.plots.apply_palette(self.palette())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _refresh_tooltips(self) -> None:
        tip = start_tooltip(self.state.config, self.runs_parent or default_runs_dir(), self.state.dataset)
        self.start_action.setToolTip(tip)
        self.start_action.setStatusTip(tip)

    # -- public API ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.session.running

    @property
    def runs_parent(self) -> Path | None:
        """Where new run folders are created; None: the user's runs folder."""
        return self._runs_parent

    @runs_parent.setter
    def runs_parent(self, folder: str | Path | None) -> None:
        self._runs_parent = Path(folder) if folder else None
        self._refresh_tooltips()

    @property
    def history(self) -> list:
        """The :class:`~app.core.training.events.EpochFinished` events of the current run."""
        return list(self._history)

    def step_losses(self) -> tuple[np.ndarray, np.ndarray]:
        """Global step numbers and training losses received (decimated past ``MAX_STEP_POINTS``)."""
        return self._series.steps.copy(), self._series.losses.copy()

    def refuse_while_training(self) -> bool:
        """True, with a banner saying why, while a run trains here or a sweep holds the experiment."""
        if self.session.running:
            self.show_banner("A run is training now; continue another one when it has ended, or stop it.", "warning")
        elif self.state.training:
            self.show_banner("A sweep is running; wait for it or stop it in the Sweeps panel.", "warning")
        return self.session.running or self.state.training

    def start(self) -> bool:
        """Start a run of the current experiment; False (with a banner saying why) if it cannot."""
        if self.session.running or self._closed:
            return False
        if self.refuse_while_training():  # a sweep (Sweeps panel) holds the experiment
            return False
        commit_pending_edit()
        if self.state.dataset is None:
            self.show_banner("Load a dataset first: training needs images and masks.", "warning")
            return False
        if not self.state.dataset_matches_config():
            self.show_banner("The experiment's data settings are not those of the loaded dataset: it may still be "
                             "loading, or its last load failed (see the Dataset panel). Wait for it to load, "
                             "then train.", "warning")
            return False
        if not self.state.dataset.split("train"):
            self.show_banner("No training images: every sample is in val or test. Move some to train in the "
                             "Dataset panel.", "warning")
            return False
        try:
            config = self.state.snapshot()
        except ConfigError as exc:
            self.show_banner(f"The experiment has an invalid setting: {exc}", "error")
            return False
        try:
            run_dir = new_run_dir(config.name, parent=self.runs_parent)
        except OSError as exc:
            self.show_banner(f"Cannot create the run folder: {exc}", "error")
            return False
        self._begin(config, run_dir, self.state.dataset, RunProgress(config.training.epochs, config.training.time_limit),
                    f"run started: {config.name}, {config.training.epochs} epochs → {run_dir}")
        return True

    def continue_run(self, run_dir: str | Path, epochs: int | None = None, time_limit: float | None = None,
                     lr: float | None = None) -> bool:
        """Continue the run in ``run_dir`` from its last.pt with its own settings (only the epochs,
        the time limit and the learning rate can change), its curves so far on screen; its data
        are loaded in the training thread. False (with a banner saying why) if it cannot."""
        if self._closed or self.refuse_while_training():
            return False
        try:
            plan = plan_continuation(run_dir, epochs, time_limit, lr)
        except ValueError as exc:
            self.show_banner(f"Cannot continue {Path(run_dir).name}: {exc}", "error")
            return False
        epochs = plan.config.training.epochs
        self._begin(plan.config, plan.run_dir, None, RunProgress(epochs, plan.time_left),
                    f"continuing {plan.run_dir.name} from epoch {plan.epochs_done + 1} to {epochs}",
                    plan.history)
        return True

    def _begin(self, config, run_dir: Path, dataset, progress: RunProgress, message: str,
               history: list | None = None) -> None:
        """Start the session: a new run (``history`` None) or a continued one with its epochs so far."""
        self.clear()
        if history:
            self._history = list(history)
            self._epochs_dirty = True
            self.redraw()
            self.historyChanged.emit()
        self._set_run_dir(run_dir)
        self._progress = progress
        self._stopping = False
        self.last_outcome = None
        self.hide_banner()
        self.progress.setRange(0, 0)
        self.progress.setFormat("Starting… (loading PyTorch and preparing the data)")
        self._log(message)
        self.state.set_training(True, run_dir)
        self.session.start(config, dataset, run_dir=run_dir, resume=history is not None)

    def stop(self) -> None:
        """Ask the run to stop after the current step (it saves last.pt and ends)."""
        if not self.session.running or self._stopping:
            return
        self._stopping = True
        self.session.stop()
        self.progress.setFormat("Stopping… (saving the checkpoint)")
        self._log("stop requested")
        self._update_actions()

    def pause(self) -> None:
        if self.session.running and not self.session.paused and not self._stopping:
            self.session.pause()

    def resume(self) -> None:
        if self.session.running and self.session.paused:
            self.session.resume()

    def clear(self) -> None:
        """Forget the curves and history (a new run starts)."""
        self._history = []
        self._series.clear()
        self._epochs_dirty = self._steps_dirty = True
        self.redraw()
        self.historyChanged.emit()

    def redraw(self) -> None:
        """Draw whatever arrived since the last redraw, all at once."""
        self._redraw(stagger=False)

    def _redraw(self, stagger: bool = True) -> None:
        """The timer's redraw. With ``stagger``, the three per-epoch plots are updated one per
        event-loop turn, so their repaints (tens of milliseconds each on a software-rendered
        screen) never add up to one long stall of the window."""
        self._redraw_timer.stop()
        if self._steps_dirty:
            self._steps_dirty = False
            self.plots.draw_steps(self._series)
        if self._epochs_dirty:
            self._epochs_dirty = False
            if stagger:
                self._pending_plots = list(EPOCH_PLOTS)
                self._draw_next_epoch_plot()
            else:
                self._pending_plots = []
                self.plots.draw_epochs(self._history)
        self._update_exports()

    def _draw_next_epoch_plot(self) -> None:
        if not self._pending_plots or self._closed:
            return
        self.plots.draw_epochs(self._history, self._pending_plots.pop(0))
        if self._pending_plots:
            QTimer.singleShot(STAGGER_MS, self._draw_next_epoch_plot)

    def show_banner(self, text: str, kind: str = "error") -> None:
        self.banner_kind = kind
        self.banner.setStyleSheet(BANNER_STYLES.get(kind, BANNER_STYLES["info"]))
        self.banner.setText(text)
        self.banner.show()

    def hide_banner(self) -> None:
        self.banner_kind = ""
        self.banner.clear()
        self.banner.hide()

    def shutdown(self) -> None:
        """Stop a running training (it saves last.pt) and wait for its thread; safe to call twice."""
        self._closed = True
        self._redraw_timer.stop()
        if self.session.running:
            self._log("stopping the run: the window is closing")
            self.session.stop_and_wait()

    # -- session events ------------------------------------------------------------------------
    def _on_run_started(self, path: str) -> None:
        self._set_run_dir(Path(path))

    def _on_steps(self, batch: StepBatch) -> None:
        self._series.append(batch.steps, batch.losses)
        self._steps_dirty = True
        if self._progress is None:
            cfg = self.state.config.training
            self._progress = RunProgress(cfg.epochs, cfg.time_limit)
        self._progress.update(batch)
        self._show_progress()
        self._schedule_redraw()

    def _on_epoch(self, event) -> None:
        # a continued run may redo an epoch its history.csv already had (killed before last.pt was saved)
        self._history = [e for e in self._history if e.epoch < event.epoch] + [event]
        self._epochs_dirty = True
        self._schedule_redraw()
        self._log(epoch_text(event, self._progress.epochs if self._progress else "?"))
        self.historyChanged.emit()

    def _on_checkpoint(self, event) -> None:
        self._log(f"saved {Path(event.path).name} (epoch {event.epoch})")

    def _on_warning(self, message: str) -> None:
        self._log(f"warning: {message}")

    def _on_finished(self, event) -> None:
        self.last_outcome = event
        text = summary_text(event)
        self._log(text)
        self.show_banner(text, "success" if event.reason == "completed" else "info")
        self.progress.setFormat(event.reason.capitalize())  # "Completed": the banner above says the rest
        if event.reason == "completed" and self.progress.maximum() > 0:
            self.progress.setValue(self.progress.maximum())
        self._publish_run()

    def _on_failed(self, event) -> None:
        self.last_outcome = event
        title = FAILURE_TITLES.get(event.kind, FAILURE_TITLES["error"])
        kept = self._checkpoint_exists() and bool(self._history)  # weights trained for an epoch at least
        text = f"{title}: {event.message}"
        self._log(f"failed ({event.kind}): {event.message}")
        self.show_banner(text + (" — the saved checkpoint is available for predictions." if kept else ""), "error")
        self.progress.setFormat(f"Failed ({event.kind})")
        if kept:
            self._publish_run()

    def _on_running_changed(self, running: bool) -> None:
        if not running:
            self._stopping = False
            self.state.set_training(False)
            if self.progress.maximum() == 0:  # never got past start-up
                self.progress.setRange(0, 1)
                self.progress.setValue(0)
            if self.last_outcome is None:
                self.progress.setFormat("Ended")
            self._log("run ended")
            self.redraw()
        self._update_actions()

    def _on_paused_changed(self, paused: bool) -> None:
        if self._progress is not None:
            self._progress.set_paused(paused)
        if self.pause_action.isChecked() != paused:
            self.pause_action.blockSignals(True)
            self.pause_action.setChecked(paused)
            self.pause_action.blockSignals(False)
        self.pause_action.setText("Resume" if paused else "Pause")
        if paused:
            self.progress.setFormat("Paused · " + (self._progress.text() if self._progress and
                                                   self._progress.steps_in_epoch else "waiting"))
            self._log("paused")
        elif self.session.running and not self._stopping:
            self._log("resumed")
            self._show_progress()

    # -- helpers -------------------------------------------------------------------------------
    def _on_pause_toggled(self, checked: bool) -> None:
        if checked:
            self.pause()
        else:
            self.resume()

    def _on_log_scale(self, on: bool) -> None:
        self.plots.set_log_scale(on)
        self.plots.draw_markers(self._history)

    def _update_actions(self) -> None:
        running = self.session.running
        self.start_action.setEnabled(not running and not self.state.training)
        self.continue_action.setEnabled(not running and not self.state.training)
        self.pause_action.setEnabled(running and not self._stopping)
        self.stop_action.setEnabled(running and not self._stopping)
        if not running:
            self.pause_action.blockSignals(True)
            self.pause_action.setChecked(False)
            self.pause_action.blockSignals(False)
            self.pause_action.setText("Pause")

    def _update_exports(self) -> None:
        self.export_csv_button.setEnabled(bool(self._history))
        self.export_png_button.setEnabled(bool(self._history) or len(self._series) > 0)

    def _schedule_redraw(self) -> None:
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def _show_progress(self) -> None:
        p = self._progress
        if p is None or not p.total:
            return
        if self.progress.maximum() != p.total:
            self.progress.setRange(0, p.total)
        self.progress.setValue(min(p.done, p.total))
        if not self.session.paused and not self._stopping:
            self.progress.setFormat(p.text())

    def marker_texts(self) -> dict[str, str]:
        """The labels of the best-epoch markers ("min val loss 0.213 @ 7"); empty before any epoch."""
        return marker_texts(self._history)

    def _checkpoint_exists(self) -> bool:
        if self.run_dir is None:
            return False
        checkpoints = self.run_dir / "checkpoints"
        return (checkpoints / "best.pt").exists() or (checkpoints / "last.pt").exists()

    def _publish_run(self) -> None:
        """Show the run's predictions, once an epoch trained (a stop before that leaves the
        initial random weights in last.pt: the run shown stays)."""
        if self._checkpoint_exists() and self._history and not self._closed:
            self.state.set_run(self.run_dir)

    def _set_run_dir(self, path: Path) -> None:
        self.run_dir = Path(path)
        self.run_label.setText(str(self.run_dir))
        self.open_run_button.setEnabled(True)

    def _log(self, line: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {line}")
