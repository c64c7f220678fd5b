"""The ready-made widgets of the training panel, built and described but not wired.

Train/Pause/Stop actions with their shortcuts and tool buttons, the log-scale check box and
export buttons, the message banner (and its :data:`BANNER_STYLES`), the whole-run progress bar,
the run-folder row and the run log, plus the Train tooltip describing what a run will do and
:func:`commit_pending_edit` (a half-typed setting counts when Train is pressed). The
panel composes these and connects them to the training session; nothing here knows about a run.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QCheckBox, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QProgressBar, QPushButton, QSizePolicy, QStyle, QToolButton, QWidget)

from .styles import BANNER_COLOURS, banner_style

BANNER_STYLES = {kind: banner_style(kind) for kind in BANNER_COLOURS}


def commit_pending_edit() -> None:
    """A number typed into a spin box counts even if Train is pressed before leaving the box."""
    focus = QApplication.focusWidget()
    if isinstance(focus, QAbstractSpinBox):
        focus.interpretText()
    elif isinstance(focus, QLineEdit) and isinstance(focus.parent(), QAbstractSpinBox):
        focus.parent().interpretText()


def control_actions(owner: QWidget) -> tuple[QAction, QAction, QAction]:
    """The Train, Pause (checkable) and Stop actions, added to ``owner`` so their shortcuts work."""
    style = owner.style()
    start = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Train", owner)
    start.setObjectName("trainAction")
    start.setShortcuts([QKeySequence("Ctrl+R"), QKeySequence("F5")])
    pause = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaPause), "Pause", owner)
    pause.setObjectName("pauseAction")
    pause.setCheckable(True)
    pause.setShortcut(QKeySequence("F6"))
    pause.setToolTip("Pause the run after the current step; press again to resume (F6). "
                     "Paused time does not count towards the time limit.")
    stop = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "Stop", owner)
    stop.setObjectName("stopAction")
    stop.setShortcuts([QKeySequence("Shift+F5"), QKeySequence("Ctrl+.")])
    stop.setToolTip("Stop the run after the current step (Shift+F5); last.pt is saved so it "
                    "can be resumed, and the results stay available.")
    for action in (start, pause, stop):
        action.setStatusTip(action.toolTip())
        owner.addAction(action)
    return start, pause, stop


def continue_action(owner: QWidget) -> QAction:
    """Continue a stopped or finished run (added to ``owner``)."""
    action = QAction(owner.style().standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward), "Continue run…", owner)
    action.setObjectName("continueAction")
    action.setToolTip("Continue a stopped or finished run from its last checkpoint, with its own settings: "
                      "more epochs, or a larger time limit")
    action.setStatusTip(action.toolTip())
    owner.addAction(action)
    return action


def tool_button(action: QAction, name: str) -> QToolButton:
    button = QToolButton()
    button.setObjectName(name)
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    return button


def push_button(text: str, name: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setToolTip(tip)
    return button


def log_scale_check() -> QCheckBox:
    check = QCheckBox("Log scale")
    check.setObjectName("logScaleCheck")
    check.setToolTip("Show the loss plots (per epoch and per step) on a logarithmic y axis.")
    return check


def export_buttons() -> tuple[QPushButton, QPushButton]:
    """The Export CSV… and Export PNG… buttons."""
    return (push_button("Export CSV…", "exportCsvButton", "Save the per-epoch history (losses, accuracy, IoU, "
                        "Dice, learning rate, seconds) as a CSV file."),
            push_button("Export PNG…", "exportPngButton", "Save an image of the four plots as a PNG file."))


def banner_label() -> QLabel:
    """The hidden, selectable message banner; style it with :data:`BANNER_STYLES`."""
    banner = QLabel()
    banner.setObjectName("trainingBanner")
    banner.setWordWrap(True)
    banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    banner.hide()
    return banner


def run_progress_bar() -> QProgressBar:
    bar = QProgressBar()
    bar.setObjectName("trainingProgress")
    bar.setRange(0, 1)
    bar.setValue(0)
    bar.setTextVisible(True)
    bar.setFormat("Idle")
    bar.setToolTip("Progress over the whole run (epochs × steps), images per second and the "
                   "estimated time left (also bounded by the time limit, if one is set).")
    return bar


def run_folder_row() -> tuple[QHBoxLayout, QLabel, QPushButton]:
    """The "Run folder:" row: its layout, the folder label and the (disabled) Open button."""
    row = QHBoxLayout()
    caption = QLabel("Run folder:")
    label = QLabel("—")
    label.setObjectName("runFolderLabel")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setToolTip("The folder of the current run: config.json, history.csv, train.log, "
                     "summary.json and checkpoints/ (best.pt, last.pt). The text can be selected.")
    open_button = push_button("Open", "openRunButton", "Open the run folder in the file manager.")
    open_button.setEnabled(False)
    row.addWidget(caption)
    row.addWidget(label, 1)
    row.addWidget(open_button)
    return row, label, open_button


def run_log() -> QPlainTextEdit:
    log = QPlainTextEdit()
    log.setObjectName("trainingLog")
    log.setReadOnly(True)
    log.setMaximumBlockCount(5000)
    log.setMinimumHeight(6 * log.fontMetrics().lineSpacing())  # five whole lines and the frame
    log.setPlaceholderText("Run events, checkpoints and warnings appear here.")
    log.setToolTip("Run start and end, epochs, checkpoints and warnings of the training runs.")
    return log


def start_tooltip(cfg, runs: Path, dataset) -> str:
    """What pressing Train does with experiment config ``cfg``, runs folder ``runs`` and ``dataset``."""
    data = ("the loaded dataset" if dataset is None else
            f"{len(dataset.split('train'))} training / {len(dataset.split('val'))} validation images")
    return (f"Train the current experiment on {data} (Ctrl+R / F5): {cfg.training.epochs} epochs of "
            f"{cfg.data.patch_size}-pixel patches, batch {cfg.training.batch_size}. A new run folder is "
            f"created in {runs} with config.json, history.csv, train.log and checkpoints (last.pt after "
            f"every epoch, best.pt whenever {cfg.training.best_metric} improves). Settings are locked "
            "while the run lasts.")
