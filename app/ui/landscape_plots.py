"""The loss landscape drawn per loss: one row each, the 1-D curve along d₁ beside the 2-D slice.

:class:`LandscapePlots` shows a :class:`~app.core.landscape.LandscapeResult`. Left, the curve
(the whole slice of a 1-D result, the row b = 0 of a 2-D one) with the trained weights marked at
a = 0 by the loss there; right, for a 2-D result, the slice as a colour map (viridis, low = dark)
with white iso-lines, a colour bar and a cross at (0, 0). Like the saved figure
(:mod:`app.core.landscape.figure`), a skewed surface is coloured on a logarithmic scale so the
basin stays readable. Titles carry the loss name, its value at the weights and the minimum.
Several results (snapshots through training) can share one scale per loss (``pooled``) so that
stepping through epochs shows what changes. Hovering reads out the nearest grid value.

:class:`SnapshotSlider` picks which of a run's stored slices (one per N epochs) is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSlider,
                               QStackedWidget, QVBoxLayout, QWidget)

from app.core.landscape.figure import ColourScale
from app.core.landscape.result import not_finite_text

ROW_HEIGHT = 250  # pixels per loss
FIELD_SIZE = 128  # the 2-D slice is interpolated to about this many pixels a side for drawing
COLOURS = {"curve": "#4e9bd6", "centre": "#e15759", "axis": "#9a9a9a", "contour": (255, 255, 255, 200)}
COLOUR_MAP = "viridis"


def fmt(value: float) -> str:
    if not np.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def finite_range(values: np.ndarray, pad: float = 0.06) -> tuple[float, float] | None:
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    low, high = float(finite.min()), float(finite.max())
    margin = (high - low) * pad or max(abs(high) * 1e-3, 1e-6)
    return low - margin, high + margin


def interpolated_field(grid: np.ndarray, size: int = FIELD_SIZE) -> np.ndarray:
    """``grid`` (a × b) resized to about ``size`` pixels a side by cubic interpolation, clipped to
    the grid's own range (no overshoot); a non-finite point's cell is NaN (drawn as a hole, no
    iso-line through it), its neighbours interpolated as if it held the highest value."""
    bad = ~np.isfinite(grid)
    finite = grid[~bad]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    filled = np.where(bad, high, grid).astype(np.float32)
    factor = max(1, int(np.ceil(size / max(grid.shape))))
    field = np.clip(cv2.resize(filled, (grid.shape[1] * factor, grid.shape[0] * factor),
                               interpolation=cv2.INTER_CUBIC), low, high)
    field[np.repeat(np.repeat(bad, factor, axis=0), factor, axis=1)] = np.nan
    return field


def not_finite_note(values: np.ndarray, shown: str = "") -> str:
    """" · 3 of 25 points not finite" (and ``shown``) for a slice with overflowed losses, else ""."""
    text = not_finite_text(values)
    return f" · {text}{shown}" if text else ""


def pooled_values(results) -> dict[str, np.ndarray]:
    """Every value of each loss over several results (for one scale across snapshots)."""
    parts: dict[str, list] = {}
    for result in results:
        for k, name in enumerate(result.losses):
            parts.setdefault(name, []).append(np.ravel(result.values[k]))
    return {name: np.concatenate(values) for name, values in parts.items()}


def describe_result(result) -> str:
    """"21 × 21 grid, span 1, 4 val images 256×256, seed 0, model unet" from a result's meta."""
    m = result.meta
    steps = [len(a) for a in result.axes]
    grid = f"{steps[0]} × {steps[1]} grid" if len(steps) == 2 else f"{steps[0]} points along d₁"
    text = f"{grid}, span {m.get('span', abs(result.axes[0][0])):g}"
    if "images" in m:
        size = m.get("image_size") or ["?", "?"]
        text += f", {m['images']} {m.get('split', '')} image{'s' * (m['images'] != 1)} {size[0]}×{size[1]}"
    for key in ("seed", "model"):
        if key in m:
            text += f", {key} {m[key]}"
    return text


def contour_lines(u: np.ndarray, levels, rect: QRectF) -> tuple[np.ndarray, np.ndarray]:
    """Iso-lines of ``u`` (x index × y index) at ``levels`` in plot coordinates, as one x/y
    pair with NaN between lines (for ``connect="finite"``). A field larger than ``FIELD_SIZE``
    a side is averaged down first: a big noisy grid gave 165,000 line points a plot, seconds of
    work on the GUI thread at every redraw, for lines no one can follow."""
    from skimage.measure import find_contours

    if max(u.shape) > FIELD_SIZE:
        scale = FIELD_SIZE / max(u.shape)
        size = (max(2, round(u.shape[1] * scale)), max(2, round(u.shape[0] * scale)))
        u = cv2.resize(np.ascontiguousarray(u, np.float32), size, interpolation=cv2.INTER_AREA)

    sx, sy = rect.width() / u.shape[0], rect.height() / u.shape[1]
    xs, ys = [], []
    for level in levels:
        for line in find_contours(u, float(level)):
            xs += [rect.x() + (line[:, 0] + 0.5) * sx, [np.nan]]
            ys += [rect.y() + (line[:, 1] + 0.5) * sy, [np.nan]]
    if not xs:
        return np.empty(0), np.empty(0)
    return np.concatenate(xs), np.concatenate(ys)


@dataclass
class LossRow:
    """The plots of one loss and the values they show."""

    name: str
    curve_plot: pg.PlotItem
    curve: pg.PlotDataItem
    centre_marker: pg.ScatterPlotItem
    map_plot: pg.PlotItem | None = None
    image: pg.ImageItem | None = None
    contours: pg.PlotCurveItem | None = None
    colour_bar: pg.ColorBarItem | None = None
    axis: np.ndarray = field(default_factory=lambda: np.empty(0))
    curve_values: np.ndarray = field(default_factory=lambda: np.empty(0))
    grid: np.ndarray | None = None  # the 2-D slice's raw values (a × b)
    axes: list = field(default_factory=list)
    centre: float = float("nan")
    log_colours: bool = False

    def titles(self) -> tuple[str, str]:
        return (self.curve_plot.titleLabel.text,
                self.map_plot.titleLabel.text if self.map_plot is not None else "")


class LandscapePlots(QWidget):
    """A scrollable grid of per-loss plots under a header (a choice of what to show and a line
    saying what is shown); :meth:`show_result` draws a result."""

    def __init__(self, palette: QPalette | None = None, parent=None):
        super().__init__(parent)
        self.rows: list[LossRow] = []
        self.result = None
        self._shape: tuple | None = None  # (losses, dims) the rows were built for
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        header = QHBoxLayout()
        self.view_combo = QComboBox()  # the owner decides what each choice shows
        self.view_combo.addItem("Computed or opened result", "result")
        self.view_combo.addItem("Training snapshots", "snapshots")
        self.source_label = QLabel()  # what is shown, in words
        self.source_label.setWordWrap(True)
        header.addWidget(self.view_combo)
        header.addWidget(self.source_label, 1)
        layout.addLayout(header)
        self.stack = QStackedWidget()
        self.placeholder = QLabel("Compute a landscape, open a saved one (.npz) or pick a training snapshot.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName("landscapePlots")
        self.graphics.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.graphics.ci.layout.setVerticalSpacing(8)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.graphics)
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.scroll)
        layout.addWidget(self.stack, 1)
        self.readout = QLabel(" ")
        self.readout.setObjectName("landscapeReadout")
        self.readout.setToolTip("The grid value nearest to the mouse")
        layout.addWidget(self.readout)
        self._hover = pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse)
        self.apply_palette(palette or self.palette())

    # -- look ----------------------------------------------------------------------------------
    def apply_palette(self, palette: QPalette) -> None:
        self._background = palette.color(QPalette.ColorRole.Base)
        self._text = palette.color(QPalette.ColorRole.Text)
        self.graphics.setBackground(self._background)
        self._restyle()

    def _restyle(self) -> None:
        for row in self.rows:
            for plot in (row.curve_plot, row.map_plot):
                if plot is not None:
                    self._style(plot)
            if row.colour_bar is not None:
                row.colour_bar.axis.setPen(self._text)
                row.colour_bar.axis.setTextPen(self._text)

    def _style(self, plot: pg.PlotItem) -> None:
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setPen(self._text)
            axis.setTextPen(self._text)
            axis.enableAutoSIPrefix(False)

    def _plot(self, row: int, col: int, x_label: str, y_label: str, colspan: int = 1) -> pg.PlotItem:
        plot = self.graphics.addPlot(row=row, col=col, colspan=colspan)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        colour = self._text.name()
        plot.setLabel("bottom", x_label, color=colour)
        plot.setLabel("left", y_label, color=colour)
        self._style(plot)
        return plot

    # -- building ------------------------------------------------------------------------------
    def _build(self, losses: list[str], dims: int) -> None:
        self.graphics.clear()
        self.rows = []
        for k, name in enumerate(losses):
            curve_plot = self._plot(k, 0, "step along d₁", "loss", colspan=1 if dims == 2 else 2)
            curve_plot.showGrid(x=False, y=True, alpha=0.2)
            curve_plot.addItem(pg.InfiniteLine(0, angle=90, pen=pg.mkPen(COLOURS["axis"], style=Qt.PenStyle.DashLine)))
            colour = pg.mkColor(COLOURS["curve"])
            curve = pg.PlotDataItem(pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5, symbolBrush=colour,
                                    symbolPen=colour)
            curve_plot.addItem(curve)
            centre = pg.ScatterPlotItem(symbol="o", size=11, pen=pg.mkPen(COLOURS["centre"], width=2),
                                        brush=pg.mkBrush(0, 0, 0, 0))
            centre.setZValue(10)
            curve_plot.addItem(centre)
            row = LossRow(name, curve_plot, curve, centre)
            if dims == 2:
                row.map_plot = self._plot(k, 1, "d₁", "d₂")
                row.image = pg.ImageItem(axisOrder="col-major")
                row.map_plot.addItem(row.image)
                row.contours = pg.PlotCurveItem(pen=pg.mkPen(COLOURS["contour"], width=1), connect="finite")
                row.map_plot.addItem(row.contours)
                cross = pg.ScatterPlotItem([0.0], [0.0], symbol="+", size=14, pen=pg.mkPen(COLOURS["centre"], width=2),
                                           brush=pg.mkBrush(COLOURS["centre"]))
                cross.setZValue(10)
                row.map_plot.addItem(cross)
                row.colour_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get(COLOUR_MAP), width=12,
                                                 interactive=False, colorMapMenu=False)
                row.colour_bar.setImageItem(row.image, insert_in=row.map_plot)
                row.colour_bar.axis.setWidth(50)
            self.rows.append(row)
        self._restyle()
        layout = self.graphics.ci.layout
        layout.setColumnStretchFactor(0, 3 if dims == 2 else 1)
        layout.setColumnStretchFactor(1, 2 if dims == 2 else 0)
        self.graphics.setMinimumHeight(ROW_HEIGHT * len(losses))
        self._shape = (tuple(losses), dims)

    # -- drawing -------------------------------------------------------------------------------
    def clear(self) -> None:
        self.graphics.clear()
        self.rows, self.result, self._shape = [], None, None
        self.readout.setText(" ")
        self.stack.setCurrentWidget(self.placeholder)

    def show_result(self, result, pooled: dict[str, np.ndarray] | None = None) -> None:
        """Draw ``result``; ``pooled`` (loss → every value of several results) fixes each loss's
        curve range and colour scale to those values."""
        if self._shape != (tuple(result.losses), result.dims):
            self._build(list(result.losses), result.dims)
        self.result = result
        pooled = pooled or {}
        for k, row in enumerate(self.rows):
            self._draw_row(row, result, k, pooled.get(row.name))
        self.stack.setCurrentWidget(self.scroll)

    def _draw_row(self, row: LossRow, result, k: int, pooled: np.ndarray | None) -> None:
        colour = self._text.name()
        row.axes = [np.asarray(a) for a in result.axes]
        row.axis, row.curve_values = row.axes[0], np.asarray(result.curve(k), np.float64)
        row.centre = float(result.centre[k])
        finite = np.isfinite(row.curve_values)
        row.curve.setData(row.axis[finite], row.curve_values[finite])
        row.centre_marker.setData([0.0], [row.centre] if np.isfinite(row.centre) else [np.nan])
        row.curve_plot.setXRange(float(row.axis[0]), float(row.axis[-1]), padding=0.04)
        y_range = finite_range(pooled if pooled is not None else np.append(row.curve_values, row.centre))
        if y_range is not None:
            row.curve_plot.setYRange(*y_range, padding=0)
        values = np.asarray(result.values[k], np.float64)
        curve_min = float(row.curve_values[finite].min()) if finite.any() else np.nan
        low = float(values[np.isfinite(values)].min()) if np.isfinite(values).any() else np.nan
        row.curve_plot.setTitle(f"<b>{row.name}</b> · at the weights {fmt(row.centre)} · min {fmt(curve_min)}"
                                + not_finite_note(row.curve_values), color=colour, size="9pt")
        if row.map_plot is None:
            row.grid = None
            return
        row.grid = values
        self._draw_map(row, pooled, low, colour)

    def _draw_map(self, row: LossRow, pooled: np.ndarray | None, low: float, colour: str) -> None:
        a, b = row.axes
        scale = ColourScale(pooled if pooled is not None else row.grid)
        row.log_colours = bool(scale.log)
        field_values = interpolated_field(row.grid)
        u = scale.u(field_values).astype(np.float32)
        da = (a[-1] - a[0]) / max(1, len(a) - 1)
        db = (b[-1] - b[0]) / max(1, len(b) - 1)
        rect = QRectF(a[0] - da / 2, b[0] - db / 2, da * len(a), db * len(b))
        row.image.setImage(u, levels=(0.0, 1.0), autoLevels=False)
        row.image.setRect(rect)
        row.contours.setData(*contour_lines(u, scale.levels(), rect))
        row.map_plot.setRange(rect, padding=0.02)
        ticks = [(t, f"{scale.value(t):.3g}") for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
        row.colour_bar.axis.setTicks([ticks, []])
        row.colour_bar.axis.setLabel("log scale" if scale.log else "", color=colour)
        if np.isfinite(low):
            i, j = np.unravel_index(np.nanargmin(np.where(np.isfinite(row.grid), row.grid, np.nan)), row.grid.shape)
            where = f"min {fmt(low)} at ({fmt(a[i])}, {fmt(b[j])})"
        else:
            where = "no finite value"
        row.map_plot.setTitle(f"<b>{row.name}</b>: 2-D slice · {where}{not_finite_note(row.grid, ' (holes)')}",
                              color=colour, size="9pt")

    # -- hover read-out ------------------------------------------------------------------------
    def _on_mouse(self, event) -> None:
        pos: QPointF = event[0]
        for row in self.rows:
            for plot in (row.curve_plot, row.map_plot):
                if plot is None or not plot.vb.sceneBoundingRect().contains(pos):
                    continue
                point = plot.vb.mapSceneToView(pos)
                i = int(np.argmin(np.abs(row.axis - point.x())))
                if plot is row.map_plot and row.grid is not None:
                    j = int(np.argmin(np.abs(row.axes[1] - point.y())))
                    text = f"{row.name} at (a, b) = ({fmt(row.axes[0][i])}, {fmt(row.axes[1][j])}): " \
                           f"{fmt(row.grid[i, j])}"
                else:
                    text = f"{row.name} at a = {fmt(row.axis[i])}: {fmt(row.curve_values[i])}"
                self.readout.setText(text)
                return


class SnapshotSlider(QGroupBox):
    """"Throughout training": a slider over stored slices ``(epoch, result)`` with the epoch shown.

    ``chosen(index)`` when the user moves (or presses) the slider; ``refresh_button`` asks the
    owner to look for new slices; ``pooled()`` is every value per loss when the slices share
    one scale (the check box), else None."""

    chosen = Signal(int)

    def __init__(self, parent=None):
        super().__init__("Throughout training", parent)
        self.snapshots: list[tuple[int, object]] = []
        self._pooled: dict[str, np.ndarray] = {}
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.setPageStep(1)
        self.slider.setToolTip("Step through the slices the run stored every N epochs")
        self.epoch_label = QLabel()
        self.epoch_label.setWordWrap(True)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Look for slices the run has stored since")
        self.same_scale_check = QCheckBox("Same scale for every epoch")
        self.same_scale_check.setChecked(True)
        rows, line = QVBoxLayout(self), QHBoxLayout()
        line.addWidget(self.same_scale_check, 1)
        line.addWidget(self.refresh_button)
        rows.addWidget(self.slider)
        rows.addWidget(self.epoch_label)
        rows.addLayout(line)
        self.slider.valueChanged.connect(self.chosen)
        self.slider.sliderPressed.connect(lambda: self.chosen.emit(self.slider.value()))

    def set_snapshots(self, snapshots: list, where: str) -> None:
        """Show ``snapshots`` (epoch order), the slider at the last one; ``where`` names the run."""
        self.snapshots = list(snapshots)
        self._pooled = pooled_values(result for _, result in self.snapshots)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(self.snapshots) - 1))
        self.slider.setValue(max(0, len(self.snapshots) - 1))
        self.slider.blockSignals(False)
        self.slider.setEnabled(len(self.snapshots) > 1)
        if self.snapshots:
            self.show_index(self.slider.value())
        else:
            self.epoch_label.setText(f"No stored slices in {where}. Training stores one every N epochs when "
                                     f"“Loss surface every” is set (Model panel, Training).")

    def current(self) -> tuple[int, object] | None:
        return self.snapshots[self.slider.value()] if self.snapshots else None

    def show_index(self, index: int) -> None:
        self.epoch_label.setText(f"Epoch {self.snapshots[index][0]} ({index + 1} of {len(self.snapshots)})")

    def pooled(self) -> dict[str, np.ndarray] | None:
        return self._pooled if self.same_scale_check.isChecked() else None
