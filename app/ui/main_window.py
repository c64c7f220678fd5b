"""The main window: composes the panels as dock widgets, with menus, a toolbar and a status bar.

It owns no behaviour of its own beyond wiring: each panel does its job against the shared
:class:`~app.ui.state.ExperimentState`.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QMessageBox, QTabWidget, QToolBar, QWidget

from app import __version__

from .experiment_files import ExperimentFiles, startup_config
from .resources import app_icon, load_style
from .settings import STACK_SEPARATOR, AppSettings, dataset_entry
from .shortcuts_help import ShortcutsDialog, shortcut_rows
from .state import ExperimentState
from .status_bar import StatusBar
from .tasks import TaskRunner, leave_if_jobs_outlived

# (title, module in app.ui, class), in tab order. The panels whose actions sit in the menus and
# toolbar, and the first one shown, are built with the window; the others are imported and built
# when their dock is first shown (or asked for), which keeps start-up short.
PANELS = (
    ("Dataset", "dataset_panel", "DatasetPanel"),
    ("Augmentation", "augment_panel", "AugmentPanel"),
    ("Model", "model_panel", "ModelPanel"),
    ("Training", "training_panel", "TrainingPanel"),
    ("Predictions", "predictions_panel", "PredictionsPanel"),
    ("Review", "review_panel", "ReviewPanel"),
    ("Runs", "runs_panel", "RunsPanel"),
    ("Sweeps", "sweep_panel", "SweepPanel"),
    ("Loss landscape", "landscape_panel", "LandscapePanel"),
)
EAGER_PANELS = frozenset({"Dataset", "Training", "Predictions", "Review"})
LAYOUT_VERSION = 2  # 2: the Runs, Sweeps and Loss landscape panels


def panel_class(title: str) -> type:
    """The panel class for a title (imports its module)."""
    for name, module, cls in PANELS:
        if name == title:
            return getattr(importlib.import_module(f"{__package__}.{module}"), cls)
    raise KeyError(f"no panel {title!r}; panels: {', '.join(name for name, _, _ in PANELS)}")


def _warm_up(_ctx) -> list[str]:
    """Import the torch-backed engine off the GUI thread and list the compute devices."""
    from app.core import losses, models, optim  # noqa: F401 - imported for their registries
    from app.core.training import engine  # noqa: F401
    from app.core.training.device import available_devices

    return [d.description for d in available_devices()]


class MainWindow(QMainWindow):
    """SegStudio's window. ``shown`` fires once, when the window is first on screen.

    Panels outside :data:`EAGER_PANELS` are built after the window is on screen, one at a time
    starting ``prebuild_delay_ms`` later (None: only when first shown or asked for), so that
    start-up is short and the first click on a tab does not wait."""

    shown = Signal()
    prebuild_delay_ms: int | None = 300

    def __init__(self, state: ExperimentState | None = None, settings: AppSettings | None = None,
                 restore_layout: bool = True):
        super().__init__()
        self.setWindowTitle("SegStudio")
        self.setWindowIcon(app_icon())
        self.settings = settings or AppSettings()
        restored = state is None
        if state is None:
            config, note = startup_config()
            state = ExperimentState(config)
        else:
            note = None
        self.state = state
        self.state.setParent(self)
        self.panels: dict[str, QWidget] = {}  # the panels built so far, by title
        self.docks: dict[str, QDockWidget] = {}
        self._closing_confirmed = False
        self._close_pending = False
        self._was_shown = False
        self.setDockNestingEnabled(True)
        self.setDockOptions(QMainWindow.DockOption.AllowTabbedDocks | QMainWindow.DockOption.AllowNestedDocks
                            | QMainWindow.DockOption.AnimatedDocks)
        self.setTabPosition(Qt.DockWidgetArea.AllDockWidgetAreas, QTabWidget.TabPosition.North)
        for title, _module, cls_name in PANELS:
            self._add_dock(title, cls_name)
        self._default_layout()
        self._default_state = self.saveState(LAYOUT_VERSION)
        self.files = ExperimentFiles(self.state, self.settings, self)
        if restored and note is None:
            note = self.files.restore_session()
        self.status = StatusBar(self.state, self)
        self.setStatusBar(self.status)
        self.files.message.connect(lambda text: self.status.showMessage(text, 5000))
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self.setAcceptDrops(True)
        self.state.datasetChanged.connect(self._remember_dataset)
        self.state.dirtyChanged.connect(lambda _dirty: self._update_title())
        self.state.configChanged.connect(lambda *_: self._update_title())
        self._update_title()
        self.warmup = TaskRunner("warm-up", self)
        if restore_layout:
            self._restore_layout()
        else:
            self.resize(1400, 900)
        if note:
            QTimer.singleShot(0, lambda: self.status.showMessage(note, 10000))

    # -- composition -------------------------------------------------------------------------
    def panel(self, name: str) -> QWidget:
        """A panel by its title, e.g. ``panel("Training")``; built now if it was not yet."""
        if name not in self.panels:
            if name not in self.docks:
                raise KeyError(f"no panel {name!r}; panels: {', '.join(self.docks)}")
            self._build_panel(name)
        return self.panels[name]

    def _add_dock(self, title: str, cls_name: str) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{cls_name}")  # the saved layouts name docks by their class
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.docks[title] = dock
        if title in EAGER_PANELS:
            self._build_panel(title)
        else:
            dock.visibilityChanged.connect(lambda visible, t=title: visible and t not in self.panels
                                           and self._build_panel(t))

    def _prebuild_next(self) -> None:
        """Build the next panel not built yet, then come back for the one after (events in between)."""
        if self._closing_confirmed:
            return
        waiting = [title for title in self.docks if title not in self.panels]
        if waiting:
            self._build_panel(waiting[0])
            if len(waiting) > 1:
                QTimer.singleShot(50, self._prebuild_next)

    def _build_panel(self, title: str) -> None:
        panel = panel_class(title)(self.state, self)
        self.panels[title] = panel
        self.docks[title].setWidget(panel)
        if hasattr(panel, "openRun"):
            panel.openRun.connect(self.open_run)
        if hasattr(panel, "continueRun"):
            panel.continueRun.connect(self.continue_run)

    def _default_layout(self) -> None:
        """Every panel as a tab in one area, the dataset first."""
        docks = list(self.docks.values())
        for dock in docks:
            dock.setFloating(False)
            dock.show()
            self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        for dock in docks[1:]:
            self.tabifyDockWidget(docks[0], dock)
        docks[0].raise_()

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()
        self.docks[PANELS[0][0]].raise_()

    def open_run(self, run_dir) -> None:
        """Show a run's predictions (from the Runs or Sweeps panel)."""
        self.state.set_run(Path(run_dir))
        self.show_panel("Predictions")

    def continue_run(self, run_dir) -> None:
        """Train a run on (from the Runs panel); the Training panel asks how far."""
        self.show_panel("Training")
        self.panel("Training").continue_run_dialog(Path(run_dir))

    def show_panel(self, name: str) -> None:
        dock = self.docks[name]
        dock.show()
        dock.raise_()

    def _restore_layout(self) -> None:
        geometry, state = self.settings.window_state()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1400, 900)
        if state is not None:
            self.restoreState(state, LAYOUT_VERSION)
        if str(self.settings.value("review/workspace", "false")).lower() == "true":
            self.set_review_mode(True)

    # -- actions, menus, toolbar -------------------------------------------------------------
    def _build_actions(self) -> None:
        self.quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close)
        self.reset_layout_action = QAction("&Reset layout", self, triggered=self.reset_layout,
                                           toolTip="Put every panel back in its default place")
        self.shortcuts_action = QAction("&Keyboard shortcuts", self, shortcut=QKeySequence.StandardKey.HelpContents,
                                        triggered=self.show_shortcuts)
        self.about_action = QAction("&About SegStudio", self, triggered=self.show_about)
        self.review_mode_action = QAction("Re&view workspace", self, checkable=True, shortcut=QKeySequence("Ctrl+Shift+R"),
                                          toolTip="Only the review: training controls hidden", toggled=self.set_review_mode)
        self._layout_before_review = None
        self.panel_actions = []
        for index, name in enumerate(self.docks, start=1):
            action = QAction(f"{name} panel", self, shortcut=QKeySequence(f"Ctrl+{index}"),
                             toolTip=f"Show the {name} panel and bring it to the front",
                             triggered=lambda _=False, n=name: self.show_panel(n))
            self.panel_actions.append(action)

    def _build_menus(self) -> None:
        data, training, predictions = self.panel("Dataset"), self.panel("Training"), self.panel("Predictions")
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addActions([self.files.new_action, self.files.open_action])
        file_menu.addMenu(self.files.recent_menu)
        file_menu.addActions([self.files.save_action, self.files.save_as_action])
        file_menu.addSeparator()
        file_menu.addActions([data.open_folder_action, data.open_stacks_action, data.demo_action])
        self.recent_datasets_menu = file_menu.addMenu("Recent datasets")
        self.recent_datasets_menu.aboutToShow.connect(self._fill_recent_datasets)
        file_menu.addSeparator()
        file_menu.addActions([predictions.open_checkpoint_action, predictions.folder_bar.action])
        predictions.folder_bar.action.triggered.connect(lambda: self.show_panel("Predictions"))  # its progress
        file_menu.addSeparator()
        review = self.panel("Review")
        file_menu.addActions([review.new_action, review.open_action])
        self.recent_reviews_menu = file_menu.addMenu("Recent reviews")
        self.recent_reviews_menu.aboutToShow.connect(self._fill_recent_reviews)
        file_menu.addAction(review.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        train_menu = self.train_menu = self.menuBar().addMenu("&Train")
        train_menu.addActions([training.start_action, training.pause_action, training.stop_action])
        train_menu.addSeparator()
        train_menu.addAction(training.continue_action)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addActions(self.panel_actions)  # Ctrl+1…5: show and raise (a toggle would hide it again)
        view_menu.addSeparator()
        panels_menu = self.panels_menu = view_menu.addMenu("Show or hide panels")
        for dock in self.docks.values():
            panels_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        view_menu.addAction(self.review_mode_action)
        view_menu.addAction(self.reset_layout_action)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addActions([self.shortcuts_action, self.about_action])

    def _build_toolbar(self) -> None:
        data, training, predictions = self.panel("Dataset"), self.panel("Training"), self.panel("Predictions")
        bar = QToolBar("Main", self)
        bar.setObjectName("main_toolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        bar.addActions([data.open_folder_action, data.demo_action, self.files.open_action, self.files.save_action])
        bar.addSeparator()
        bar.addActions([training.start_action, training.pause_action, training.stop_action])
        bar.addSeparator()
        bar.addAction(predictions.open_checkpoint_action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.toolbar = bar

    def set_review_mode(self, on: bool) -> None:
        """The distraction-free review layout: only the Review panel, no training controls."""
        if self.review_mode_action.isChecked() != on:
            self.review_mode_action.setChecked(on)  # toggles back into this method
            return
        if on == (self._layout_before_review is not None):
            return
        review = self.docks["Review"]
        if on:
            self._layout_before_review = self.saveState(LAYOUT_VERSION)
            for name, dock in self.docks.items():
                dock.setVisible(name == "Review")
            review.setFloating(False)
            review.setFeatures(QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)  # fixed in place
            review.setTitleBarWidget(QWidget())
            review.raise_()
        else:
            review.setTitleBarWidget(None)
            review.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                               | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                               | QDockWidget.DockWidgetFeature.DockWidgetClosable)
            self.restoreState(self._layout_before_review, LAYOUT_VERSION)
            self._layout_before_review = None
        self.toolbar.setVisible(not on)
        self.train_menu.menuAction().setVisible(not on)
        self.panels_menu.menuAction().setEnabled(not on)
        self.reset_layout_action.setEnabled(not on)
        for action in self.panel_actions:
            action.setEnabled(not on or action.text().startswith("Review"))
        self.settings.set_value("review/workspace", on)

    def _fill_recent_reviews(self) -> None:
        menu, panel = self.recent_reviews_menu, self.panel("Review")
        menu.clear()
        for folder in self.settings.recent("reviews"):
            menu.addAction(folder, lambda f=folder: (self.show_panel("Review"), panel.open_review(f)))
        if menu.isEmpty():
            menu.addAction("(none)").setEnabled(False)

    def open_review(self, folder: str) -> bool:
        """Open a review folder in the review workspace."""
        self.show_panel("Review")
        return self.panel("Review").open_review(folder)

    def _remember_dataset(self) -> None:
        data = self.state.config.data
        if self.state.dataset is not None and data.path:
            self.settings.add_recent("datasets", f"{data.path}{STACK_SEPARATOR}{data.label_stack}"
                                     if data.label_stack else data.path)

    def _fill_recent_datasets(self) -> None:
        menu, panel = self.recent_datasets_menu, self.panel("Dataset")
        menu.clear()
        for entry in self.settings.recent("datasets"):
            image, labels = dataset_entry(entry)
            action = menu.addAction(f"{image}  +  {labels}" if labels else image,
                                    (lambda i=image, l=labels: panel.open_stacks(i, l)) if labels
                                    else (lambda i=image: panel.open_folder(i)))
            action.setEnabled(not self.state.training)
        if menu.isEmpty():
            menu.addAction("(none)").setEnabled(False)

    # -- drag and drop: an experiment, a checkpoint, or a dataset ----------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if event.mimeData().hasUrls() and not self.state.training:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt naming
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if self.open_paths(paths):
            event.acceptProposedAction()

    def open_paths(self, paths: list[str]) -> bool:
        """Open dropped files: a review (``review.json`` or its folder), ``.json`` an experiment,
        ``.pt`` a checkpoint, else a dataset."""
        if not paths or self.state.training:
            return False
        first = paths[0].lower()
        if len(paths) == 1 and Path(paths[0]).name == "review.json":  # before other .json: not an experiment
            return self.open_review(str(Path(paths[0]).parent))
        if len(paths) == 1 and first.endswith(".json"):
            return self.files.open(paths[0])
        if len(paths) == 1 and (Path(paths[0]) / "review.json").is_file():
            return self.open_review(paths[0])
        if len(paths) == 1 and first.endswith(".pt"):
            self.panel("Predictions").open_checkpoint(paths[0])
            self.show_panel("Predictions")
            return True
        self.show_panel("Dataset")
        return self.panel("Dataset").drop_paths(paths)

    def _update_title(self) -> None:
        path = self.state.config_path
        name = path.name if path else self.state.config.name
        self.setWindowTitle(f"{name}{' *' if self.state.dirty else ''} — SegStudio")

    def show_shortcuts(self) -> None:
        for title in self.docks:  # the panels not shown yet have shortcuts too
            self.panel(title)
        ShortcutsDialog(shortcut_rows(self.findChildren(QAction)), self).exec()

    def show_about(self) -> None:
        QMessageBox.about(self, "About SegStudio",
                          f"<b>SegStudio {__version__}</b><br>Biomedical image segmentation experiments and review."
                          f"<br>Python {sys.version.split()[0]}")

    # -- life cycle --------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        if not self._was_shown:
            self._was_shown = True
            QTimer.singleShot(0, self._after_first_show)

    def _after_first_show(self) -> None:
        if self._closing_confirmed:
            return
        if self.state.dataset is None:
            self.panel("Dataset").load_from_config()
        if self.review_mode_action.isChecked():  # only the review workspace reopens (and locks) the last review
            self.panel("Review").restore_last()
        if self.prebuild_delay_ms is not None:
            QTimer.singleShot(self.prebuild_delay_ms, self._prebuild_next)
        self.warmup.start(_warm_up, on_done=self.status.set_devices,
                          on_failed=lambda message: self.status.device_label.setText(f"PyTorch failed: {message}"))
        self.shown.emit()

    def _close_when_stopped(self, running: bool) -> None:
        if not running:
            QTimer.singleShot(0, self.close)

    def confirm_close_during_training(self) -> bool:
        """Ask before stopping a run; tests replace this."""
        answer = QMessageBox.question(
            self, "Training in progress",
            "A training run is in progress. Stop it and quit? The last checkpoint is saved first.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def confirm_close_during_batch(self) -> bool:
        """Ask before stopping a folder prediction; tests replace this."""
        answer = QMessageBox.question(
            self, "Predicting a folder",
            "A folder is being predicted. Stop it and quit? The masks written so far stay, and predictions.json "
            "says how far it got.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt naming
        batch = self.panels["Predictions"].folder_bar if "Predictions" in self.panels else None
        if batch is not None and batch.busy and not self._closing_confirmed:
            if not self.confirm_close_during_batch():
                event.ignore()
                return
            batch.stop()  # the panel's shutdown below waits for the image being predicted
        training, sweeps = self.panel("Training"), self.panels.get("Sweeps")
        sweeping = sweeps is not None and sweeps.running
        if self.state.training or training.session.running or sweeping:
            if not self._closing_confirmed and not self.confirm_close_during_training():
                event.ignore()
                return
            self._closing_confirmed = True
            # Stop without blocking the window (a final validation may take a while); close
            # for real once the run has saved its checkpoint and its thread has ended.
            if not self._close_pending:
                self._close_pending = True
                self.status.showMessage("Stopping the run and saving its checkpoint before closing…")
                if sweeping:
                    sweeps.runningChanged.connect(self._close_when_stopped)
                    sweeps.stop()
                else:
                    training.session.runningChanged.connect(self._close_when_stopped)
                    training.stop()
            event.ignore()
            return
        self._closing_confirmed = True
        self.settings.save_window_state(self.saveGeometry(), self._layout_before_review or self.saveState(LAYOUT_VERSION))
        self.files.save_session()
        self.hide()  # background jobs may take a moment to stop (a loss-landscape layer): not in a frozen window
        for part in (*self.panels.values(), self.warmup):
            part.shutdown()
        event.accept()


def prepare_application(argv: list[str]) -> QApplication:
    """The QApplication (created once) with SegStudio's name, organisation (QSettings), desktop
    entry name (the Linux menu entry ``segstudio.desktop``), icon and style."""
    from .resources import set_identity

    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    set_identity(app)
    app.setWindowIcon(app_icon())
    app.setStyleSheet(load_style())
    return app


def run(argv: list[str], review: str | None = None, open_path: str | None = None, splash=None) -> int:
    """Start the application and show the window: in the review workspace with ``review`` open,
    or with ``open_path`` opened (an experiment, checkpoint, review or dataset, as when dropped
    on the window; a file that cannot be opened is reported in the window). ``splash``, a splash
    window already up, closes when the window is on screen. Returns the exit status."""
    started = time.perf_counter()
    app = prepare_application(argv)
    window = MainWindow()
    if review:
        window.set_review_mode(True)
        window.shown.connect(lambda: window.open_review(review))
    elif open_path:
        target = str(Path(open_path).absolute())

        def open_target() -> None:
            if not window.open_paths([target]):
                window.status.showMessage(f"Could not open {target}", 15000)
        window.shown.connect(open_target)
    if os.environ.get("SEGSTUDIO_EXIT_AFTER_SHOW"):  # startup benchmark: report and leave
        def report() -> None:
            print(f"window shown after {time.perf_counter() - started:.3f} s in-process", flush=True)
            window._closing_confirmed = True
            window.close()
            app.quit()
        window.shown.connect(report)
    if splash is not None:
        window.shown.connect(splash.close)
    window.show()
    return leave_if_jobs_outlived(app.exec())
