"""An image view with overlay layers, wheel zoom and drag pan (pyqtgraph), shared by all panels."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from .render import composite, to_display

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)


class ImageCanvas(pg.GraphicsLayoutWidget):
    """Shows an RGB image and named RGBA layers above it; y runs down, aspect is locked.

    Scroll to zoom, drag to pan, double-click to fit the image again. Views can be linked so
    side-by-side images zoom and pan together.
    """

    def __init__(self, title: str = "", parent=None):
        super().__init__(parent)
        self.setBackground("#202124")
        self.ci.layout.setContentsMargins(2, 2, 2, 2)
        self._title = self.addLabel(title, row=0, col=0, color="#e8eaed", size="9pt") if title else None
        self.view: pg.ViewBox = self.addViewBox(row=1 if title else 0, col=0, lockAspect=True, invertY=True,
                                                enableMenu=False)
        self.view.setDefaultPadding(0.01)
        self.image_item = pg.ImageItem()
        self.view.addItem(self.image_item)
        self._layers: dict[str, pg.ImageItem] = {}
        self._layer_data: dict[str, np.ndarray | None] = {}
        self._spare: dict[str, np.ndarray] = {}  # hidden layers' arrays, reusable as buffers
        self._rgb: np.ndarray | None = None
        self._auto_fit = True  # until the user zooms or pans, the whole image follows the widget's size
        self.view.sigRangeChangedManually.connect(self._user_moved)
        self.setMinimumSize(120, 120)

    # -- content -----------------------------------------------------------------------------
    def set_title(self, text: str) -> None:
        if self._title is not None:
            self._title.setText(text)

    def set_image(self, image: np.ndarray | None, fit: bool | None = None) -> None:
        """Show ``image`` (any dtype; gray or colour). ``fit``: zoom to the whole image
        (default: only when the size changed)."""
        if image is None:
            self._rgb = None
            self.image_item.clear()
            return
        rgb = image if (image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3) else to_display(image)
        size_changed = self._rgb is None or self._rgb.shape[:2] != rgb.shape[:2]
        self._rgb = rgb
        self.image_item.setImage(rgb, autoLevels=False)  # uint8 RGB: no level scaling (fast path)
        for name, item in self._layers.items():
            if self._layer_data.get(name) is not None and self._layer_data[name].shape[:2] != rgb.shape[:2]:
                self.set_layer(name, None)
        if fit or (fit is None and size_changed):
            self.fit()

    def set_layer(self, name: str, rgba: np.ndarray | None, z: float | None = None) -> None:
        """Add, replace or (with None) hide the RGBA layer ``name``; later layers draw on top."""
        item = self._layers.get(name)
        if item is None:
            item = pg.ImageItem()
            item.setZValue(z if z is not None else 10 + len(self._layers))
            self.view.addItem(item)
            self._layers[name] = item
        elif z is not None:
            item.setZValue(z)
        previous = self._layer_data.get(name)
        self._layer_data[name] = rgba
        if rgba is None:
            if previous is not None:
                self._spare[name] = previous  # kept to draw the next overlay into (see ``buffer``)
            item.clear()
            item.setVisible(False)
        else:
            item.setImage(rgba, autoLevels=False)
            item.setVisible(True)

    def layer(self, name: str) -> np.ndarray | None:
        """The RGBA array shown as layer ``name`` (None when hidden). Panels redraw into it in
        place (see :meth:`buffer`): copy it to keep what it shows now."""
        return self._layer_data.get(name)

    def buffer(self, name: str) -> np.ndarray | None:
        """The array of layer ``name``, shown or last hidden, to redraw into: a large overlay
        redrawn in place needs no fresh memory (tens of milliseconds for 4096² RGBA)."""
        shown = self._layer_data.get(name)
        return shown if shown is not None else self._spare.pop(name, None)

    def set_layer_opacity(self, name: str, opacity: float) -> None:
        """Fade a layer without recomputing it (no-op for a layer not added yet)."""
        item = self._layers.get(name)
        if item is not None:
            item.setOpacity(float(opacity))

    def image(self) -> np.ndarray | None:
        return self._rgb

    def rendered(self) -> np.ndarray | None:
        """The image with every visible layer blended in, at image resolution (for export/tests)."""
        if self._rgb is None:
            return None
        layers = sorted(((item.zValue(), self._layer_data.get(name)) for name, item in self._layers.items()
                         if item.isVisible()), key=lambda pair: pair[0])
        return composite(self._rgb, *(data for _, data in layers))

    # -- navigation --------------------------------------------------------------------------
    def fit(self) -> None:
        """Show the whole image, and keep doing so as the view resizes until the user zooms or pans."""
        if self._rgb is not None:
            h, w = self._rgb.shape[:2]
            self.view.setRange(xRange=(0, w), yRange=(0, h), padding=0.01)
        self._auto_fit = True

    def _user_moved(self, *_args) -> None:
        self._auto_fit = False

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().resizeEvent(event)
        if getattr(self, "_auto_fit", False):  # also called from the base constructor
            self.fit()

    def link(self, other: "ImageCanvas") -> None:
        """Zoom and pan together with ``other``."""
        self.view.setXLink(other.view)
        self.view.setYLink(other.view)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if event.button() == Qt.MouseButton.LeftButton:
            self.fit()
            event.accept()
            return
        super().mouseDoubleClickEvent(event)
