"""The runs panel's curve overlay: one metric of several runs' histories on one pyqtgraph plot,
a colour per run and a legend naming it, with a metric picker and PNG export."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QIODevice, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.core.atomic import atomic_write_bytes
from app.core.runs import read_curves

from .training_plots import WholeNumberAxis

RUN_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7",
               "#9c755f", "#bab0ac")  # Tableau 10: told apart by most colour-blind readers
METRIC_NAMES = {
    "train_loss": "Training loss", "val_loss": "Validation loss",
    "train_pixel_accuracy": "Training pixel accuracy", "val_pixel_accuracy": "Validation pixel accuracy",
    "val_iou": "Validation IoU", "val_dice": "Validation Dice", "lr": "Learning rate",
    "seconds": "Seconds per epoch", "val_adapted_rand_error": "Validation adapted Rand error",
}
PREFERRED_METRICS = ("val_dice", "val_loss", "train_loss")
NOT_METRICS = ("epoch",)
EXPORT_WIDTH = 1400
LEGEND_COLUMNS = 4
MARKER_LIMIT = 100  # epochs up to which each point gets a marker
MAX_CURVES = 20  # runs drawn at once: each costs the GUI thread ~10 ms, and more cannot be told apart


def metric_title(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def run_colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


def _points(curves: dict[str, np.ndarray], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of ``metric``, without the epochs where it was not recorded (NaN)."""
    y = np.asarray(curves.get(metric, np.empty(0)), dtype=float)
    x = np.asarray(curves.get("epoch", np.arange(1, len(y) + 1)), dtype=float)
    if len(x) != len(y):  # a run whose history lacks the column (an older run): nothing to draw
        return np.empty(0), np.empty(0)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def read_selected_curves(paths: list[Path], ctx) -> dict[Path, dict]:
    """The job (background): each run's history curves ({} for a run without one)."""
    curves = {}
    for path in paths:
        ctx.check()
        curves[path] = read_curves(path)
    return curves


class RunsCurvesPlot(QWidget):
    """Overlay of one metric for several runs; :meth:`set_runs` gives the runs' curves."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._series: list[tuple[str, dict[str, np.ndarray]]] = []
        self.curves: list[pg.PlotDataItem] = []
        self.metric_combo = QComboBox()
        self.metric_combo.setObjectName("runs_metric")
        self.metric_combo.setToolTip("The history column to plot for every selected run")
        self.metric_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.log_check = QCheckBox("Log scale")
        self.log_check.setToolTip("A logarithmic y axis (for losses that fall by orders of magnitude)")
        self.note_label = QLabel()
        self.note_label.setObjectName("runs_curves_note")
        self.note_label.setWordWrap(True)
        # the legend sits in its own row under the plot, so it never hides a curve
        self.plot_widget = pg.GraphicsLayoutWidget()
        self.plot_widget.setObjectName("runs_curves_plot")
        self.plot_widget.setMinimumSize(240, 160)
        self.plot_widget.ci.layout.setContentsMargins(4, 4, 8, 4)
        self.plot = self.plot_widget.addPlot(row=0, col=0,
                                             axisItems={"bottom": WholeNumberAxis(orientation="bottom")})
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=False, y=True, alpha=0.2)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.legend = pg.LegendItem(labelTextSize="9pt", colCount=LEGEND_COLUMNS)
        self.plot_widget.addItem(self.legend, row=1, col=0)

        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(QLabel("Metric"))
        controls.addWidget(self.metric_combo)
        controls.addWidget(self.log_check)
        controls.addWidget(self.note_label, 1)
        self.controls = controls
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.plot_widget, 1)

        self.metric_combo.currentIndexChanged.connect(lambda _i: self.draw())
        self.log_check.toggled.connect(self._set_log)
        self.apply_palette(self.palette())
        self.metric_combo.setEnabled(False)
        self.draw()

    # -- content -------------------------------------------------------------------------------
    def set_runs(self, series: list[tuple[str, dict[str, np.ndarray]]]) -> None:
        """Show these runs: (legend name, curves as :func:`app.core.runs.read_curves` gives them)."""
        self._series = list(series)
        current = self.current_metric()
        available = self.metrics()
        self.metric_combo.blockSignals(True)
        self.metric_combo.clear()
        for metric in available:
            self.metric_combo.addItem(metric_title(metric), metric)
            self.metric_combo.setItemData(self.metric_combo.count() - 1, metric, Qt.ItemDataRole.ToolTipRole)
        drawn = [m for m in available if self.has_points(m)]  # a column with values, e.g. not val_* unvalidated
        choice = current if current in available else next((m for m in PREFERRED_METRICS if m in drawn),
                                                            (drawn or available or [None])[0])
        if choice is not None:
            self.metric_combo.setCurrentIndex(available.index(choice))
        self.metric_combo.blockSignals(False)
        self.metric_combo.setEnabled(bool(available))
        self.draw()

    def metrics(self) -> list[str]:
        """Every history column of the runs shown (in the order first met), except the epoch."""
        seen: list[str] = []
        for _, curves in self._series:
            seen += [name for name in curves if name not in NOT_METRICS and name not in seen]
        return seen

    def has_points(self, metric: str) -> bool:
        """Whether some run shown has a recorded (finite) value of ``metric``."""
        return any(len(_points(curves, metric)[0]) for _, curves in self._series)

    def current_metric(self) -> str | None:  # not metric(): that name overrides QWidget.metric
        return self.metric_combo.currentData()

    def set_metric(self, metric: str) -> None:
        index = self.metric_combo.findData(metric)
        if index < 0:
            raise ValueError(f"no run shown has a {metric!r} curve; available: {', '.join(self.metrics())}")
        self.metric_combo.setCurrentIndex(index)

    def legend_names(self) -> list[str]:
        return [label.text for _, label in self.legend.items]

    # -- drawing -------------------------------------------------------------------------------
    def draw(self) -> None:
        for item in self.curves:
            self.plot.removeItem(item)
        self.curves = []
        self.legend.clear()
        metric = self.current_metric()
        if not self._series:
            self.plot.setTitle("Select runs in the table to overlay their curves", size="10pt")
            self.note_label.clear()
            return
        title = metric_title(metric) if metric else "No curves recorded"
        self.plot.setTitle(title, size="10pt")
        self.plot.setLabel("left", title)
        self.plot.setLabel("bottom", "epoch")
        missing = []
        for index, (name, curves) in enumerate(self._series[:MAX_CURVES]):
            x, y = _points(curves, metric) if metric else (np.empty(0), np.empty(0))
            if not len(x):
                missing.append(name)
                continue
            colour = pg.mkColor(run_colour(index))
            markers = dict(symbol="o", symbolSize=6, symbolBrush=colour, symbolPen=colour) \
                if len(x) <= MARKER_LIMIT else {}  # thousands of markers cost the GUI thread seconds
            item = pg.PlotDataItem(x, y, name=name, pen=pg.mkPen(colour, width=2), **markers)
            self.plot.addItem(item)
            if not markers:
                item.setDownsampling(auto=True, method="peak")  # once in a view: it asks the view's width
            self.legend.addItem(item, name)
            self.curves.append(item)
        notes = [f"No {metric_title(metric) if metric else 'curves'} for: {', '.join(missing)}"] if missing else []
        if len(self._series) > MAX_CURVES:
            notes.append(f"Showing the first {MAX_CURVES} of the {len(self._series)} selected runs.")
        self.note_label.setText(" ".join(notes))
        self.plot.enableAutoRange()

    def _set_log(self, on: bool) -> None:
        self.plot.setLogMode(x=False, y=on)

    def apply_palette(self, palette: QPalette) -> None:
        """Plot background and text follow ``palette`` (light or dark theme)."""
        background = palette.color(QPalette.ColorRole.Base)
        foreground = palette.color(QPalette.ColorRole.Text)
        self.plot_widget.setBackground(background)
        for side in ("left", "bottom"):
            axis = self.plot.getAxis(side)
            axis.setPen(foreground)
            axis.setTextPen(foreground)
        self.plot.titleLabel.setAttr("color", foreground.name())
        self.legend.setLabelTextColor(foreground)
        self.legend.setBrush(pg.mkBrush(None))
        self.legend.setPen(pg.mkPen(None))

    # -- export --------------------------------------------------------------------------------
    def png_bytes(self, width: int = EXPORT_WIDTH) -> bytes:
        """The plot as PNG bytes, rendered ``width`` pixels wide (pyqtgraph's image exporter)."""
        from pyqtgraph.exporters import ImageExporter

        exporter = ImageExporter(self.plot_widget.ci)  # the plot and its legend
        exporter.parameters()["width"] = int(width)
        image = exporter.export(toBytes=True)
        if image is None or image.isNull():
            image = self.plot_widget.grab().toImage()
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not image.save(buffer, "PNG"):
            raise OSError("the plot could not be encoded as PNG")
        return bytes(buffer.data())

    def export_png(self, path: str | os.PathLike) -> Path:
        """Write the plot as a PNG image atomically; the folder must exist."""
        path = Path(path)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"folder {path.parent} does not exist")
        return atomic_write_bytes(path, self.png_bytes())
