"""The training panel: start, pause and stop a run, follow its progress and live curves, export them.

The run itself lives in a :class:`~app.ui.training_worker.TrainingSession` (its own thread).
Incoming data is only stored when it arrives; a single-shot timer redraws the plots at most
every :data:`REDRAW_MS` milliseconds, so a fast model cannot slow the window down. Per-step
losses stay memory-bounded: past :data:`MAX_STEP_POINTS` points every second one is dropped
and later steps are kept at the same stride.
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QByteArray, QEvent, QIODevice, QRectF, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QImage, QKeySequence, QPainter, QPalette
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QCheckBox, QFileDialog, QHBoxLayout, QLabel,
                               QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QSizePolicy, QSplitter, QStyle, QToolButton, QVBoxLayout, QWidget)

from app.core.atomic import atomic_write_bytes, atomic_write_text
from app.core.config import ConfigError
from app.core.training.run_folder import HISTORY_COLUMNS, default_runs_dir, new_run_dir

from .state import ExperimentState
from .training_worker import StepBatch, TrainingSession

REDRAW_MS = 250  # plots are redrawn at most this often
STAGGER_MS = 30  # after an epoch, the next per-epoch plot is updated this much later
EPOCH_PLOTS = {  # plot -> (curve, EpochFinished field) drawn on it
    "loss": (("train_loss", "train_loss"), ("val_loss", "val_loss")),
    "accuracy": (("train_accuracy", "train_pixel_accuracy"), ("val_accuracy", "val_pixel_accuracy")),
    "overlap": (("val_iou", "val_iou"), ("val_dice", "val_dice")),
}
MAX_STEP_POINTS = 20_000  # per-step points kept before decimating
EMA_WEIGHT = 0.9  # smoothing of the per-step loss (bias-corrected exponential moving average)

COLOURS = {"train": "#4e9bd6", "val": "#f28e2b", "iou": "#59a14f", "dice": "#b07aa1", "marker": "#e15759"}
FAILURE_TITLES = {"nan": "Training diverged", "out of memory": "Out of memory", "data": "Data problem",
                  "error": "Training failed"}
BANNER_STYLES = {
    "error": "background: rgba(211, 47, 47, 0.22); border: 1px solid #d32f2f; border-radius: 4px; padding: 6px;",
    "warning": "background: rgba(245, 166, 35, 0.22); border: 1px solid #f5a623; border-radius: 4px; padding: 6px;",
    "success": "background: rgba(67, 160, 71, 0.22); border: 1px solid #43a047; border-radius: 4px; padding: 6px;",
    "info": "background: rgba(66, 133, 244, 0.18); border: 1px solid #4285f4; border-radius: 4px; padding: 6px;",
}


class WholeNumberAxis(pg.AxisItem):
    """An axis of epochs or steps: ticks only at whole numbers (no "epoch 2.5")."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802,N803 - pyqtgraph naming
        levels = [(spacing, [v for v in values if float(v).is_integer()])
                  for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        if not any(values for _, values in levels):
            first, last = math.ceil(minVal), math.floor(maxVal)
            levels = [(1.0, [float(v) for v in range(first, last + 1)])] if last - first < 50 else levels
        return levels


def commit_pending_edit() -> None:
    """A number typed into a spin box counts even if Train is pressed before leaving the box."""
    focus = QApplication.focusWidget()
    if isinstance(focus, QAbstractSpinBox):
        focus.interpretText()
    elif isinstance(focus, QLineEdit) and isinstance(focus.parent(), QAbstractSpinBox):
        focus.parent().interpretText()


def format_duration(seconds: float) -> str:
    """``45s``, ``1m 20s``, ``2h 05m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


class StepSeries:
    """Per-step losses and their smoothed curve, bounded to ``MAX_STEP_POINTS`` points.

    The moving average is updated with every loss received, so it stays exact even when raw
    points are dropped; once the buffer is full every second point is dropped and later steps
    are kept at the new stride, so the kept points stay evenly spaced.
    """

    def __init__(self, weight: float = EMA_WEIGHT):
        self.weight = weight
        self.clear()

    def clear(self) -> None:
        self.steps = np.empty(0, dtype=np.int64)
        self.losses = np.empty(0, dtype=np.float64)
        self.smooth = np.empty(0, dtype=np.float64)
        self.stride = 1
        self.received = 0
        self._ema = 0.0
        self._ema_count = 0

    def __len__(self) -> int:
        return len(self.steps)

    def append(self, steps: np.ndarray, losses: np.ndarray) -> None:
        smooth = np.empty(len(losses), dtype=np.float64)
        for i, loss in enumerate(losses):
            if math.isfinite(loss):
                self._ema = self.weight * self._ema + (1.0 - self.weight) * loss
                self._ema_count += 1
            smooth[i] = self._ema / (1.0 - self.weight ** self._ema_count) if self._ema_count else np.nan
        index = self.received + np.arange(len(steps))
        keep = index % self.stride == 0
        self.received += len(steps)
        self.steps = np.concatenate([self.steps, np.asarray(steps, dtype=np.int64)[keep]])
        self.losses = np.concatenate([self.losses, np.asarray(losses, dtype=np.float64)[keep]])
        self.smooth = np.concatenate([self.smooth, smooth[keep]])
        while len(self.steps) > MAX_STEP_POINTS:
            self._decimate()

    def _decimate(self) -> None:
        self.steps, self.losses, self.smooth = self.steps[::2], self.losses[::2], self.smooth[::2]
        self.stride *= 2


class RunProgress:
    """Where the run stands and how long it will still take (paused time excluded)."""

    def __init__(self, epochs: int, time_limit: float, clock=time.monotonic):
        self.epochs, self.time_limit = max(1, epochs), time_limit
        self.clock = clock
        self.epoch = self.step = self.steps_in_epoch = 0
        self.images_per_second = 0.0
        self._first: tuple[float, int] | None = None  # (clock, steps done) at the first batch
        self._paused_total = 0.0
        self._paused_since: float | None = None

    @property
    def total(self) -> int:
        return self.epochs * self.steps_in_epoch

    @property
    def done(self) -> int:
        return max(0, (self.epoch - 1) * self.steps_in_epoch + self.step)

    def update(self, batch: StepBatch) -> None:
        self.epoch, self.step, self.steps_in_epoch = batch.epoch, batch.step, batch.steps_in_epoch
        self.images_per_second = batch.images_per_second
        if self._first is None:
            self._first = (self._active_clock(), self.done)

    def set_paused(self, paused: bool) -> None:
        now = self.clock()
        if paused and self._paused_since is None:
            self._paused_since = now
        elif not paused and self._paused_since is not None:
            self._paused_total += now - self._paused_since
            self._paused_since = None

    def _active_clock(self) -> float:
        now = self._paused_since if self._paused_since is not None else self.clock()
        return now - self._paused_total

    def seconds_left(self) -> float | None:
        """Estimated from the rate since the first batch (start-up excluded) and the time limit."""
        if self._first is None or not self.total:
            return None
        clock, first_done = self._first
        elapsed = self._active_clock() - clock
        progressed = self.done - first_done
        estimate = (self.total - self.done) * elapsed / progressed if progressed > 0 and elapsed > 0 else None
        if self.time_limit > 0:
            by_limit = max(0.0, self.time_limit - elapsed)
            estimate = by_limit if estimate is None else min(estimate, by_limit)
        return estimate

    def text(self) -> str:
        left = self.seconds_left()
        parts = [f"Epoch {self.epoch}/{self.epochs}", f"step {self.step}/{self.steps_in_epoch}",
                 f"{self.images_per_second:.1f} img/s",
                 f"{format_duration(left)} left" if left is not None else "estimating time left"]
        return " · ".join(parts)


class TrainingPanel(QWidget):
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
        style = self.style()
        self.start_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Train", self)
        self.start_action.setObjectName("trainAction")
        self.start_action.setShortcuts([QKeySequence("Ctrl+R"), QKeySequence("F5")])
        self.pause_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaPause), "Pause", self)
        self.pause_action.setObjectName("pauseAction")
        self.pause_action.setCheckable(True)
        self.pause_action.setShortcut(QKeySequence("F6"))
        self.pause_action.setToolTip("Pause the run after the current step; press again to resume (F6). "
                                     "Paused time does not count towards the time limit.")
        self.stop_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "Stop", self)
        self.stop_action.setObjectName("stopAction")
        self.stop_action.setShortcuts([QKeySequence("Shift+F5"), QKeySequence("Ctrl+.")])
        self.stop_action.setToolTip("Stop the run after the current step (Shift+F5); last.pt is saved so it "
                                    "can be resumed, and the results stay available.")
        for action in (self.start_action, self.pause_action, self.stop_action):
            action.setStatusTip(action.toolTip())
            self.addAction(action)

    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(self._build_controls())
        self.banner = QLabel()
        self.banner.setObjectName("trainingBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        self.banner_kind = ""
        layout.addWidget(self.banner)
        self.progress = QProgressBar()
        self.progress.setObjectName("trainingProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("Idle")
        self.progress.setToolTip("Progress over the whole run (epochs × steps), images per second and the "
                                 "estimated time left (also bounded by the time limit, if one is set).")
        layout.addWidget(self.progress)
        layout.addLayout(self._build_run_row())
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self._build_plots())
        self.log = QPlainTextEdit()
        self.log.setObjectName("trainingLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setMinimumHeight(50)
        self.log.setPlaceholderText("Run events, checkpoints and warnings appear here.")
        self.log.setToolTip("Run start and end, epochs, checkpoints and warnings of the training runs.")
        self.splitter.addWidget(self.log)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 1)
        layout.addWidget(self.splitter, 1)

    def _build_controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.start_button, self.pause_button, self.stop_button = (
            self._tool_button(a, n) for a, n in ((self.start_action, "trainButton"),
                                                  (self.pause_action, "pauseButton"),
                                                  (self.stop_action, "stopButton")))
        for button in (self.start_button, self.pause_button, self.stop_button):
            row.addWidget(button)
        row.addSpacing(12)
        self.log_scale = QCheckBox("Log scale")
        self.log_scale.setObjectName("logScaleCheck")
        self.log_scale.setToolTip("Show the loss plots (per epoch and per step) on a logarithmic y axis.")
        row.addWidget(self.log_scale)
        row.addStretch(1)
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_csv_button.setObjectName("exportCsvButton")
        self.export_csv_button.setToolTip("Save the per-epoch history (losses, accuracy, IoU, Dice, learning "
                                          "rate, seconds) as a CSV file.")
        self.export_png_button = QPushButton("Export PNG…")
        self.export_png_button.setObjectName("exportPngButton")
        self.export_png_button.setToolTip("Save an image of the four plots as a PNG file.")
        row.addWidget(self.export_csv_button)
        row.addWidget(self.export_png_button)
        return row

    def _tool_button(self, action: QAction, name: str) -> QToolButton:
        button = QToolButton()
        button.setObjectName(name)
        button.setDefaultAction(action)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        return button

    def _build_run_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        caption = QLabel("Run folder:")
        self.run_label = QLabel("—")
        self.run_label.setObjectName("runFolderLabel")
        self.run_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.run_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.run_label.setToolTip("The folder of the current run: config.json, history.csv, train.log, "
                                  "summary.json and checkpoints/ (best.pt, last.pt). The text can be selected.")
        self.open_run_button = QPushButton("Open")
        self.open_run_button.setObjectName("openRunButton")
        self.open_run_button.setToolTip("Open the run folder in the file manager.")
        self.open_run_button.setEnabled(False)
        row.addWidget(caption)
        row.addWidget(self.run_label, 1)
        row.addWidget(self.open_run_button)
        return row

    def _build_plots(self) -> pg.GraphicsLayoutWidget:
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setObjectName("trainingPlots")
        self.plots.setMinimumSize(240, 160)
        self.plots.ci.layout.setContentsMargins(2, 2, 2, 2)
        self._plot_texts: dict[pg.PlotItem, tuple[str, str, str]] = {}
        self.plot_loss = self._add_plot(0, 0, "Loss per epoch", "epoch", "loss")
        self.plot_accuracy = self._add_plot(0, 1, "Pixel accuracy per epoch", "epoch", "accuracy",
                                           legend_top=False)
        self.plot_overlap = self._add_plot(1, 0, "Validation IoU and Dice", "epoch", "score",
                                          legend_top=False)
        self.plot_steps = self._add_plot(1, 1, "Training loss per step", "step", "loss", grid=False)
        epoch_style = {"symbol": "o", "symbolSize": 5}
        self.curves: dict[str, pg.PlotDataItem] = {
            "train_loss": self._curve(self.plot_loss, "train", COLOURS["train"], **epoch_style),
            "val_loss": self._curve(self.plot_loss, "val", COLOURS["val"], **epoch_style),
            "train_accuracy": self._curve(self.plot_accuracy, "train", COLOURS["train"], **epoch_style),
            "val_accuracy": self._curve(self.plot_accuracy, "val", COLOURS["val"], **epoch_style),
            "val_iou": self._curve(self.plot_overlap, "IoU", COLOURS["iou"], **epoch_style),
            "val_dice": self._curve(self.plot_overlap, "Dice", COLOURS["dice"], **epoch_style),
            "step_loss": self._curve(self.plot_steps, "raw", pg.mkColor(COLOURS["train"]).lighter(120), width=1,
                                     alpha=0.35),
            "step_loss_smooth": self._curve(self.plot_steps, f"smoothed (EMA {EMA_WEIGHT})", COLOURS["train"],
                                            width=2),
        }
        for name in ("step_loss", "step_loss_smooth"):
            self.curves[name].setClipToView(True)
            self.curves[name].setDownsampling(auto=True, method="peak")
        self.markers = {
            "min_val_loss": self._marker(self.plot_loss),
            "max_val_accuracy": self._marker(self.plot_accuracy),
        }
        self.marker_labels = {name: self._marker_label(plot) for name, plot in
                              (("min_val_loss", self.plot_loss), ("max_val_accuracy", self.plot_accuracy))}
        return self.plots

    def _add_plot(self, row: int, col: int, title: str, x_label: str, y_label: str,
                  legend_top: bool = True, grid: bool = True) -> pg.PlotItem:
        """A plot in the grid; the legend sits top right for falling curves, bottom right for rising ones.

        Grid lines triple the cost of painting a plot (~25 → ~80 ms for the four at 1400 px), so
        the per-step plot, repainted every few hundred milliseconds, has none, and the
        per-epoch plots, repainted once an epoch, have horizontal ones only."""
        plot = self.plots.addPlot(row=row, col=col, title=title,
                                  axisItems={"bottom": WholeNumberAxis(orientation="bottom")})
        self._plot_texts[plot] = (title, x_label, y_label)
        if grid:
            plot.showGrid(x=False, y=True, alpha=0.2)
        plot.setMenuEnabled(False)
        plot.getAxis("left").enableAutoSIPrefix(False)
        plot.addLegend(offset=(-4, 4 if legend_top else -4), labelTextSize="8pt",
                       labelTextColor=self.palette().color(QPalette.ColorRole.Text))
        return plot

    @staticmethod
    def _curve(plot: pg.PlotItem, name: str, colour, width: float = 1.5, alpha: float = 1.0,
               **style) -> pg.PlotDataItem:
        colour = pg.mkColor(colour)
        colour.setAlphaF(alpha)
        if "symbol" in style:
            style.update(symbolBrush=colour, symbolPen=colour)
        item = pg.PlotDataItem(pen=pg.mkPen(colour, width=width), name=name, **style)
        plot.addItem(item)
        return item

    @staticmethod
    def _marker(plot: pg.PlotItem) -> pg.PlotDataItem:
        item = pg.PlotDataItem(pen=None, symbol="star", symbolSize=14, symbolBrush=COLOURS["marker"],
                               symbolPen=pg.mkPen(COLOURS["marker"]))
        item.setZValue(10)
        plot.addItem(item)
        return item

    @staticmethod
    def _marker_label(plot: pg.PlotItem) -> pg.TextItem:
        label = pg.TextItem("", color=COLOURS["marker"])
        label.setZValue(11)
        label.hide()
        plot.addItem(label, ignoreBounds=True)
        return label

    def _connect(self) -> None:
        self.start_action.triggered.connect(self.start)
        self.pause_action.toggled.connect(self._on_pause_toggled)
        self.stop_action.triggered.connect(self.stop)
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
        self.state.splitsChanged.connect(lambda *_: self._refresh_tooltips())

    # -- look ----------------------------------------------------------------------------------
    def _apply_palette(self) -> None:
        """Plot background and text follow the application palette (light or dark theme)."""
        background = self.palette().color(QPalette.ColorRole.Base)
        foreground = self.palette().color(QPalette.ColorRole.Text)
        self.plots.setBackground(background)
        colour = foreground.name()
        for plot, (title, x_label, y_label) in self._plot_texts.items():
            plot.setTitle(title, color=colour, size="9pt")
            for side, text in (("left", y_label), ("bottom", x_label)):
                axis = plot.getAxis(side)
                axis.setPen(foreground)
                axis.setTextPen(foreground)
                plot.setLabel(side, text, color=colour)
            if plot.legend is not None:
                plot.legend.setLabelTextColor(foreground)
                plot.legend.setBrush(pg.mkBrush(background.red(), background.green(), background.blue(), 170))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _refresh_tooltips(self) -> None:
        cfg = self.state.config
        runs = self.runs_parent or default_runs_dir()
        data = ("the loaded dataset" if self.state.dataset is None else
                f"{len(self.state.dataset.split('train'))} training / {len(self.state.dataset.split('val'))} "
                "validation images")
        tip = (f"Train the current experiment on {data} (Ctrl+R / F5): {cfg.training.epochs} epochs of "
               f"{cfg.data.patch_size}-pixel patches, batch {cfg.training.batch_size}. A new run folder is "
               f"created in {runs} with config.json, history.csv, train.log and checkpoints (last.pt after "
               f"every epoch, best.pt whenever {cfg.training.best_metric} improves). Settings are locked "
               "while the run lasts.")
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

    def start(self) -> bool:
        """Start a run of the current experiment; False (with a banner saying why) if it cannot."""
        if self.session.running or self._closed:
            return False
        commit_pending_edit()
        if self.state.dataset is None:
            self.show_banner("Load a dataset first: training needs images and masks.", "warning")
            return False
        if not self.state.dataset_matches_config():
            self.show_banner("The experiment's dataset is not the one loaded (it may still be loading); "
                             "wait for it to load, then train.", "warning")
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
        self.clear()
        self._set_run_dir(run_dir)
        self._progress = RunProgress(config.training.epochs, config.training.time_limit)
        self._stopping = False
        self.last_outcome = None
        self.hide_banner()
        self.progress.setRange(0, 0)
        self.progress.setFormat("Starting… (loading PyTorch and preparing the data)")
        self._log(f"run started: {config.name}, {config.training.epochs} epochs → {run_dir}")
        self.state.set_training(True)
        self.session.start(config, self.state.dataset, run_dir=run_dir)
        return True

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
            self.curves["step_loss"].setData(self._series.steps, self._series.losses)
            self.curves["step_loss_smooth"].setData(self._series.steps, self._series.smooth)
        if self._epochs_dirty:
            self._epochs_dirty = False
            if stagger:
                self._pending_plots = list(EPOCH_PLOTS)
                self._draw_next_epoch_plot()
            else:
                self._pending_plots = []
                self._draw_epochs()
        self._update_exports()

    def _draw_next_epoch_plot(self) -> None:
        if not self._pending_plots or self._closed:
            return
        self._draw_epochs(self._pending_plots.pop(0))
        if self._pending_plots:
            QTimer.singleShot(STAGGER_MS, self._draw_next_epoch_plot)

    def export_csv(self, path: str | Path) -> Path:
        """Write the epoch history as CSV (atomically)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(HISTORY_COLUMNS)
        for event in self._history:
            row = event.row()
            writer.writerow([self._csv_value(row.get(column, "")) for column in HISTORY_COLUMNS])
        return atomic_write_text(path, buffer.getvalue())

    def export_png(self, path: str | Path, size: tuple[int, int] | None = None) -> Path:
        """Save an image of the plots as PNG (atomically), laid out at ``size`` (default: the
        on-screen size, at least 1200×800 so a small window still gives a readable figure)."""
        self.redraw()
        width, height = size or (max(1200, self.plots.width()), max(800, self.plots.height()))
        image = self._render_plots(int(width), int(height))
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if image.isNull() or not image.save(buffer, "PNG"):
            raise OSError(f"{path}: could not render the plots to PNG")
        buffer.close()
        return atomic_write_bytes(path, bytes(data.data()))

    def _render_plots(self, width: int, height: int) -> QImage:
        """Lay the plot grid out at ``width``×``height``, paint it into an image, then restore it."""
        layout_item, scene = self.plots.ci, self.plots.scene()
        before = layout_item.geometry()
        target = QRectF(0, 0, width, height)
        image = QImage(width, height, QImage.Format.Format_ARGB32)
        image.fill(self.palette().color(QPalette.ColorRole.Base))
        try:
            layout_item.setGeometry(target)
            layout_item.layout.activate()
            painter = QPainter(image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            scene.render(painter, target, target)
            painter.end()
        finally:
            layout_item.setGeometry(before)
            layout_item.layout.activate()
        return image

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
        self._history.append(event)
        self._epochs_dirty = True
        self._schedule_redraw()
        epochs = self._progress.epochs if self._progress else "?"
        text = f"epoch {event.epoch}/{epochs}: train loss {event.train_loss:.4g}"
        if _finite(event.val_loss):
            text += (f", val loss {event.val_loss:.4g}, accuracy {event.val_pixel_accuracy:.4f}, "
                     f"IoU {event.val_iou:.4f}, Dice {event.val_dice:.4f}")
        self._log(text + f" ({format_duration(event.seconds)})")
        self.historyChanged.emit()

    def _on_checkpoint(self, event) -> None:
        self._log(f"saved {Path(event.path).name} (epoch {event.epoch})")

    def _on_warning(self, message: str) -> None:
        self._log(f"warning: {message}")

    def _on_finished(self, event) -> None:
        self.last_outcome = event
        text = self._summary_text(event)
        self._log(text)
        self.show_banner(text, "success" if event.reason == "completed" else "info")
        self.progress.setFormat(f"Finished ({event.reason})")
        if event.reason == "completed" and self.progress.maximum() > 0:
            self.progress.setValue(self.progress.maximum())
        self._publish_run()

    def _on_failed(self, event) -> None:
        self.last_outcome = event
        title = FAILURE_TITLES.get(event.kind, FAILURE_TITLES["error"])
        kept = self._checkpoint_exists()
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
        self.plot_loss.setLogMode(x=False, y=on)
        self.plot_steps.setLogMode(x=False, y=on)
        self._draw_markers()

    def _update_actions(self) -> None:
        running = self.session.running
        self.start_action.setEnabled(not running)
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

    def _draw_epochs(self, plot: str | None = None) -> None:
        """Update the per-epoch curves (of one plot of :data:`EPOCH_PLOTS`, or all) and the markers."""
        def series(attribute: str) -> tuple[np.ndarray, np.ndarray]:
            points = [(e.epoch, getattr(e, attribute)) for e in self._history if _finite(getattr(e, attribute))]
            if not points:
                return np.empty(0), np.empty(0)
            x, y = zip(*points)
            return np.asarray(x, dtype=float), np.asarray(y, dtype=float)

        for name in ([plot] if plot else EPOCH_PLOTS):
            for curve, attribute in EPOCH_PLOTS[name]:
                self.curves[curve].setData(*series(attribute))
        self._draw_markers(None if plot is None else {"loss": "min_val_loss", "accuracy": "max_val_accuracy"}.get(plot, ""))

    def _extreme(self, attribute: str, pick) -> tuple[int, float] | None:
        rows = [(e.epoch, getattr(e, attribute)) for e in self._history if _finite(getattr(e, attribute))]
        return pick(rows, key=lambda r: r[1]) if rows else None

    def marker_texts(self) -> dict[str, str]:
        """The labels of the best-epoch markers ("min val loss 0.213 @ 7"); empty before any epoch."""
        texts = {}
        has_val = any(_finite(e.val_loss) for e in self._history)
        which = "val" if has_val else "train"
        low = self._extreme(f"{which}_loss", min)
        if low is not None:
            texts["min_val_loss"] = f"min {which} loss {low[1]:.3g} @ {low[0]}"
        high = self._extreme(f"{which}_pixel_accuracy", max)
        if high is not None:
            texts["max_val_accuracy"] = f"max {which} accuracy {high[1]:.4f} @ {high[0]}"
        return texts

    def _draw_markers(self, only: str | None = None) -> None:
        if only == "":
            return
        has_val = any(_finite(e.val_loss) for e in self._history)
        which = "val" if has_val else "train"
        points = {"min_val_loss": self._extreme(f"{which}_loss", min),
                  "max_val_accuracy": self._extreme(f"{which}_pixel_accuracy", max)}
        texts = self.marker_texts()
        for name, point in points.items():
            if only is not None and name != only:
                continue
            marker, label = self.markers[name], self.marker_labels[name]
            if point is None:
                marker.setData([], [])
                label.hide()
                continue
            epoch, value = point
            marker.setData([epoch], [value])
            log_y = name == "min_val_loss" and self.log_scale.isChecked()
            y = math.log10(value) if log_y and value > 0 else value
            epochs = [e.epoch for e in self._history]
            right_half = epoch > (min(epochs) + max(epochs)) / 2
            label.setAnchor((1.05 if right_half else -0.05, 1.2 if name == "min_val_loss" else -0.2))
            label.setText(texts[name])
            label.setPos(epoch, y)
            label.show()

    def _summary_text(self, event) -> str:
        s = event.summary or {}
        parts = []
        if _finite(s.get("best_value")):
            parts.append(f"best {s.get('best_metric', 'metric')} {s['best_value']:.4g} @ epoch {s.get('best_epoch')}")
        if _finite(s.get("lowest_loss")):
            parts.append(f"lowest loss {s['lowest_loss']:.4g} @ {s.get('lowest_loss_epoch')}")
        if _finite(s.get("highest_accuracy")):
            parts.append(f"highest accuracy {s['highest_accuracy']:.4f} @ {s.get('highest_accuracy_epoch')}")
        if not parts:
            parts.append("no epoch finished")
        if _finite(s.get("wall_seconds")):
            parts.append(format_duration(s["wall_seconds"]))
        return f"Finished ({event.reason}): " + " · ".join(parts)

    def _checkpoint_exists(self) -> bool:
        if self.run_dir is None:
            return False
        checkpoints = self.run_dir / "checkpoints"
        return (checkpoints / "best.pt").exists() or (checkpoints / "last.pt").exists()

    def _publish_run(self) -> None:
        if self._checkpoint_exists() and not self._closed:
            self.state.set_run(self.run_dir)

    def _set_run_dir(self, path: Path) -> None:
        self.run_dir = Path(path)
        self.run_label.setText(str(self.run_dir))
        self.open_run_button.setEnabled(True)

    def _log(self, line: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {line}")

    @staticmethod
    def _csv_value(value) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, float):
            return f"{value:.8g}"
        return str(value)

    # -- dialogs (user actions only) -----------------------------------------------------------
    def _default_export_path(self, suffix: str) -> str:
        folder = self.run_dir or Path.home()
        return str(folder / f"training-curves{suffix}")

    def _export_csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export training history", self._default_export_path(".csv"),
                                              "CSV files (*.csv)")
        if path:
            self._export_with_banner(self.export_csv, path)

    def _export_png_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plots", self._default_export_path(".png"),
                                              "PNG images (*.png)")
        if path:
            self._export_with_banner(self.export_png, path)

    def _export_with_banner(self, export, path: str) -> None:
        try:
            written = export(path)
        except OSError as exc:
            self.show_banner(f"Could not export to {path}: {exc}", "error")
            return
        self._log(f"exported {written}")

    def _open_run_folder(self) -> None:
        if self.run_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.run_dir)))
