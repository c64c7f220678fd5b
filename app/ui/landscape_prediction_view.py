"""Loss versus predicted probability: how each chosen loss weighs one pixel.

:class:`PredictionView` draws :class:`~app.core.landscape.PredictionCurves` in two plots side by
side, a foreground pixel (truth 1) and a background pixel (truth 0), with one curve per loss;
a toggle shows either the loss value or its gradient d loss / d p. Region losses (Dice,
Jaccard, Tversky, ...) count the pixel as one of an otherwise perfectly predicted image whose
size the "Region" box sets. Pixel losses (BCE: up to ~7) dwarf region losses (Dice: about
1/region), so by default each curve is divided by its largest magnitude on 0.05 ≤ p ≤ 0.95 to
compare shapes; unticking "Scale each curve" shows the real values. :meth:`PredictionView.request`
computes the curves of a loss text in a background job (it uses torch, but takes well under a
second) after a short typing pause, or when the view is next shown.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QHBoxLayout, QLabel, QRadioButton, QSpinBox, QVBoxLayout,
                               QWidget)

from .landscape_jobs import prediction_curves
from .tasks import TaskRunner

CASES = ("foreground", "background")  # as app.core.landscape.CASES, without importing torch
CASE_TITLES = {"foreground": "Foreground pixel (truth 1): best at p = 1",
               "background": "Background pixel (truth 0): best at p = 0"}
LOSS_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7",
                "#9c755f", "#bab0ac")
PEN_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine)
CLIP = (0.05, 0.95)  # scaled curves and the gradient's y range follow the curves on this p range
DELAY_MS = 300  # typing pause before the curves are recomputed


class PredictionView(QWidget):
    """Two plots (foreground, background pixel) of every loss against the predicted probability."""

    curvesReady = Signal()

    def __init__(self, palette: QPalette | None = None, parent=None):
        super().__init__(parent)
        self.curves = None
        self._request: tuple[str, object] | None = None  # (loss text, experiment config)
        self._pending = False  # a request not computed yet (the view was hidden)
        self._runner = TaskRunner("loss-curves", self)
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self._compute)
        self.items: dict[tuple[str, str], pg.PlotDataItem] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Show:"))
        self.value_button = QRadioButton("Loss value")
        self.gradient_button = QRadioButton("Gradient d loss / d p")
        self.value_button.setChecked(True)
        self.mode_group = QButtonGroup(self)
        for button in (self.value_button, self.gradient_button):
            self.mode_group.addButton(button)
            row.addWidget(button)
        self.mode_group.buttonToggled.connect(lambda _b, on: on and self._draw())
        row.addSpacing(16)
        self.scale_check = QCheckBox("Scale each curve")
        self.scale_check.setChecked(True)
        self.scale_check.setToolTip("Divide each curve by its largest magnitude for 0.05 ≤ p ≤ 0.95, so that "
                                    "losses of very different sizes (BCE, Dice) can be compared by shape")
        self.scale_check.toggled.connect(lambda _on: self._draw())
        row.addWidget(self.scale_check)
        row.addSpacing(16)
        row.addWidget(QLabel("Region:"))
        self.context_spin = QSpinBox()
        self.context_spin.setRange(2, 65536)
        self.context_spin.setValue(64)
        self.context_spin.setSuffix(" pixels")
        self.context_spin.setKeyboardTracking(False)
        self.context_spin.setToolTip("Region losses (Dice, Jaccard, Tversky, ...) see the pixel as one of an image of "
                                     "this many pixels, half of them foreground, all others predicted perfectly; "
                                     "the bigger the image, the less one pixel matters")
        self.context_spin.valueChanged.connect(lambda _n: self._compute())
        row.addWidget(self.context_spin)
        row.addStretch(1)
        layout.addLayout(row)
        self.status = QLabel("Choose losses to see how each weighs a pixel.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName("lossVsPrediction")
        self.graphics.setMinimumHeight(220)
        layout.addWidget(self.graphics, 1)
        self.legend = pg.LegendItem(labelTextSize="9pt", colCount=len(LOSS_COLOURS))  # one row above the plots
        self.graphics.addItem(self.legend, row=0, col=0, colspan=2)
        self.graphics.ci.layout.setRowMaximumHeight(0, 30)
        self.plots = {case: self.graphics.addPlot(row=1, col=c) for c, case in enumerate(CASES)}
        for plot in self.plots.values():
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setXRange(0, 1, padding=0.02)
            plot.getAxis("left").enableAutoSIPrefix(False)
        self.apply_palette(palette or self.palette())

    # -- computing -------------------------------------------------------------------------------
    def request(self, spec: str, config) -> None:
        """Curves of the losses in ``spec`` ("": ``config``'s own loss), after a typing pause, or
        once the view is shown."""
        self._request, self._pending = (spec, config), True
        self._timer.start(DELAY_MS)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._pending:
            self._timer.start(0)

    def _compute(self) -> None:
        if self._request is None or not self.isVisible():
            return  # showEvent computes what is pending
        self._pending = False
        spec, config = self._request
        context = self.context
        self._runner.start(lambda ctx: prediction_curves(spec, config, context), self._on_curves,
                           lambda message: self.show_message(f"No curves: {message}"))

    def _on_curves(self, curves) -> None:
        self.show_curves(curves)
        self.curvesReady.emit()

    def shutdown(self) -> None:
        self._timer.stop()
        self._runner.shutdown()

    # -- drawing -------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return "gradient" if self.gradient_button.isChecked() else "value"

    def set_mode(self, mode: str) -> None:
        (self.gradient_button if mode == "gradient" else self.value_button).setChecked(True)

    @property
    def scaled(self) -> bool:
        return self.scale_check.isChecked()

    @property
    def context(self) -> int:
        return self.context_spin.value()

    def apply_palette(self, palette: QPalette) -> None:
        self._text = palette.color(QPalette.ColorRole.Text)
        background = palette.color(QPalette.ColorRole.Base)
        self.graphics.setBackground(background)
        self.legend.setLabelTextColor(self._text)
        for plot in self.plots.values():
            for side in ("left", "bottom"):
                plot.getAxis(side).setPen(self._text)
                plot.getAxis(side).setTextPen(self._text)
        self._label_axes()

    def _label_axes(self) -> None:
        colour = self._text.name()
        y = ("d loss / d p" if self.mode == "gradient" else "loss") + (" (scaled)" if self.scaled else "")
        for case, plot in self.plots.items():
            plot.setTitle(CASE_TITLES[case], color=colour, size="9pt")
            plot.setLabel("bottom", "predicted foreground probability p", color=colour)
            plot.setLabel("left", y, color=colour)

    def show_curves(self, curves) -> None:
        """Draw :class:`~app.core.landscape.PredictionCurves` (one curve per loss and case)."""
        self.curves = curves
        self.status.setText(f"Each loss for one pixel as its predicted probability p varies (from {curves.p[0]:.3g} "
                            f"to {curves.p[-1]:.3g}); region losses count it as one of {curves.context} pixels. "
                            f"Cross-entropy-like losses grow without bound towards the wrong end.")
        self._draw()

    def show_message(self, text: str) -> None:
        self.status.setText(text)

    def clear(self) -> None:
        self.curves = None
        for plot in self.plots.values():
            plot.clear()
        self.legend.clear()
        self.items = {}

    def _draw(self) -> None:
        self._label_axes()
        curves = self.curves
        if curves is None:
            return
        for plot in self.plots.values():
            plot.clear()
        self.legend.clear()
        self.items = {}
        data = np.array(curves.gradient if self.mode == "gradient" else curves.value, np.float64)
        keep = (curves.p >= CLIP[0]) & (curves.p <= CLIP[1])
        if self.scaled:
            top = np.nanmax(np.abs(data[:, :, keep]), axis=2, keepdims=True)
            data = data / np.where(top > 0, top, 1.0)
        for k, name in enumerate(curves.losses):
            colour = LOSS_COLOURS[k % len(LOSS_COLOURS)]
            pen = pg.mkPen(colour, width=2, style=PEN_STYLES[k % len(PEN_STYLES)])  # overlapping curves stay apart
            for c, case in enumerate(CASES):
                item = pg.PlotDataItem(curves.p, data[k, c], pen=pen)
                self.plots[case].addItem(item)
                self.items[(name, case)] = item
            self.legend.addItem(self.items[(name, CASES[0])], name)
        for c, case in enumerate(CASES):
            plot = self.plots[case]
            plot.setXRange(0, 1, padding=0.02)
            shown = data[:, c, keep] if self.mode == "gradient" or self.scaled else data[:, c]
            finite = shown[np.isfinite(shown)]
            if finite.size:
                low, high = float(finite.min()), float(finite.max())
                pad = 0.05 * (high - low) or 0.05 * max(abs(high), 1.0)
                plot.setYRange(low - pad, high + pad, padding=0)

    def values_at(self, loss: str, case: str, p: float) -> tuple[float, float]:
        """(value, gradient) of ``loss`` for ``case`` at the grid probability nearest ``p``."""
        k, c = self.curves.losses.index(loss), CASES.index(case)
        i = int(np.argmin(np.abs(self.curves.p - p)))
        return float(self.curves.value[k, c, i]), float(self.curves.gradient[k, c, i])

