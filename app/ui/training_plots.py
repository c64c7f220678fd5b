"""The plot grid of the training panel: four pyqtgraph plots of a run's curves.

:class:`TrainingPlots` lays out loss, pixel accuracy and IoU/Dice per epoch plus the training
loss per step, with whole-number epoch/step axes (:class:`WholeNumberAxis`), star markers and
labels at the best epochs, colours that follow the application palette, an optional log-scale
loss axis and rendering of the whole grid into an image for export. It only draws what it is
given (the epoch events and a :class:`~app.ui.training_progress.StepSeries`); when and how often
to redraw is up to the panel, which may update the per-epoch plots one at a time
(:data:`EPOCH_PLOTS`).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter, QPalette

from .training_progress import EMA_WEIGHT, StepSeries, finite

EPOCH_PLOTS = {  # plot -> (curve, EpochFinished field) drawn on it
    "loss": (("train_loss", "train_loss"), ("val_loss", "val_loss")),
    "accuracy": (("train_accuracy", "train_pixel_accuracy"), ("val_accuracy", "val_pixel_accuracy")),
    "overlap": (("val_iou", "val_iou"), ("val_dice", "val_dice")),
}
MARKER_OF_PLOT = {"loss": "min_val_loss", "accuracy": "max_val_accuracy"}  # best-epoch marker on a plot
COLOURS = {"train": "#4e9bd6", "val": "#f28e2b", "iou": "#59a14f", "dice": "#b07aa1", "marker": "#e15759"}


class WholeNumberAxis(pg.AxisItem):
    """An axis of epochs or steps: ticks only at whole numbers (no "epoch 2.5")."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802,N803 - pyqtgraph naming
        levels = [(spacing, [v for v in values if float(v).is_integer()])
                  for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        if not any(values for _, values in levels):
            first, last = math.ceil(minVal), math.floor(maxVal)
            levels = [(1.0, [float(v) for v in range(first, last + 1)])] if last - first < 50 else levels
        return levels


def _extreme(history: list, attribute: str, pick) -> tuple[int, float] | None:
    rows = [(e.epoch, getattr(e, attribute)) for e in history if finite(getattr(e, attribute))]
    return pick(rows, key=lambda r: r[1]) if rows else None


def best_points(history: list) -> tuple[str, dict[str, tuple[int, float] | None]]:
    """Which curves the markers follow ("val", or "train" when no validation loss exists) and
    the (epoch, value) of the lowest loss and the highest pixel accuracy on them."""
    which = "val" if any(finite(e.val_loss) for e in history) else "train"
    return which, {"min_val_loss": _extreme(history, f"{which}_loss", min),
                   "max_val_accuracy": _extreme(history, f"{which}_pixel_accuracy", max)}


def marker_texts(history: list) -> dict[str, str]:
    """The labels of the best-epoch markers ("min val loss 0.213 @ 7"); empty before any epoch."""
    which, points = best_points(history)
    texts = {}
    low, high = points["min_val_loss"], points["max_val_accuracy"]
    if low is not None:
        texts["min_val_loss"] = f"min {which} loss {low[1]:.3g} @ {low[0]}"
    if high is not None:
        texts["max_val_accuracy"] = f"max {which} accuracy {high[1]:.4f} @ {high[0]}"
    return texts


def _epoch_series(history: list, attribute: str) -> tuple[np.ndarray, np.ndarray]:
    points = [(e.epoch, getattr(e, attribute)) for e in history if finite(getattr(e, attribute))]
    if not points:
        return np.empty(0), np.empty(0)
    x, y = zip(*points)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


class TrainingPlots(pg.GraphicsLayoutWidget):
    """Loss, accuracy and overlap per epoch and loss per step, in a 2×2 grid; with
    ``steps=False`` (a saved run, whose per-step losses are not kept) the three per-epoch plots
    in one row."""

    def __init__(self, palette: QPalette, parent=None, steps: bool = True):
        super().__init__(parent)
        self.setObjectName("trainingPlots")
        self.setMinimumSize(240, 160)
        self.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.log_y = False  # the loss plots have a logarithmic y axis
        self._plot_texts: dict[pg.PlotItem, tuple[str, str, str]] = {}
        text_colour = palette.color(QPalette.ColorRole.Text)
        cells = ((0, 0), (0, 1), (1, 0), (1, 1)) if steps else ((0, 0), (0, 1), (0, 2), None)
        self.plot_loss = self._add_plot(cells[0], "Loss per epoch", "epoch", "loss", text_colour)
        self.plot_accuracy = self._add_plot(cells[1], "Pixel accuracy per epoch", "epoch", "accuracy", text_colour,
                                            legend_top=False)
        self.plot_overlap = self._add_plot(cells[2], "Validation IoU and Dice", "epoch", "score", text_colour,
                                           legend_top=False)
        self.plot_steps = self._add_plot(cells[3], "Training loss per step", "step", "loss", text_colour, grid=False)
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

    # -- construction ------------------------------------------------------------------------
    def _add_plot(self, cell: tuple[int, int] | None, title: str, x_label: str, y_label: str, text_colour: QColor,
                  legend_top: bool = True, grid: bool = True) -> pg.PlotItem:
        """A plot in the grid at ``cell`` (row, column; None: made but not laid out); the legend
        sits top right for falling curves, bottom right for rising ones.

        Grid lines triple the cost of painting a plot (~25 → ~80 ms for the four at 1400 px), so
        the per-step plot, repainted every few hundred milliseconds, has none, and the
        per-epoch plots, repainted once an epoch, have horizontal ones only."""
        axes = {"bottom": WholeNumberAxis(orientation="bottom")}
        plot = pg.PlotItem(title=title, axisItems=axes) if cell is None else \
            self.addPlot(row=cell[0], col=cell[1], title=title, axisItems=axes)
        self._plot_texts[plot] = (title, x_label, y_label)
        if grid:
            plot.showGrid(x=False, y=True, alpha=0.2)
        plot.setMenuEnabled(False)
        plot.getAxis("left").enableAutoSIPrefix(False)
        plot.addLegend(offset=(-4, 4 if legend_top else -4), labelTextSize="8pt", labelTextColor=text_colour)
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

    # -- look ----------------------------------------------------------------------------------
    def apply_palette(self, palette: QPalette) -> None:
        """Plot background and text follow ``palette`` (light or dark theme)."""
        background = palette.color(QPalette.ColorRole.Base)
        foreground = palette.color(QPalette.ColorRole.Text)
        self.setBackground(background)
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

    def set_log_scale(self, on: bool) -> None:
        """Show the loss plots (per epoch and per step) on a logarithmic y axis; redraw the markers
        with :meth:`draw_markers` afterwards."""
        self.log_y = on
        self.plot_loss.setLogMode(x=False, y=on)
        self.plot_steps.setLogMode(x=False, y=on)

    # -- drawing -------------------------------------------------------------------------------
    def draw_steps(self, series: StepSeries) -> None:
        self.curves["step_loss"].setData(series.steps, series.losses)
        self.curves["step_loss_smooth"].setData(series.steps, series.smooth)

    def draw_epochs(self, history: list, plot: str | None = None) -> None:
        """Update the per-epoch curves (of one plot of :data:`EPOCH_PLOTS`, or all) and the markers."""
        for name in ([plot] if plot else EPOCH_PLOTS):
            for curve, attribute in EPOCH_PLOTS[name]:
                self.curves[curve].setData(*_epoch_series(history, attribute))
        self.draw_markers(history, None if plot is None else MARKER_OF_PLOT.get(plot, ""))

    def draw_markers(self, history: list, only: str | None = None) -> None:
        """Place the best-epoch markers and their labels (``only`` one of them; "": none)."""
        if only == "":
            return
        _, points = best_points(history)
        texts = marker_texts(history)
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
            log_y = name == "min_val_loss" and self.log_y
            y = math.log10(value) if log_y and value > 0 else value
            epochs = [e.epoch for e in history]
            right_half = epoch > (min(epochs) + max(epochs)) / 2
            label.setAnchor((1.05 if right_half else -0.05, -0.2 if self._upper_half(name, history, y) else 1.2))
            label.setText(texts[name])
            label.setPos(epoch, y)
            label.show()

    def _upper_half(self, marker: str, history: list, y: float) -> bool:
        """Whether ``y`` lies in the upper half of the data on the marker's plot: its label then
        goes below the point, else above, towards the middle and away from the legend's corner."""
        plot = next(p for p, m in MARKER_OF_PLOT.items() if m == marker)
        values = [getattr(e, field) for _, field in EPOCH_PLOTS[plot] for e in history]
        values = [v for v in values if finite(v) and (v > 0 or not (self.log_y and plot == "loss"))]
        if self.log_y and plot == "loss":
            values = [math.log10(v) for v in values]
        low, high = (min(values), max(values)) if values else (y, y)
        return high > low and y > (low + high) / 2

    def render_image(self, width: int, height: int, background: QColor) -> QImage:
        """Lay the plot grid out at ``width``×``height``, paint it into an image, then restore it."""
        layout_item, scene = self.ci, self.scene()
        before = layout_item.geometry()
        target = QRectF(0, 0, width, height)
        image = QImage(width, height, QImage.Format.Format_ARGB32)
        image.fill(background)
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
