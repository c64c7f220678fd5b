"""New / open / save experiments (the engine's JSON config), recent files, and the experiment
restored at launch."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QWidget

from app.core.config import ConfigError, ExperimentConfig
from app.core.paths import user_data_dir

from .file_dialogs import ask_save_file
from .settings import AppSettings
from .state import ExperimentState

FILTER = "SegStudio experiment (*.json);;All files (*)"
AUTOSAVE_MS = 2000  # the session is saved this long after the last edit


def last_session_path() -> Path:
    return user_data_dir() / "last_experiment.json"


def first_launch_config() -> ExperimentConfig:
    """The experiment set up when there is nothing to restore: the demo data, a U-Net with
    Dice + cross-entropy, sized so a CPU finishes a useful run in a few minutes."""
    config = ExperimentConfig(name="demo-unet")
    config.training.epochs = 30
    config.data.patch_size = 128
    config.training.batch_size = 8
    return config.validate()


def startup_config() -> tuple[ExperimentConfig, str | None]:
    """The experiment the window opens with: the one open when it was last closed, else the
    first-launch one. Returns it and a note when the saved one could not be used."""
    path = last_session_path()
    if path.exists():
        try:
            return ExperimentConfig.load(path), None
        except (ConfigError, OSError, ValueError) as exc:
            kept = path.with_name(f"{path.stem}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}.json")
            try:  # the next session save would replace the only copy of an experiment never saved elsewhere
                path.replace(kept)
            except OSError:
                kept = path
            return first_launch_config(), (f"the last session's experiment could not be restored ({exc}); "
                                           f"it is kept as {kept}")
    return first_launch_config(), None


class ExperimentFiles(QObject):
    """The File menu's experiment actions; reports problems in a dialog (user-initiated only)."""

    message = Signal(str)  # a line for the status bar

    def __init__(self, state: ExperimentState, settings: AppSettings, parent: QWidget):
        super().__init__(parent)
        self.state, self.settings, self.window = state, settings, parent
        self.new_action = QAction("&New experiment", parent, shortcut=QKeySequence.StandardKey.New,
                                  toolTip="Start from the default experiment on the demo data")
        self.open_action = QAction("&Open experiment…", parent, shortcut=QKeySequence.StandardKey.Open,
                                   toolTip="Open an experiment file (JSON)")
        self.save_action = QAction("&Save experiment", parent, shortcut=QKeySequence.StandardKey.Save,
                                   toolTip="Save the experiment settings")
        self.save_as_action = QAction("Save experiment &as…", parent, shortcut=QKeySequence.StandardKey.SaveAs)
        self.recent_menu = QMenu("Recent experiments", parent)
        self.new_action.triggered.connect(self.new)
        self.open_action.triggered.connect(self.choose_and_open)
        self.save_action.triggered.connect(self.save)
        self.save_as_action.triggered.connect(self.save_as)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        state.trainingChanged.connect(self._on_training)
        self._autosave = QTimer(self, singleShot=True, interval=AUTOSAVE_MS)  # a kill or crash loses seconds, not edits
        self._autosave.timeout.connect(self.save_session)
        state.configChanged.connect(lambda *_: self._autosave.start())
        state.dirtyChanged.connect(lambda _dirty: self._autosave.start())

    def _on_training(self, running: bool) -> None:
        for action in (self.new_action, self.open_action):
            action.setEnabled(not running)
        self.recent_menu.setEnabled(not running)

    def confirm_discard(self) -> bool:
        """Before replacing an edited experiment: save it, discard the edits, or cancel."""
        if not self.state.dirty:
            return True
        answer = QMessageBox.question(
            self.window, "Unsaved experiment",
            f"The experiment \"{self.state.config_path.name if self.state.config_path else self.state.config.name}\" "
            "has unsaved changes. Save them first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new(self) -> None:
        if not self.confirm_discard():
            return
        self.state.set_config(first_launch_config(), None, self)
        self.message.emit("New experiment on the demo data")

    def choose_and_open(self) -> None:
        if not self.confirm_discard():
            return
        start = str(self.state.config_path.parent) if self.state.config_path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self.window, "Open experiment", start, FILTER)
        if path:
            self.open(path, confirm=False)

    def open(self, path: str | Path, confirm: bool = True) -> bool:
        """Load an experiment file; a bad file is reported and the current experiment kept.
        Unsaved edits are offered for saving first unless ``confirm`` is False."""
        if confirm and not self.confirm_discard():
            return False
        try:
            config = ExperimentConfig.load(path)
        except (ConfigError, OSError, ValueError) as exc:
            QMessageBox.warning(self.window, "Cannot open experiment", str(exc))
            return False
        self.state.set_config(config, Path(path), self)
        self.settings.add_recent("experiments", path)
        self.message.emit(f"Opened {path}")
        return True

    def save(self) -> bool:
        if self.state.config_path is None:
            return self.save_as()
        return self.save_to(self.state.config_path)

    def save_as(self) -> bool:
        start = str(self.state.config_path or Path.home() / f"{self.state.config.name}.json")
        path = ask_save_file(self.window, "Save experiment", start, FILTER, "json")  # a typed name gets .json
        if not path:
            return False
        if Path(path).stem != self.state.config.name:  # the name runs are called by follows the file's
            self.state.update("name", self, value=Path(path).stem)
        return self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        """Write the experiment atomically; an invalid one is reported, nothing is written."""
        try:
            self.state.snapshot().save(path)
        except (ConfigError, OSError) as exc:
            QMessageBox.warning(self.window, "Cannot save experiment", str(exc))
            return False
        self.state.mark_saved(Path(path))
        self.settings.add_recent("experiments", path)
        self.message.emit(f"Saved {path}")
        return True

    def save_session(self) -> None:
        """Remember the open experiment for the next launch (silently skipped if invalid)."""
        try:
            self.state.snapshot().save(last_session_path())
        except (ConfigError, OSError):
            return
        self.settings.set_value("session/path", str(self.state.config_path or ""))
        self.settings.set_value("session/dirty", "1" if self.state.dirty else "0")

    def restore_session(self) -> str | None:
        """Reattach the restored experiment to its file, with unsaved edits still marked. A file
        changed (or gone) since is not reattached: the experiment is shown unsaved, so Save asks
        where instead of writing over the file's changes. Returns a note saying so, or None."""
        path = self.settings.value("session/path", "")
        dirty, note = self.settings.value("session/dirty", "0") == "1", None
        if isinstance(path, str) and path:
            try:
                same = ExperimentConfig.load(path).to_dict() == self.state.config.to_dict()
            except (ConfigError, OSError, ValueError):
                same = False
            if same:
                self.state.mark_saved(Path(path))
            else:
                dirty, note = True, (f"{path} changed or is gone since the last session: the window shows the "
                                     "last session's experiment, unsaved (open the file to see what it holds)")
        if dirty:
            self.state.mark_dirty()
        return note

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        paths = self.settings.recent("experiments")
        for path in paths:
            self.recent_menu.addAction(path, lambda p=path: self.open(p))  # open() asks about unsaved edits
        if not paths:
            self.recent_menu.addAction("(none)").setEnabled(False)
