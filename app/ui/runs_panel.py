"""The Runs panel: every run of a runs folder in one sortable, filterable table, to open,
rename, delete or reveal a run, overlay the curves of several runs and compare them image by
image.

Scanning the folder (and its ``sweeps/<sweep>/`` folders), reading the selected runs' curves,
deleting runs and the per-image comparison run in background jobs; dialogs go through small
``ask_*`` methods that tests replace. A run that is training (the window's run while it
trains, or any run whose training lock a process holds) is never renamed or deleted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from app.core.runs import INCOMPLETE, RunInfo, check_run_name, delete_run, read_run, rename_run, write_runs_csv
from app.core.training.run_folder import default_runs_dir

from .runs_compare import ComparedRun, RunsCompareView
from .runs_curves import MAX_CURVES, RunsCurvesPlot, read_selected_curves
from .runs_dialogs import RunsDialogHooks
from .runs_table import COLUMN_KEYS, RunsFilterProxy, RunsTableModel, RunsTableView, ScanResult, scan_folder
from .state import ExperimentState
from .styles import banner_style
from .tasks import TaskRunner

PROBLEMS_SHOWN = 6  # problem lines in the banner; all of them are in its tooltip


def delete_runs(paths: list[Path], ctx) -> tuple[list[Path], list[str]]:
    """The job: delete each run folder; (deleted, "name: why not" for the others)."""
    deleted, errors = [], []
    for done, path in enumerate(paths):
        if ctx.cancelled:
            break
        try:
            delete_run(path)
            deleted.append(path)
        except (OSError, ValueError, RuntimeError) as exc:
            errors.append(f"{path.name}: {exc}")
        ctx.progress(done + 1, len(paths))
    return deleted, errors


def _same(a: Path | None, b: Path | None) -> bool:
    if a is None or b is None:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


class RunsPanel(RunsDialogHooks, QWidget):
    """Browse, manage and compare the runs of a runs folder. ``openRun(path)`` asks the window
    to show a run's results."""

    title = "Runs"

    openRun = Signal(object)  # the run folder (Path)
    continueRun = Signal(object)  # the run folder (Path) to train on (the Training panel asks how far)
    scanned = Signal()  # a scan's runs are in the table
    curvesShown = Signal()  # the selected runs' curves are drawn
    runsDeleted = Signal(object)  # list of deleted paths

    def __init__(self, state: ExperimentState, parent=None):
        super().__init__(parent)
        self.state = state
        self.folder: Path = default_runs_dir()
        self._scan: ScanResult | None = None
        self._training_since: float | None = time.time() if state.training else None
        self._curves_token = self._scan_token = 0
        self._fitted = self._closed = self._selecting = False  # _selecting: select_runs changes the selection
        self._scan_runner = TaskRunner("scan-runs", self)
        self._curves_runner = TaskRunner("run-curves", self)
        self._delete_runner = TaskRunner("delete-runs", self)
        self._build()
        self._connect()
        self.refresh()

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.folder_edit = QLineEdit(str(self.folder))
        self.folder_edit.setObjectName("runs_folder")
        self.folder_edit.setToolTip("The runs folder: every run folder in it (and in its sweeps/ folder) is listed")
        self.choose_button = QPushButton("Choose…")
        self.refresh_button = QPushButton("Refresh")
        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("runs_filter")
        self.filter_edit.setPlaceholderText("Filter: words in the name, model, loss, dataset, status…")
        self.filter_edit.setClearButtonEnabled(True)
        self.count_label = QLabel()
        self.scan_progress = QProgressBar()
        self.scan_progress.setRange(0, 0)
        self.scan_progress.setMaximumWidth(120)
        self.scan_progress.hide()
        self.banner = QLabel()
        self.banner.setObjectName("runs_banner")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.PlainText)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()

        self.model = RunsTableModel(self)
        self.proxy = RunsFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = RunsTableView()
        self.table.setObjectName("runs_table")
        self.table.setModel(self.proxy)
        self.table.sortByColumn(COLUMN_KEYS.index("date"), Qt.SortOrder.DescendingOrder)

        self.open_button = QPushButton("Open")
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete…")
        self.reveal_button = QPushButton("Show folder")
        self.continue_button = QPushButton("Continue…")
        self.export_csv_button = QPushButton("Export CSV…")
        self.open_button.setToolTip("Show the run's predictions (Enter)")
        self.reveal_button.setToolTip("Open the run folder in the file manager")
        self.export_csv_button.setToolTip("Save the rows shown (filtered, in their order) as a CSV file")
        for text, slot, shortcut in (("Open", self.open_selected, "Enter"), ("Rename…", self.rename_selected, "F2"),
                                     ("Delete…", self.delete_selected, "Del"),
                                     ("Show folder", self.reveal_selected, None)):
            action = QAction(f"{text}\t{shortcut}" if shortcut else text, self.table)
            action.triggered.connect(slot)
            self.table.addAction(action)

        self.curves = RunsCurvesPlot()
        self.export_png_button = QPushButton("Export PNG…")
        self.export_png_button.setToolTip("Save the plot as a PNG image")
        self.curves.controls.addWidget(self.export_png_button)
        self.compare = RunsCompareView(self.state.config.training.device)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(self.compare, "Per-image comparison")

        top = QHBoxLayout()
        top.addWidget(QLabel("Runs folder"))
        top.addWidget(self.folder_edit, 2)
        for widget in (self.choose_button, self.refresh_button, self.scan_progress):
            top.addWidget(widget)
        top.addWidget(self.filter_edit, 2)
        top.addWidget(self.count_label)
        actions = QHBoxLayout()
        for button in (self.open_button, self.continue_button, self.rename_button, self.delete_button,
                       self.reveal_button):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(self.export_csv_button)
        upper = QWidget()
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.addWidget(self.table, 1)
        upper_layout.addLayout(actions)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(upper)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([450, 450])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)
        self._update_actions()

    def _connect(self) -> None:
        self.folder_edit.returnPressed.connect(lambda: self.set_folder(self.folder_edit.text().strip()))
        self.choose_button.clicked.connect(self._choose_folder)
        self.refresh_button.clicked.connect(self.refresh)
        self.filter_edit.textChanged.connect(self._on_filter)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selecting or self._on_selection())
        self.table.openRequested.connect(self.open_selected)
        self.table.renameRequested.connect(self.rename_selected)
        self.table.deleteRequested.connect(self.delete_selected)
        self.open_button.clicked.connect(self.open_selected)
        self.continue_button.clicked.connect(self.continue_selected)
        self.rename_button.clicked.connect(self.rename_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.reveal_button.clicked.connect(self.reveal_selected)
        self.export_csv_button.clicked.connect(self._export_csv_dialog)
        self.export_png_button.clicked.connect(self._export_png_dialog)
        self.state.trainingChanged.connect(self._on_training_changed)
        self.state.configChanged.connect(lambda *_: setattr(self.compare, "device", self.state.config.training.device))

    # -- messages --------------------------------------------------------------------------------
    def show_message(self, text: str, kind: str = "error", tooltip: str = "") -> None:
        self.banner.setText(text)
        self.banner.setToolTip(tooltip)
        self.banner.setStyleSheet(banner_style(kind, "QLabel"))
        self.banner.setProperty("kind", kind)
        self.banner.setVisible(bool(text))

    def message(self) -> str:
        """The banner's text ("" when it is hidden)."""
        return "" if self.banner.isHidden() else self.banner.text()

    # -- scanning --------------------------------------------------------------------------------
    def set_folder(self, folder: str | os.PathLike) -> None:
        """List the runs of ``folder`` (scanned in the background)."""
        self.folder = Path(folder).expanduser()
        self.folder_edit.setText(str(self.folder))
        self._fitted = False
        self.refresh()

    def _choose_folder(self) -> None:
        folder = self.ask_folder("Choose a runs folder", str(self.folder if self.folder.is_dir() else Path.home()))
        if folder:
            self.set_folder(folder)

    def refresh(self) -> None:
        """Scan the runs folder again; the selection and sort order are kept."""
        if self._closed:
            return
        folder = self.folder
        self._scan_token += 1
        token = self._scan_token
        self.scan_progress.show()
        self.count_label.setText("Scanning…")
        self._scan_runner.start(lambda ctx: scan_folder(folder, ctx),
                                lambda result: self._on_scanned(result) if token == self._scan_token else None,
                                lambda message: self._on_scan_failed(folder, message)
                                if token == self._scan_token else None)

    def _on_scan_failed(self, folder: Path, message: str) -> None:
        self.scan_progress.hide()
        self.model.set_runs([])
        self._scan = None
        self._update_count()
        if not folder.exists():
            self.show_message(f"No runs yet: {folder} does not exist. Train a model, or choose another runs folder.",
                              "info")
        else:
            self.show_message(f"Cannot list the runs in {folder}: {message}")
        self.scanned.emit()

    def _on_scanned(self, result: ScanResult) -> None:
        self.scan_progress.hide()
        selected = [run.path for run in self.selected_runs()]
        self._scan = result
        self.model.set_runs(result.runs, result.labels)
        self._update_training_marks()
        if not self._fitted and result.runs:  # once per folder: later refreshes keep the user's widths
            self.table.fit_columns()
            self._fitted = True
        self.select_runs(selected)
        self._update_count()
        if result.problems:
            shown = result.problems[:PROBLEMS_SHOWN]
            more = len(result.problems) - len(shown)
            lines = [f"• {p}" for p in shown] + ([f"… and {more} more (hover to see all)"] if more else [])
            text = "\n".join(["Some run files could not be read; those runs show what could be read:"] + lines)
            self.show_message(text, "warning", "\n".join(result.problems))
        elif not result.runs:
            self.show_message(f"No runs in {result.folder}. Train a model, or choose another runs folder.", "info")
        else:
            self.show_message("")
        self.scanned.emit()

    def _update_count(self) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        self.count_label.setText(f"{total} run{'s' if total != 1 else ''}" if shown == total
                                 else f"{shown} of {total} runs")

    def _on_filter(self, text: str) -> None:
        self.proxy.set_filter_text(text)
        self._update_count()

    # -- selection -------------------------------------------------------------------------------
    def selected_runs(self) -> list[RunInfo]:
        """The selected runs, in the table's order."""
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        return [self.proxy.run_at(row) for row in rows]

    def current_run(self) -> RunInfo | None:
        """The run the keyboard focus is on if it is selected, else the first selected one."""
        index = self.table.currentIndex()
        selected = self.selected_runs()
        if index.isValid() and self.table.selectionModel().isRowSelected(index.row(), index.parent()):
            return self.proxy.run_at(index.row())
        return selected[0] if selected else None

    def select_runs(self, paths) -> None:
        """Select the runs of these folders (those shown); the first becomes the current row."""
        wanted = {Path(p) for p in paths}
        rows = [row for row in range(self.proxy.rowCount()) if self.proxy.run_at(row).path in wanted]
        chosen = QItemSelection()  # one selection change, not one per row (each would reload the curves)
        for row in rows:
            chosen.select(self.proxy.index(row, 0), self.proxy.index(row, 0))
        flags = QItemSelectionModel.SelectionFlag
        self._selecting = True
        self.table.selectionModel().select(chosen, flags.ClearAndSelect | flags.Rows)
        self._selecting = False
        if rows:
            self.table.selectionModel().setCurrentIndex(self.proxy.index(rows[0], 0), flags.NoUpdate)
            self.table.scrollTo(self.proxy.index(rows[0], 0))
        self._on_selection()

    def _on_selection(self) -> None:
        runs = self.selected_runs()
        self._update_actions()
        self.compare.set_candidates([ComparedRun(r.path, self.model.label(r), r.has_checkpoint) for r in runs])
        self._load_curves(runs)

    def _load_curves(self, runs: list[RunInfo]) -> None:
        self._curves_token += 1
        token = self._curves_token
        if not runs:
            self.curves.set_runs([])
            self.curvesShown.emit()
            return
        paths, labels = [r.path for r in runs], [self.model.label(r) for r in runs]
        drawn = paths[:MAX_CURVES]  # only these are drawn: reading the others would only hold the GUI up
        self._curves_runner.start(lambda ctx: read_selected_curves(drawn, ctx),
                                  lambda curves: self._show_curves(token, paths, labels, curves),
                                  lambda message: self.show_message(f"Cannot read the runs' curves: {message}"))

    def _show_curves(self, token: int, paths: list[Path], labels: list[str], curves: dict) -> None:
        if token != self._curves_token:
            return
        self.curves.set_runs([(label, curves.get(path, {})) for path, label in zip(paths, labels)])
        self.curvesShown.emit()

    # -- runs that are training ------------------------------------------------------------------
    def training_reason(self, run: RunInfo) -> str | None:
        """Why ``run`` looks like it is training (so it must not be renamed or deleted), or None."""
        if self.state.training:
            if self.state.training_run is not None and _same(run.path, self.state.training_run):
                return "it is training now"
            started = self._scan.started.get(run.path) if self._scan else None
            if run.status == INCOMPLETE and started is not None and self._training_since is not None \
                    and started >= self._training_since - 30:
                return "it is training now"
        if run.training:
            return "it is training now (in another window or from the command line)"
        return None

    def _update_training_marks(self) -> None:
        self.model.set_training(run.path for run in self.model.runs() if self.training_reason(run))

    def _on_training_changed(self, running: bool) -> None:
        self._training_since = time.time() if running else None
        self._update_actions()  # one run trains at a time: Continue… waits for it
        self.refresh()  # the new run appears (or the finished one's status changes)

    def _blocked(self, runs: list[RunInfo], what: str) -> bool:
        """Refuse (with a message) when any of ``runs`` is training."""
        reasons = [(self.model.label(run), self.training_reason(run)) for run in runs]
        blocked = [f"{name}: {reason}" for name, reason in reasons if reason]
        if blocked:
            self.show_message(f"Cannot {what} a run that is training. " + "; ".join(blocked))
        return bool(blocked)

    def _update_actions(self) -> None:
        runs = self.selected_runs()
        training = [self.model.label(r) for r in runs if self.training_reason(r)]
        busy = self._delete_runner.busy
        self.open_button.setEnabled(len(runs) >= 1)
        self.reveal_button.setEnabled(len(runs) >= 1)
        self.rename_button.setEnabled(len(runs) == 1 and not training and not busy)
        self.delete_button.setEnabled(bool(runs) and not training and not busy)
        why = f"Training now: {', '.join(training)}; a run cannot be changed while it trains" if training else ""
        last = len(runs) == 1 and (runs[0].path / "checkpoints" / "last.pt").is_file()
        elsewhere = "" if why or not self.state.training else "A run is training now; continue this one after it"
        self.continue_button.setEnabled(last and not training and not busy and not elsewhere)
        self.continue_button.setToolTip(why or elsewhere or (
            "Train this run on from its last checkpoint (in the Training panel)" if last
            else "Select one run that has a last checkpoint"))
        self.rename_button.setToolTip(why or ("Rename the run folder (F2)" if len(runs) <= 1
                                              else "Select one run to rename it"))
        self.delete_button.setToolTip(why or "Delete the selected run folders (Delete)")

    # -- actions ---------------------------------------------------------------------------------
    def open_selected(self) -> None:
        run = self.current_run()
        if run is not None:
            self.openRun.emit(run.path)

    def continue_selected(self) -> None:
        run = self.current_run()
        if run is not None and not self.training_reason(run):
            self.continueRun.emit(run.path)

    def reveal_selected(self) -> None:
        run = self.current_run()
        if run is not None:
            self.reveal_path(run.path)

    def rename_selected(self) -> Path | None:
        """Ask for a new name of the current run and rename its folder; the new path, or None."""
        run = self.current_run()
        if run is None or self._blocked([run], "rename"):
            return None
        new_name = self.ask_new_name(run.name)
        if new_name is None or new_name == run.name:
            return None
        try:
            check_run_name(new_name)
            new_path = rename_run(run.path, new_name)
        except (ValueError, OSError, RuntimeError) as exc:
            self.show_message(f"Cannot rename {run.name}: {exc}")
            return None
        self.model.replace_run(run.path, read_run(new_path))
        if self._scan_runner.busy:  # a scan started before the rename would list the old folder: scan again
            self.refresh()
        if _same(self.state.run_dir, run.path):
            self.state.set_run(new_path)
        self.show_message(f"Renamed {run.name} to {new_path.name}", "success")
        self.select_runs([new_path])
        self.state.runMoved.emit(run.path, new_path)  # panels showing it follow it
        return new_path

    def delete_selected(self) -> bool:
        """Ask, then delete the selected runs in the background; False when refused or declined."""
        runs = self.selected_runs()
        if not runs or self._delete_runner.busy or self._blocked(runs, "delete"):
            return False
        if not self.ask_confirm_delete([self.model.label(run) for run in runs]):
            return False
        paths = [run.path for run in runs]
        self.count_label.setText(f"Deleting {len(paths)}…")
        self._delete_runner.start(lambda ctx: delete_runs(paths, ctx), self._on_deleted,
                                  lambda message: self.show_message(f"Cannot delete: {message}"))
        self._update_actions()
        return True

    def _on_deleted(self, outcome: tuple[list[Path], list[str]]) -> None:
        deleted, errors = outcome
        self.model.remove_runs(deleted)
        if self._scan_runner.busy:  # a scan started before the deletion would list the deleted runs again
            self.refresh()
        if any(_same(path, self.state.run_dir) for path in deleted):
            self.state.set_run(None)
        self._update_count()
        self._on_selection()
        if errors:
            self.show_message("Not deleted: " + "; ".join(errors))
        else:
            self.show_message(f"Deleted {len(deleted)} run{'s' if len(deleted) != 1 else ''}", "success")
        self.runsDeleted.emit(deleted)
        for path in deleted:
            self.state.runMoved.emit(path, None)

    # -- export ----------------------------------------------------------------------------------
    def export_csv(self, path: str | os.PathLike) -> Path:
        """Write the rows shown (filtered, in the table's order) as CSV, atomically."""
        return write_runs_csv(path, self.proxy.visible_runs())

    def export_png(self, path: str | os.PathLike) -> Path:
        """Write the curves plot as a PNG image, atomically."""
        return self.curves.export_png(path)

    def _export_csv_dialog(self) -> None:
        path = self.ask_save_path("Export runs table", str(self._export_folder() / "runs.csv"), "CSV files (*.csv)")
        if path:
            self._export(self.export_csv, path)

    def _export_png_dialog(self) -> None:
        metric = self.curves.current_metric() or "curves"
        path = self.ask_save_path("Export plot", str(self._export_folder() / f"runs-{metric}.png"),
                                  "PNG images (*.png)")
        if path:
            self._export(self.export_png, path)

    def _export_folder(self) -> Path:
        return self.folder if self.folder.is_dir() else Path.home()

    def _export(self, export, path: str) -> None:
        try:
            written = export(path)
        except (OSError, ValueError, RuntimeError) as exc:
            self.show_message(f"Could not export to {path}: {exc}")
            return
        self.show_message(f"Exported {written}", "success")

    def shutdown(self) -> None:
        """Cancel the background jobs and wait for them; safe to call twice."""
        self._closed = True
        for runner in (self._scan_runner, self._curves_runner, self._delete_runner):
            runner.shutdown()
        self.compare.shutdown()
