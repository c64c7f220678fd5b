"""The Sweeps panel: define a grid over experiment fields (models × losses × ...), run every
combination one after another, and compare the runs in a heat map and a ranked table.

The base experiment is the one being edited in the window, unless a loaded sweep file names its
own. The grid is checked by the core in the background as it is typed (run count or the core's
error); the sweep runs in a :class:`~app.ui.sweep_worker.SweepSession` thread and tells the window's
state it is training, which locks the rest of the window. A folder that holds the sweep resumes it
(finished runs skipped). Questions to the user go through ``ask_*`` methods, which tests replace.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QLabel, QMenu, QProgressBar,
                               QPushButton, QScrollArea, QSplitter, QToolButton, QVBoxLayout, QWidget)

from app.core.atomic import atomic_write_json
from app.core.sweep import SWEEP_FILE, SweepError
from app.core.sweep_results import results_csv

from .file_dialogs import ask_save_file, filter_suffix
from .state import ExperimentState
from .styles import banner_style
from .sweep_editor import (SweepEditor, absolute_path, default_sweep_dir, describe_experiment, describe_folder,
                           read_folder_spec, read_spec_file)
from .sweep_results_view import SweepResultsView
from .sweep_worker import (GridCheck, SweepOutcome, SweepSession, SweepTracker, check_job, epoch_line,
                           registry_names_job)
from .tasks import TaskRunner
from .training_controls import banner_label, commit_pending_edit, run_log
from .training_progress import format_duration

CHECK_DELAY_MS = 250  # the grid is checked this long after the last edit
JSON_FILTER = "Sweep files (*.json);;All files (*)"
CSV_FILTER = "CSV files (*.csv)"


class SweepPanel(QWidget):
    """Grid editor, run controls with whole-sweep progress, and the results of the sweep."""

    title = "Sweeps"
    openRun = Signal(object)  # a run folder (Path) double-clicked in the ranked table
    runningChanged = Signal(bool)

    def __init__(self, state: ExperimentState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sweepPanel")
        self.state = state
        self.session = SweepSession(self)
        self.check_runner = TaskRunner("sweep-check", self)
        self.names_runner = TaskRunner("sweep-names", self)
        self.last_check: GridCheck | None = None
        self.last_outcome: SweepOutcome | None = None
        self._loaded_base: dict | str | None = None  # None: the current experiment
        self._base_source = ""
        self._loaded_path: Path | None = None  # a loaded sweep file whose check is still to be reported
        self._names_requested = False
        self._closed = False
        self.tracker = SweepTracker()
        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(CHECK_DELAY_MS)
        self._check_timer.timeout.connect(self.check_now)
        self._build_ui()
        self._connect()
        self.editor.add_axis("model.name", [state.config.model.name])
        self.editor.add_axis("loss.name", [state.config.loss.name])
        self._show_base()
        self._update_folder()
        self._update_actions()
        self.schedule_check()

    # -- construction ------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.banner = banner_label()
        self.banner.setObjectName("sweepBanner")
        self.banner_kind = ""
        self.editor = SweepEditor()
        self.load_button, self.save_button = self.editor.load_button, self.editor.save_button
        self.open_folder_button = self.editor.open_folder_button

        controls = QHBoxLayout()
        self.run_button = QPushButton("Run sweep")
        self.run_button.setObjectName("sweepRunButton")
        self.stop_button = QToolButton()
        self.stop_button.setText("Stop")
        self.stop_button.setToolTip("Stop the current run after its step (its last.pt is saved), then the sweep; "
                                    "Resume continues from there.")
        self.stop_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        menu = QMenu(self.stop_button)
        self.stop_after_action = menu.addAction("Stop after the current run")
        self.stop_button.setMenu(menu)
        self.retry_check = QCheckBox("Retry failed runs")
        self.retry_check.setToolTip("Train runs that failed in an earlier call again (they are skipped otherwise).")
        for widget in (self.run_button, self.stop_button, self.retry_check):
            controls.addWidget(widget)
        controls.addStretch(1)
        self.sweep_bar, self.run_bar = QProgressBar(), QProgressBar()
        for bar, text in ((self.sweep_bar, "Sweep: idle"), (self.run_bar, "Current run: —")):
            bar.setRange(0, 1000)
            bar.setValue(0)
            bar.setFormat(text)
        self.progress_label = QLabel("")
        self.progress_label.setWordWrap(True)
        self.log = run_log()
        self.log.setObjectName("sweepLog")
        self.log.setToolTip("Runs started, finished, skipped or failed, their epochs and warnings.")

        left = QWidget()
        column = QVBoxLayout(left)
        column.addWidget(self.editor)
        column.addLayout(controls)
        for widget in (self.sweep_bar, self.run_bar, self.progress_label):
            column.addWidget(widget)
        column.addWidget(self.log, 1)
        left.setMinimumWidth(420)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(left)
        scroll.setMinimumWidth(440)
        self.results = SweepResultsView()
        self.splitter = QSplitter()
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(self.results)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([520, 780])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)

    def _connect(self) -> None:
        self.editor.changed.connect(self.schedule_check)
        self.editor.useCurrentBase.connect(self.use_current_experiment)
        self.editor.browseRequested.connect(self._browse_out)
        self.load_button.clicked.connect(self._load_dialog)
        self.save_button.clicked.connect(self._save_dialog)
        self.open_folder_button.clicked.connect(self._open_folder_dialog)
        self.run_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.stop_after_action.triggered.connect(self.stop_after_run)
        self.results.openRun.connect(self.openRun)
        self.results.problem.connect(lambda text: self.show_banner(text, "warning"))
        self.results.exportRequested.connect(self._export_dialog)
        s = self.session
        s.progress.connect(self._on_progress)
        s.epochFinished.connect(lambda name, event: self._log(epoch_line(name, event)))
        s.warning.connect(lambda name, message: self._log(f"{name}: warning: {message}"))
        s.finished.connect(self._on_finished)
        s.failed.connect(self._on_failed)
        s.runningChanged.connect(self._on_running_changed)
        self.state.configChanged.connect(self._on_config_changed)
        self.state.trainingChanged.connect(self._on_training_changed)

    # -- the spec ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.session.running

    def spec_data(self) -> dict:
        """The sweep as JSON data: the editor's fields and grid, and the base experiment inline
        (the current one unless a loaded file named its own)."""
        grid, _problem = self.editor.grid()
        base = copy.deepcopy(self._loaded_base) if self._loaded_base is not None else self.state.config.to_dict()
        return {**self.editor.fields(), "base": base, "grid": grid}

    def output_dir(self) -> Path:
        out = self.editor.out()
        return Path(out).expanduser().absolute() if out else default_sweep_dir(self.editor.name() or "sweep")

    def use_current_experiment(self) -> None:
        """Sweep around the experiment edited in the window again (drop a loaded file's base)."""
        self._loaded_base, self._base_source = None, ""
        self._show_base()
        self.schedule_check()

    def _show_base(self) -> None:
        if self._loaded_base is None:
            config = self.state.config
            self.editor.set_base_text(f"the current experiment “{config.name}”: {describe_experiment(config.to_dict())}",
                                      from_file=False)
        elif isinstance(self._loaded_base, str):
            self.editor.set_base_text(f"the experiment file {self._loaded_base} (named by {self._base_source})", True)
        else:
            self.editor.set_base_text(f"from {self._base_source}: {describe_experiment(self._loaded_base)}", True)

    # -- checking the grid ---------------------------------------------------------------------
    def schedule_check(self) -> None:
        """Check the grid shortly (edits come in bursts); the folder state is shown at once."""
        self._update_folder()
        grid, problem = self.editor.grid()
        if problem or not grid:
            self._check_timer.stop()
            self.check_runner.cancel()
            self.last_check = GridCheck(error=problem or "Add an axis: a field and its values, "
                                                         "e.g. model.name with unet, segnet.")
            self.editor.set_count_text(self.last_check.error, "error")
            self._report_loaded_file()
            self._update_actions()
            return
        self.last_check = None
        self.editor.set_count_text("Checking the grid…" if self._names_requested else
                                   "Checking the grid… (loading PyTorch the first time)")
        self._update_actions()
        if self.isVisible():  # a hidden panel (a tab behind others) checks when first shown
            self._check_timer.start()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        self._update_folder()  # the folder may have changed (deleted, another sweep) while hidden
        if self.last_check is None and not self._check_timer.isActive() and not self.check_runner.busy:
            self._check_timer.start()

    def check_now(self) -> None:
        """Ask the core about the grid now (in the background)."""
        self._check_timer.stop()
        grid, problem = self.editor.grid()
        if problem or not grid or self._closed:
            return
        spec = self.spec_data()
        self.check_runner.start(lambda ctx: check_job(spec, None, ctx), on_done=self._on_checked,
                                on_failed=lambda message: self._on_checked(GridCheck(error=message)))
        if not self._names_requested:
            self._names_requested = True
            self.names_runner.start(registry_names_job, on_done=self.editor.set_registry_names)

    def _on_checked(self, check: GridCheck) -> None:
        if self._closed:
            return
        self.last_check = check
        self.editor.set_count_text(check.text(), "error" if check.error else "")
        self._report_loaded_file()
        self._update_actions()

    def _report_loaded_file(self) -> None:
        """After loading a file: say so, or name the file and what is wrong with its grid."""
        if self._loaded_path is None or self.last_check is None:
            return
        path, self._loaded_path, error = self._loaded_path, None, self.last_check.error
        self.show_banner(f"{path}: {error}" if error else f"Loaded {path}: {self.last_check.runs} runs.",
                         "error" if error else "success")

    # -- files ---------------------------------------------------------------------------------
    def load_json(self, path: str | Path) -> bool:
        """Load a sweep file into the editor; False (and a banner naming the file) if unreadable."""
        path = Path(path)
        try:
            data = read_spec_file(path)
        except ValueError as exc:
            return self._refuse(str(exc))
        self._apply_spec(data, path.parent, str(path))
        self._loaded_path = path  # the check of its grid names the file
        self.schedule_check()
        return True

    def _apply_spec(self, data: dict, folder: Path, source: str) -> None:
        base = data.get("base")
        self._loaded_base = absolute_path(base, folder) if isinstance(base, (str, dict)) else None
        self._base_source = source
        out = absolute_path(data.get("out"), folder)
        self.editor.set_fields(data.get("name"), data.get("seed"), data.get("device"), out)
        self.hide_banner()
        self.editor.set_grid(data["grid"])
        self._show_base()

    def _refuse(self, message: str) -> bool:
        self.show_banner(message, "error")
        return False  # for `return self._refuse(...)`

    def save_json(self, path: str | Path) -> Path | None:
        """Write the sweep (base experiment inline) atomically; None and a banner if it cannot."""
        _grid, problem = self.editor.grid()
        if problem:
            return self._refuse(f"Cannot save the sweep: {problem}") or None
        try:
            written = atomic_write_json(path, self.spec_data())
        except (OSError, TypeError, ValueError) as exc:
            return self._refuse(f"Could not save the sweep to {path}: {exc}") or None
        self.show_banner(f"Saved the sweep to {written}.", "success")
        return written

    def open_folder(self, folder: str | Path) -> bool:
        """Show a sweep folder's results and load its spec (to resume or extend it)."""
        folder = Path(folder)
        try:
            spec = read_folder_spec(folder)
        except ValueError as exc:
            return self._refuse(str(exc))
        self._apply_spec({**spec, "out": str(folder)}, folder, f"the sweep folder {folder}")
        return True

    def export_csv(self, path: str | Path) -> Path | None:
        """Write the ranked table as CSV (atomically), ranked by the chosen metric."""
        folder = self.results.folder
        if folder is None or not self.results.rows:
            self.show_banner("No results to export yet.", "warning")
            return None
        try:
            written = results_csv(folder, path, rank_by=self.results.metric)
        except (OSError, SweepError) as exc:
            return self._refuse(f"Could not export to {path}: {exc}") or None
        self._log(f"exported {written}")
        return written

    # -- running -------------------------------------------------------------------------------
    def start(self) -> bool:
        """Run (or resume) the sweep into :meth:`output_dir`; False with a banner if it cannot."""
        if self.session.running or self._closed:
            return False
        commit_pending_edit()
        if self.state.training:
            return self._refuse("A training run is in progress: wait for it to end (or stop it in the Training "
                                "panel) before starting a sweep.")
        grid, problem = self.editor.grid()
        if problem or not grid:
            return self._refuse(f"The grid is not valid: {problem or 'it has no axis'}")
        if self.last_check is not None and self.last_check.error:
            return self._refuse(f"The grid is not valid: {self.last_check.error}")
        out_dir = self.output_dir()
        resuming = (out_dir / SWEEP_FILE).is_file()
        self.hide_banner()
        self.tracker, self.last_outcome = SweepTracker(), None
        self.results.current_run = None
        self.results.set_folder(out_dir)
        for bar, text in ((self.sweep_bar, "Sweep: starting… (checking every run, loading the data)"),
                          (self.run_bar, "Current run: —")):
            bar.setValue(0)
            bar.setFormat(text)
        self._log(f"{'resuming' if resuming else 'starting'} sweep {self.editor.name()} → {out_dir}")
        self.state.set_training(True)
        self.session.start(self.spec_data(), None, out_dir, self.retry_check.isChecked())
        return True

    def stop(self) -> None:
        """Stop the current run after its step (it saves its checkpoint), then the sweep."""
        if self.session.running and not self.session.stop_requested:
            self.session.stop()
            self.sweep_bar.setFormat("Stopping… (saving the current run's checkpoint)")
            self._log("stop requested")
            self._update_actions()

    def stop_after_run(self) -> None:
        """Let the current run finish, then stop the sweep."""
        if self.session.running:
            self.session.stop_after_run()
            self._log("the sweep stops when the current run has finished")

    def shutdown(self) -> None:
        """Stop a running sweep (its run saves last.pt) and wait for the threads; safe twice."""
        self._closed = True
        self._check_timer.stop()
        if self.session.running:
            self._log("stopping the sweep: the window is closing")
            self.session.stop_and_wait()
        self.check_runner.shutdown()
        self.names_runner.shutdown()

    # -- session events ------------------------------------------------------------------------
    def _on_progress(self, report) -> None:
        within = self.tracker.update(report)
        where = f"[{report.index + 1}/{report.total}] {report.name}"
        self.sweep_bar.setValue(int(round(1000 * report.fraction)))
        self.sweep_bar.setFormat(f"Sweep: {100 * report.fraction:.0f}% · run {report.index + 1} of {report.total}")
        if report.status in ("started", "running", "completed"):
            self.run_bar.setValue(int(round(1000 * within)))
            self.run_bar.setFormat(f"Run {report.index + 1} of {report.total}: {report.name} · {100 * within:.0f}%")
            self.progress_label.setText(self.tracker.timing_text(report.fraction))
        if report.status == "started":
            self._log(f"{where}: started" + (f" ({report.message})" if report.message else ""))
            self.results.current_run = report.name
            self.results.refresh()
        elif report.status == "skipped":
            self._log(f"{where}: skipped ({report.message} before)")
        elif report.status in ("completed", "failed", "stopped"):
            self.results.current_run = None
            self.results.refresh()
            self._log(f"{where}: {report.status}" + (f": {report.message}" if report.message else
                                                      self.results.metric_note(report.name)))

    def _on_finished(self, outcome: SweepOutcome) -> None:
        self.last_outcome = outcome
        text, kind = outcome.summary()
        self.show_banner(text, kind)
        self.sweep_bar.setFormat(f"Sweep: {'stopped' if outcome.stopped else 'finished'} · "
                                 f"{outcome.count('completed')} of {len(outcome.statuses)} completed")
        if not outcome.stopped:
            self.sweep_bar.setValue(1000)
        self.run_bar.setFormat("Current run: —")
        self.run_bar.setValue(0)
        if self.tracker.started is not None:
            self.progress_label.setText(f"Took {format_duration(self.tracker.elapsed())}")
        self._log(text)

    def _on_failed(self, message: str) -> None:
        self.show_banner(f"The sweep stopped with an error: {message}", "error")
        self.sweep_bar.setFormat("Sweep: failed")
        self._log(f"failed: {message}")

    def _on_running_changed(self, running: bool) -> None:
        if not running:
            self.state.set_training(False)
            self.results.current_run = None
            self.results.refresh()
            self._update_folder()
        self.editor.setEnabled(not running)  # with its Load/Save buttons
        self.retry_check.setEnabled(not running)
        self._update_actions()
        self.runningChanged.emit(running)

    # -- the window's state --------------------------------------------------------------------
    def _on_config_changed(self, _section: str, _source) -> None:
        if self._loaded_base is None and not self.session.running:
            self._show_base()
            self.schedule_check()

    def _on_training_changed(self, training: bool) -> None:
        if not training and self.session.running:  # another panel's run ended while the sweep goes on
            QTimer.singleShot(0, lambda: self.session.running and self.state.set_training(True))
        self._update_actions()

    # -- helpers -------------------------------------------------------------------------------
    def _update_folder(self) -> None:
        """Run or Resume, and what the output folder holds; the results view shows that folder."""
        out = self.output_dir()
        self.editor.set_default_out(str(default_sweep_dir(self.editor.name() or "sweep")))
        text, has_state = describe_folder(out)
        self.editor.folder_label.setText(text)
        self.run_button.setText("Resume" if has_state else "Run sweep")
        self.run_button.setToolTip("Continue the sweep in the output folder: finished runs are skipped, a stopped "
                                   "run continues from its checkpoint." if has_state else
                                   "Train every run of the grid one after another, with the same seed and data "
                                   "split, each into its own run folder.")
        if not self.session.running and self.results.folder != out:
            self.results.set_folder(out)

    def _update_actions(self) -> None:
        running = self.session.running
        check_failed = self.last_check is not None and bool(self.last_check.error)
        self.run_button.setEnabled(not running and not self.state.training and not check_failed)
        if self.state.training and not running:
            self.run_button.setToolTip("A training run is in progress; the sweep can start when it has ended.")
        self.stop_button.setEnabled(running and not self.session.stop_requested)

    def show_banner(self, text: str, kind: str = "error") -> None:
        self.banner_kind = kind
        self.banner.setStyleSheet(banner_style(kind, "QLabel"))
        self.banner.setText(text)
        self.banner.show()

    def hide_banner(self) -> None:
        self.banner_kind = ""
        self.banner.clear()
        self.banner.hide()

    def _log(self, line: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {line}")

    # -- questions to the user (tests replace these) -------------------------------------------
    def ask_open_path(self, caption: str, file_filter: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, caption, str(Path.home()), file_filter)
        return path or None

    def ask_save_path(self, caption: str, default: str, file_filter: str) -> str | None:
        return ask_save_file(self, caption, default, file_filter, filter_suffix(file_filter))

    def ask_folder(self, caption: str, start: str) -> str | None:
        return QFileDialog.getExistingDirectory(self, caption, start) or None

    def _load_dialog(self) -> None:
        path = self.ask_open_path("Load a sweep", JSON_FILTER)
        if path:
            self.load_json(path)

    def _save_dialog(self) -> None:
        default = str(self.output_dir().parent / f"{self.editor.name() or 'sweep'}.json")
        path = self.ask_save_path("Save the sweep", default, JSON_FILTER)
        if path:
            self.save_json(path)

    def _open_folder_dialog(self) -> None:
        path = self.ask_folder("Open a sweep folder", str(self.output_dir().parent))
        if path:
            self.open_folder(path)

    def _browse_out(self) -> None:
        path = self.ask_folder("Output folder of the sweep", str(self.output_dir().parent))
        if path:
            self.editor.out_edit.setText(path)

    def _export_dialog(self) -> None:
        folder = self.results.folder or self.output_dir()
        path = self.ask_save_path("Export the sweep's results", str(folder / "results.csv"), CSV_FILTER)
        if path:
            self.export_csv(path)
