"""NumPy-only helpers that turn images, masks and error maps into RGB(A) arrays for display."""

from __future__ import annotations

import cv2
import numpy as np

# Colour per class index (class 0 = background is never drawn); colour-blind friendly first.
CLASS_COLOURS = np.array([
    (0, 0, 0), (255, 64, 64), (64, 160, 255), (255, 200, 0), (80, 220, 120), (220, 90, 255),
    (255, 140, 40), (0, 220, 220), (255, 105, 180), (160, 160, 255),
], dtype=np.uint8)
PADDING_COLOUR = (255, 0, 255)  # pixels from padding/outside the source in augmentation previews
FALSE_POSITIVE = (255, 64, 64)
FALSE_NEGATIVE = (64, 160, 255)


def class_colour(index: int) -> tuple[int, int, int]:
    colours = CLASS_COLOURS
    return tuple(int(c) for c in colours[1 + (index - 1) % (len(colours) - 1)]) if index else (0, 0, 0)


def to_display(image: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """An image of any dtype (H×W, H×W×1, H×W×3/4) as uint8 H×W×3, contrast-stretched to
    [low, high] (default: the dtype range for 8-bit, the 0.5–99.5 percentiles otherwise)."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] > 3:
        array = array[:, :, :3]
    if array.dtype == np.uint8 and low is None and high is None:
        out = array
    else:
        data = array.astype(np.float32)
        if low is None or high is None:
            finite = data[np.isfinite(data)]
            lo, hi = (np.percentile(finite, (0.5, 99.5)) if finite.size else (0.0, 1.0))
            low = lo if low is None else low
            high = hi if high is None else high
        scale = 255.0 / (high - low) if high > low else 1.0
        out = np.clip((data - low) * scale, 0, 255).astype(np.uint8)
    if out.ndim == 2 and out.size:  # OpenCV, not np.repeat: faster, and it lets go of the GIL
        out = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_GRAY2RGB)  # (a 4096² worker job held it 54 ms)
    elif out.ndim == 2:
        out = np.zeros(out.shape + (3,), np.uint8)
    return np.ascontiguousarray(out)


OVERLAY_MODES = ("fill", "contour", "both")
_CYCLE = len(CLASS_COLOURS) - 1  # class 0 is never drawn; classes past the palette cycle through it
_U8_PALETTE_INDEX = np.array([0] + [1 + (v - 1) % _CYCLE for v in range(1, 256)], np.uint8)


def _as_labels(mask: np.ndarray) -> np.ndarray:
    labels = np.asarray(mask)
    return labels.view(np.uint8) if labels.dtype == np.bool_ else labels


def _small_labels(labels: np.ndarray) -> np.ndarray | None:
    """``labels`` as uint8/uint16 when every value fits (OpenCV's fast paths), else None."""
    if labels.dtype in (np.uint8, np.uint16):
        return labels
    if labels.dtype.kind in "iu" and (not labels.size or (labels.min() >= 0 and labels.max() < 65536)):
        return labels.astype(np.uint16)
    return None


def contour_of(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Boolean H×W: pixels on the border of each labelled region of ``mask``."""
    labels = _as_labels(mask)
    if not labels.size:
        return np.zeros(labels.shape[:2], np.bool_)
    work = _small_labels(labels)
    if work is None:
        work = labels.astype(np.float32)
    kernel = np.ones((3, 3), np.uint8)
    eroded = cv2.erode(work, kernel, iterations=thickness, borderType=cv2.BORDER_REPLICATE)
    dilated = cv2.dilate(work, kernel, iterations=thickness, borderType=cv2.BORDER_REPLICATE)
    # NumPy, not cv2.compare / cv2.min: OpenCV's bindings can read a 1×1 array as a scalar
    edge = np.not_equal(eroded, dilated)  # the neighbourhood is not uniform
    return np.logical_and(edge, labels > 0, out=edge)


def palette_index(mask: np.ndarray) -> np.ndarray:
    """Per pixel, the row of ``CLASS_COLOURS`` that :func:`mask_overlay` paints it with (uint8;
    0 for background)."""
    labels = _as_labels(mask)
    if labels.dtype == np.uint8 and labels.size:  # (OpenCV returns None for an empty array)
        return cv2.LUT(labels, _U8_PALETTE_INDEX)
    small = _small_labels(labels)
    if small is not None:  # instance maps: a look-up table is still fastest
        values = np.arange(int(small.max(initial=0)) + 1)
        return np.where(values > 0, 1 + (values - 1) % _CYCLE, 0).astype(np.uint8).take(small, mode="clip")
    wide = labels.astype(np.int64)
    return np.where(wide > 0, 1 + (wide - 1) % _CYCLE, 0).astype(np.uint8)


def alpha_levels(mode: str, opacity: float) -> np.ndarray:
    """:func:`mask_overlay`'s alpha (uint8) for background, region inside and region outline."""
    if mode not in OVERLAY_MODES:
        raise ValueError(f"unknown overlay mode {mode!r}; valid: {', '.join(OVERLAY_MODES)}")
    outline = {"fill": opacity, "contour": min(1.0, opacity * 2 + 0.2), "both": max(opacity, 0.9)}[mode]
    levels = np.array([0.0, 0.0 if mode == "contour" else opacity, outline], np.float32)
    return np.clip(levels * 255 + 0.5, 0, 255).astype(np.uint8)


def overlay_table(mode: str, opacity: float, colour: tuple[int, int, int] | None = None) -> np.ndarray:
    """RGBA words (uint32) indexed by ``palette row + len(CLASS_COLOURS) × on-outline``."""
    levels = alpha_levels(mode, opacity)
    table = np.empty((2, len(CLASS_COLOURS), 4), np.uint8)
    table[..., :3] = CLASS_COLOURS[None] if colour is None else np.asarray(colour, np.uint8)
    table[:, 0, 3] = 0
    table[0, 1:, 3] = levels[1]
    table[1, 1:, 3] = levels[2]
    return table.reshape(-1, 4).view(np.uint32).ravel()


def overlay_code(mask: np.ndarray, outline: bool = True) -> np.ndarray:
    """uint8 per pixel: its palette row, plus ``len(CLASS_COLOURS)`` on a region's outline
    (when ``outline``); :func:`overlay_table` turns it into RGBA."""
    labels = _as_labels(mask)
    code = palette_index(labels)
    if outline:  # (NumPy, not cv2.add: OpenCV takes a 1×1 array for a scalar)
        np.add(code, contour_of(labels).view(np.uint8) * np.uint8(len(CLASS_COLOURS)), out=code)
    return code


def mask_overlay(mask: np.ndarray, opacity: float = 0.5, mode: str = "fill",
                 colour: tuple[int, int, int] | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """RGBA uint8 H×W×4 drawing the non-zero classes of ``mask``: ``fill`` (translucent
    regions), ``contour`` (outlines, opaque) or ``both``. One ``colour`` for every class, or
    the class palette when None. ``out``: an RGBA array of the same size to draw into (a
    redraw then needs no new memory); ignored when it does not fit. (Table look-ups: tens of
    milliseconds for a 4096² mask.)"""
    return rgba_from_code(overlay_code(mask, outline=mode != "fill"), overlay_table(mode, opacity, colour), out)


def rgba_from_code(code: np.ndarray, table: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Look ``code`` (see :func:`overlay_code`) up in ``table`` (see :func:`overlay_table`):
    RGBA uint8 H×W×4, written into ``out`` when it is a contiguous array of that shape."""
    shape = code.shape[:2] + (4,)
    if out is not None and out.shape == shape and out.dtype == np.uint8 and out.flags.c_contiguous:
        table.take(code, out=out.view(np.uint32).reshape(code.shape), mode="clip")
        return out
    return table.take(code, mode="clip").view(np.uint8).reshape(shape)  # "clip": no bounds-check pass


def error_overlay(prediction: np.ndarray, truth: np.ndarray, opacity: float = 0.6, positive: int | None = None) -> np.ndarray:
    """RGBA: false positives (predicted foreground, truly background) in red, false negatives
    in blue. ``positive``: the class of interest (any non-zero class when None)."""
    pred = np.asarray(prediction)
    true = np.asarray(truth)
    pred_fg = pred > 0 if positive is None else pred == positive
    true_fg = true > 0 if positive is None else true == positive
    rgba = np.zeros(pred.shape[:2] + (4,), np.uint8)
    fp, fn = pred_fg & ~true_fg, ~pred_fg & true_fg
    rgba[fp, :3] = FALSE_POSITIVE
    rgba[fn, :3] = FALSE_NEGATIVE
    rgba[fp | fn, 3] = int(round(opacity * 255))
    return rgba


def padding_overlay(valid: np.ndarray | None, opacity: float = 0.45) -> np.ndarray | None:
    """RGBA marking pixels that are not from the source image (augmentation padding)."""
    if valid is None:
        return None
    rgba = np.zeros(valid.shape[:2] + (4,), np.uint8)
    invalid = ~np.asarray(valid, dtype=bool)
    rgba[invalid, :3] = PADDING_COLOUR
    rgba[invalid, 3] = int(round(opacity * 255))
    return rgba


def composite(base_rgb: np.ndarray, *layers: np.ndarray | None) -> np.ndarray:
    """Alpha-blend RGBA ``layers`` over an RGB uint8 image (for thumbnails and exports)."""
    out = base_rgb.astype(np.float32)
    for layer in layers:
        if layer is None:
            continue
        alpha = layer[..., 3:4].astype(np.float32) / 255.0
        out = out * (1 - alpha) + layer[..., :3].astype(np.float32) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def thumbnail(rgb: np.ndarray, size: int = 96) -> np.ndarray:
    """Shrink an RGB uint8 image so its longer side is ``size`` (area interpolation)."""
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    if scale >= 1:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
