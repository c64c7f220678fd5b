"""The landscape figure as a PNG, drawn with NumPy and OpenCV (no plotting library needed).

One row per loss: the 1-D curve along d₁ on the left and, for a 2-D result, the 2-D slice on
the right as a colour map (viridis, low = dark) with white iso-lines, a colour bar and the
trained weights marked by a cross at (0, 0). A skewed surface (a basin with a few diverged
points) is coloured on a logarithmic scale so that the basin stays readable (see :class:`ColourScale`).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .result import LandscapeResult, not_finite_text

FONT = cv2.FONT_HERSHEY_SIMPLEX
BLACK, GREY, LIGHT, WHITE = (0, 0, 0), (110, 110, 110), (225, 225, 225), (255, 255, 255)
CURVE = (180, 90, 20)  # BGR: a blue
CURVE_W, ROW_H = 380, 290
MAP = 210  # side of the 2-D map in pixels
MAP_W = MAP + 150


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def _text(img, text, org, scale=0.42, colour=BLACK, thickness=1, anchor="left"):
    text = _ascii(text)
    (w, h), _ = cv2.getTextSize(text, FONT, scale, thickness)
    x, y = org
    if anchor == "center":
        x -= w // 2
    elif anchor == "right":
        x -= w
    cv2.putText(img, text, (int(x), int(y)), FONT, scale, colour, thickness, cv2.LINE_AA)
    return w, h


def _fmt(value: float) -> str:
    if not np.isfinite(value):
        return str(value)
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _labels(values) -> list[str]:
    """Tick labels with just enough significant digits to tell them apart."""
    values = [float(v) for v in values]
    for digits in range(3, 8):
        labels = [f"{v:.{digits}g}" for v in values]
        if len(set(labels)) == len(labels):
            return labels
    return labels


def _range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if high - low < 1e-12 * max(1.0, abs(high)):
        pad = max(abs(high) * 1e-3, 1e-6)
        return low - pad, high + pad
    return low, high


def _curve_panel(axis: np.ndarray, curve: np.ndarray, title: str, centre: float) -> np.ndarray:
    img = np.full((ROW_H, CURVE_W, 3), 255, np.uint8)
    left, right, top, bottom = 62, CURVE_W - 16, 34, ROW_H - 44
    low, high = _range(curve)
    pad = 0.06 * (high - low)
    low, high = low - pad, high + pad
    x0, x1 = float(axis[0]), float(axis[-1])

    def px(a, v):
        return (left + (a - x0) / (x1 - x0) * (right - left), bottom - (v - low) / (high - low) * (bottom - top))

    for t in np.linspace(x0, x1, 5):
        x = int(round(px(t, low)[0]))
        cv2.line(img, (x, top), (x, bottom), LIGHT, 1)
        cv2.line(img, (x, bottom), (x, bottom + 4), BLACK, 1)
        _text(img, _fmt(t), (x, bottom + 17), anchor="center")
    ticks = np.linspace(low + pad, high - pad, 4)
    for t, label in zip(ticks, _labels(ticks)):
        y = int(round(px(x0, t)[1]))
        cv2.line(img, (left, y), (right, y), LIGHT, 1)
        cv2.line(img, (left - 4, y), (left, y), BLACK, 1)
        _text(img, label, (left - 7, y + 4), scale=0.36, anchor="right")
    cv2.rectangle(img, (left, top), (right, bottom), BLACK, 1)
    zero = int(round(px(0.0, low)[0]))
    cv2.line(img, (zero, top), (zero, bottom), GREY, 1, cv2.LINE_AA)
    run: list[tuple[int, int]] = []
    for a, v in list(zip(axis, curve)) + [(None, np.nan)]:
        if a is not None and np.isfinite(v):
            x, y = px(a, v)
            run.append((int(round(x * 4)), int(round(y * 4))))  # 2 fractional bits
            continue
        if len(run) > 1:
            cv2.polylines(img, [np.array(run, np.int32)], False, CURVE, 2, cv2.LINE_AA, shift=2)
        run = []
    for a, v in zip(axis, curve):
        if np.isfinite(v):
            cv2.circle(img, (int(round(px(a, v)[0] * 4)), int(round(px(a, v)[1] * 4))), 8, CURVE, -1,
                       cv2.LINE_AA, shift=2)
    if np.isfinite(centre) and low <= centre <= high:
        cx, cy = px(0.0, centre)
        cv2.circle(img, (int(round(cx)), int(round(cy))), 5, (40, 40, 220), 1, cv2.LINE_AA)
    _text(img, title, (left, 22), scale=0.5, thickness=1)
    _text(img, "step along d1", ((left + right) // 2, ROW_H - 8), anchor="center")
    _text(img, "loss", (8, top - 8), scale=0.38, colour=GREY)
    return img


class ColourScale:
    """Value ↔ colour position u ∈ [0, 1]. Linear, unless the surface is skewed (its median in the
    lowest quarter of the range, e.g. a basin with a few diverged corners): then logarithmic,
    u = log(1 + k·t) / log(1 + k) with t the linear position and k chosen so that the median
    lands mid-scale, which keeps the basin around the trained weights readable."""

    def __init__(self, grid: np.ndarray):
        self.low, self.high = _range(grid)
        finite = grid[np.isfinite(grid)]
        median = float(np.median(finite)) if finite.size else self.low
        m = (median - self.low) / (self.high - self.low)
        self.k = 0.0 if m >= 0.25 else ((1 - 2 * m) / m**2 if m > 1e-4 else 1e8)
        self.log = self.k > 0

    def u(self, values):
        t = np.clip((np.asarray(values, np.float64) - self.low) / (self.high - self.low), 0.0, 1.0)
        return np.log1p(self.k * t) / np.log1p(self.k) if self.log else t

    def value(self, u):
        u = np.asarray(u, np.float64)
        t = np.expm1(u * np.log1p(self.k)) / self.k if self.log else u
        return self.low + t * (self.high - self.low)

    def levels(self, count: int = 9) -> np.ndarray:
        """Iso-line positions in u: even on a log scale, quadratic (denser near the minimum) on a
        linear one."""
        u = np.linspace(0, 1, count + 2)[1:-1]
        return u if self.log else u**2


def _map_panel(axes: list[np.ndarray], grid: np.ndarray, title: str) -> np.ndarray:
    img = np.full((ROW_H, MAP_W, 3), 255, np.uint8)
    left, top = 52, 34
    scale = ColourScale(grid)
    filled = np.where(np.isfinite(grid), grid, scale.high)
    # values[i, j] is at (a_i, b_j): a runs left → right, b bottom → top
    field = cv2.resize(filled.T[::-1].astype(np.float32), (MAP, MAP), interpolation=cv2.INTER_CUBIC)
    u = scale.u(field).astype(np.float32)
    colour = cv2.applyColorMap(np.round(u * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    for level in scale.levels():
        mask = (u <= level).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(colour, contours, -1, WHITE, 1, cv2.LINE_AA)
    bad = ~np.isfinite(grid.T[::-1])
    if bad.any():  # overflowed points: grey cells, not an invented basin
        colour[cv2.resize(bad.astype(np.uint8), (MAP, MAP), interpolation=cv2.INTER_NEAREST) > 0] = LIGHT
    img[top:top + MAP, left:left + MAP] = colour
    cv2.rectangle(img, (left - 1, top - 1), (left + MAP, top + MAP), BLACK, 1)
    a, b = axes

    def px(x, y):
        return (left + (x - a[0]) / (a[-1] - a[0]) * (MAP - 1), top + (b[-1] - y) / (b[-1] - b[0]) * (MAP - 1))

    cx, cy = (int(round(v)) for v in px(0.0, 0.0))
    cv2.drawMarker(img, (cx, cy), (40, 40, 220), cv2.MARKER_CROSS, 12, 2, cv2.LINE_AA)
    for t in (a[0], 0.0, a[-1]):
        x = int(round(px(t, 0.0)[0]))
        cv2.line(img, (x, top + MAP), (x, top + MAP + 4), BLACK, 1)
        _text(img, _fmt(t), (x, top + MAP + 17), anchor="center")
    for t in (b[0], 0.0, b[-1]):
        y = int(round(px(0.0, t)[1]))
        cv2.line(img, (left - 5, y), (left - 1, y), BLACK, 1)
        _text(img, _fmt(t), (left - 8, y + 4), scale=0.36, anchor="right")
    _text(img, "d1", (left + MAP // 2, top + MAP + 34), anchor="center")
    _text(img, "d2", (8, top + MAP // 2 + 4))
    bar_x = left + MAP + 14
    bar = cv2.applyColorMap(np.linspace(255, 0, MAP).astype(np.uint8)[:, None].repeat(12, 1), cv2.COLORMAP_VIRIDIS)
    img[top:top + MAP, bar_x:bar_x + 12] = bar
    cv2.rectangle(img, (bar_x - 1, top - 1), (bar_x + 12, top + MAP), BLACK, 1)
    for level in scale.levels():
        y = int(round(top + (1 - level) * (MAP - 1)))
        cv2.line(img, (bar_x, y), (bar_x + 11, y), WHITE, 1)
    ticks = (1.0, 0.5, 0.0)
    for position, label in zip(ticks, _labels(scale.value(ticks))):
        y = int(round(top + (1 - position) * (MAP - 1)))
        _text(img, label, (bar_x + 17, y + 4), scale=0.36)
    if scale.log:
        _text(img, "log scale", (bar_x - 2, top + MAP + 34), scale=0.34, colour=GREY)
    _text(img, title, (left, 22), scale=0.5)
    return img


def _not_finite(values: np.ndarray, shown: str = "") -> str:
    """", 3 of 25 points not finite" (and how they are shown) when the loss overflowed, else ""."""
    text = not_finite_text(values)
    return f", {text}{shown and ' (' + shown.strip() + ')'}" if text else ""


def render_figure(result: LandscapeResult, title: str | None = None) -> np.ndarray:
    """The figure as an RGB uint8 array: one row per loss, curve (and 2-D map) side by side."""
    rows = []
    for k, name in enumerate(result.losses):
        centre = float(result.centre[k])
        curve = result.curve(k)
        panels = [_curve_panel(result.axes[0], curve, f"{name}  (at weights: {_fmt(centre)}){_not_finite(curve)}",
                               centre)]
        if result.dims == 2:
            grid = result.values[k]
            panels.append(_map_panel(result.axes, grid, f"{name}: 2-D slice{_not_finite(grid, ' grey')}"))
        rows.append(np.hstack(panels))
    body = np.vstack(rows)
    header = np.full((36, body.shape[1], 3), 255, np.uint8)
    if title is None:
        m = result.meta
        steps = " x ".join(str(len(a)) for a in result.axes)
        title = f"Loss landscape, {steps} grid, span {_fmt(float(m.get('span', abs(result.axes[0][0]))))}"
        if "images" in m:
            size = m.get("image_size") or ["?", "?"]
            title += f", {m['images']} {m.get('split', '')} images {size[0]}x{size[1]}"
        if "seed" in m:
            title += f", seed {m['seed']}"
        if "epoch" in m:
            title += f", epoch {m['epoch']}"
    _text(header, title, (12, 24), scale=0.55)
    return cv2.cvtColor(np.vstack([header, body]), cv2.COLOR_BGR2RGB)


def save_figure(result: LandscapeResult, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write :func:`render_figure` as a PNG (atomically)."""
    from ..imageio import write_image

    return write_image(path, render_figure(result, title))
