"""Display images and mask overlays of samples, prepared once and cached, and the canvas that shows them.

A :class:`SampleView` holds a sample's display image and its :class:`MaskLayer` (one code per
pixel), so redrawing the overlay at another opacity, mode or colour is a table look-up;
:class:`ViewCache` keeps the last few views. Preparing a view is pure NumPy, safe on a worker thread.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QImage

from .image_view import ImageCanvas
from .render import composite, overlay_code, overlay_table, rgba_from_code, to_display

VIEW_CACHE_SIZE = 8  # prepared views kept (display image + mask), the least recently shown dropped first
VIEW_CACHE_BYTES = 256 * 2**20
OVERLAY_COLOURS: dict[str, tuple[int, int, int] | None] = {
    "by class": None, "red": (255, 64, 64), "green": (80, 220, 120), "blue": (64, 160, 255),
    "yellow": (255, 200, 0), "cyan": (0, 220, 220), "magenta": (220, 90, 255), "white": (255, 255, 255),
}


def to_qimage(rgb: np.ndarray) -> QImage:
    """A deep-copied QImage of an RGB uint8 array."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class MaskLayer:
    """A mask prepared once for fast overlays: one uint8 code per pixel (palette colour, and
    whether on an outline). :meth:`overlay` is then one table look-up and gives exactly
    :func:`mask_overlay`'s RGBA at any opacity, mode and colour."""

    def __init__(self, mask: np.ndarray):
        self.code = overlay_code(mask)
        self.shape = self.code.shape[:2]

    @property
    def nbytes(self) -> int:
        return self.code.nbytes

    @staticmethod
    def fade(mode: str, opacity: float) -> float | None:
        """The item opacity that turns the full-strength overlay of ``mode`` into the one at
        ``opacity`` (one level for every drawn pixel), or None where it takes two (``both``)."""
        return {"fill": opacity, "contour": min(1.0, opacity * 2 + 0.2)}.get(mode)

    def overlay(self, opacity: float, mode: str = "fill", colour: tuple[int, int, int] | None = None,
                out: np.ndarray | None = None) -> np.ndarray:
        """RGBA uint8 H×W×4, equal to ``mask_overlay(mask, opacity, mode, colour)`` (written
        into ``out`` when it is an RGBA array of the same size)."""
        return rgba_from_code(self.code, overlay_table(mode, opacity, colour), out)


def faded(rgba: np.ndarray, opacity: float) -> np.ndarray:
    """``rgba`` with its alpha scaled by ``opacity`` (rounded as :func:`mask_overlay` rounds)."""
    out = rgba.copy()
    out[..., 3] = np.clip(rgba[..., 3].astype(np.float32) * np.float32(opacity) + 0.5, 0, 255).astype(np.uint8)
    return out


@dataclass(eq=False)
class SampleView:
    """A sample ready to show: its display image and its prepared mask."""

    sample: object
    rgb: np.ndarray
    mask: MaskLayer

    @property
    def nbytes(self) -> int:
        return self.rgb.nbytes + self.mask.nbytes


def sample_view(sample, check: Callable[[], None] = lambda: None,
                display: Callable[[np.ndarray], np.ndarray] = to_display) -> SampleView:
    """Prepare ``sample`` for the large view (pure NumPy: safe on a worker thread)."""
    rgb = display(sample.image)
    check()
    return SampleView(sample, rgb, MaskLayer(sample.mask))


class ViewCache:
    """The last few prepared views, by sample; the least recently used go first once more
    than ``size`` views or ``max_bytes`` are kept."""

    def __init__(self, size: int = VIEW_CACHE_SIZE, max_bytes: int = VIEW_CACHE_BYTES):
        self.size, self.max_bytes = size, max_bytes
        self._views: OrderedDict[int, SampleView] = OrderedDict()

    def get(self, sample) -> SampleView | None:
        view = self._views.get(id(sample))
        if view is None or view.sample is not sample:
            return None
        self._views.move_to_end(id(sample))
        return view

    def put(self, view: SampleView) -> SampleView:
        self._views[id(view.sample)] = view
        self._views.move_to_end(id(view.sample))
        while len(self._views) > 1 and (len(self._views) > self.size or self.nbytes > self.max_bytes):
            self._views.popitem(last=False)
        return view

    def snapshot(self) -> dict[int, SampleView]:
        """A copy to hand to a worker (look views up with :func:`find_view`)."""
        return dict(self._views)

    def clear(self) -> None:
        self._views.clear()

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self._views.values())

    def __len__(self) -> int:
        return len(self._views)


def find_view(views: dict[int, SampleView], sample) -> SampleView | None:
    """The view of ``sample`` in a :meth:`ViewCache.snapshot`, or None."""
    view = views.get(id(sample))
    return view if view is not None and view.sample is sample else None


class SampleCanvas(ImageCanvas):
    """An :class:`ImageCanvas` whose layers can also be faded whole (the item's opacity: no new
    array, so an opacity slider stays cheap on big images). :meth:`layer` and
    :meth:`rendered` include the fade, so they still give what is shown."""

    def __init__(self, title: str = "", parent=None):
        self._fades: dict[str, float] = {}
        super().__init__(title, parent)

    def set_layer(self, name: str, rgba: np.ndarray | None, z: float | None = None) -> None:
        super().set_layer(name, rgba, z)
        self._layers[name].setOpacity(self._fades.get(name, 1.0))

    def set_layer_opacity(self, name: str, opacity: float) -> None:
        self._fades[name] = float(opacity)
        if name in self._layers:
            self._layers[name].setOpacity(float(opacity))

    def layer_opacity(self, name: str) -> float:
        return self._fades.get(name, 1.0)

    def layer(self, name: str) -> np.ndarray | None:
        data = super().layer(name)
        fade = self._fades.get(name, 1.0)
        return data if data is None or fade >= 1.0 else faded(data, fade)

    def rendered(self) -> np.ndarray | None:
        if self.image() is None:
            return None
        layers = sorted(((item.zValue(), name) for name, item in self._layers.items() if item.isVisible()),
                        key=lambda pair: pair[0])
        return composite(self.image(), *(self.layer(name) for _, name in layers))
