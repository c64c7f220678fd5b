"""The dataset browser's large view: the selected sample's image on a zoomable canvas with its
mask drawn over it, and the row of mask controls (show, colour, opacity, fill/contour). Small
samples are prepared at once; big ones in the background (newest wins), and prepared views are
kept in a :class:`ViewCache` so walking back is instant.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from .render import OVERLAY_MODES
from .sample_view import OVERLAY_COLOURS, MaskLayer, SampleCanvas, SampleView, ViewCache, sample_view
from .tasks import TaskRunner


class SampleViewer(QWidget):
    """The canvas (``canvas``) and its mask controls for the sample ``current_sample()`` returns;
    ``runner`` prepares big samples' views off the GUI thread."""

    def __init__(self, current_sample: Callable[[], object], runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self._current_sample = current_sample
        self.runner = runner
        self.views = ViewCache()
        self.view: SampleView | None = None  # the view on the canvas
        self._overlay_key: tuple | None = None  # what the mask layer's array was built for
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        self.canvas = SampleCanvas("Sample", self)
        self.canvas.setObjectName("datasetCanvas")
        self.canvas.setToolTip("Scroll to zoom, drag to pan, double-click to fit")
        column.addWidget(self.canvas, 1)
        column.addLayout(self._build_overlay_row())
        self.show_mask_check.toggled.connect(self.update_overlay)
        self.colour_combo.currentTextChanged.connect(self.update_overlay)
        self.mode_combo.currentTextChanged.connect(self.update_overlay)
        self.opacity_slider.valueChanged.connect(self._on_opacity_changed)

    def _build_overlay_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.show_mask_check = QCheckBox("Mask", self)
        self.show_mask_check.setObjectName("datasetShowMask")
        self.show_mask_check.setChecked(True)
        self.show_mask_check.setToolTip("Draw the mask over the image")
        self.colour_combo = QComboBox(self)
        self.colour_combo.setObjectName("datasetMaskColour")
        self.colour_combo.addItems(list(OVERLAY_COLOURS))
        self.colour_combo.setToolTip("Mask colour: one colour, or a colour per class")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity_slider.setObjectName("datasetMaskOpacity")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.setMinimumWidth(40)
        self.opacity_slider.setToolTip("Mask opacity (0–100 %)")
        self.opacity_label = QLabel("45 %", self)
        self.opacity_label.setMinimumWidth(self.opacity_label.fontMetrics().horizontalAdvance("100 %"))
        self.mode_combo = QComboBox(self)
        self.mode_combo.setObjectName("datasetMaskMode")
        self.mode_combo.addItems(OVERLAY_MODES)
        self.mode_combo.setToolTip("fill: translucent regions; contour: outlines; both")
        for widget, stretch in ((self.show_mask_check, 0), (self.colour_combo, 0), (self.opacity_slider, 1),
                                (self.opacity_label, 0), (self.mode_combo, 0)):
            row.addWidget(widget, stretch)
        return row

    def show_sample(self, sync_pixels: int, background: bool = True) -> None:
        """Show the current sample: at once when cached or at most ``sync_pixels`` pixels, else
        prepared in the background (only when ``background``)."""
        sample = self._current_sample()
        if sample is None:
            self.runner.cancel()
            self.view = self._overlay_key = None
            self.canvas.set_layer("mask", None, z=10)
            self.canvas.set_image(None)
            self.update_title()
            return
        view = self.views.get(sample)
        if view is None and sample.shape[0] * sample.shape[1] <= sync_pixels:
            view = self.views.put(sample_view(sample))
        if view is not None:
            self.runner.cancel()
            self._show_view(view)
            return
        self.update_title()
        if background:  # newest wins: a quick walk through big samples prepares only the last
            self.runner.start(lambda ctx: sample_view(sample, ctx.check), on_done=self._on_view_ready)

    @property
    def preparing(self) -> bool:
        """True while the current sample's display image is being prepared in the background."""
        return self.runner.busy

    def _on_view_ready(self, view: SampleView) -> None:
        self.views.put(view)
        if view.sample is self._current_sample():
            self._show_view(view)

    def _show_view(self, view: SampleView) -> None:
        self.view = view
        self.canvas.set_image(view.rgb)
        self.update_title()
        self.update_overlay()

    def update_title(self) -> None:
        """The canvas title: the sample's name, size and split, and whether it is still being prepared."""
        sample = self._current_sample()
        if sample is None:
            self.canvas.set_title("Sample")
            return
        height, width = sample.shape
        waiting = " (preparing…)" if self.view is None or self.view.sample is not sample else ""
        self.canvas.set_title(f"{sample.name} — {width}×{height}, {sample.split}{waiting}")

    def update_overlay(self, *_) -> None:
        """Draw the mask; an opacity change only fades the layer when one level does it."""
        view = self.view
        if view is None or not self.show_mask_check.isChecked():
            self._overlay_key = None
            self.canvas.set_layer("mask", None, z=10)
            return
        mode, colour = self.mode_combo.currentText(), self.colour_combo.currentText()
        opacity = self.opacity_slider.value() / 100
        fade = MaskLayer.fade(mode, opacity)
        key = (view, mode, colour, opacity if fade is None else None)  # holds the view: no id reuse
        if key != self._overlay_key:
            rgba = view.mask.overlay(opacity if fade is None else 1.0, mode, OVERLAY_COLOURS[colour],
                                     out=self.canvas.buffer("mask"))  # in place: no fresh memory
            self.canvas.set_layer("mask", rgba, z=10)
            self._overlay_key = key
        self.canvas.set_layer_opacity("mask", 1.0 if fade is None else fade)

    def _on_opacity_changed(self, value: int) -> None:
        self.opacity_label.setText(f"{value} %")
        self.update_overlay()
