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
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    return np.ascontiguousarray(out)


def contour_of(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Boolean H×W: pixels on the border of each labelled region of ``mask``."""
    labels = np.asarray(mask)
    if labels.dtype == np.bool_:
        labels = labels.view(np.uint8)
    labels = labels.astype(np.int32, copy=False)
    kernel = np.ones((3, 3), np.uint8)
    eroded = cv2.erode(labels.astype(np.float32), kernel, iterations=thickness, borderType=cv2.BORDER_REPLICATE)
    dilated = cv2.dilate(labels.astype(np.float32), kernel, iterations=thickness, borderType=cv2.BORDER_REPLICATE)
    return (labels > 0) & ((eroded != labels) | (dilated != labels))


def mask_overlay(mask: np.ndarray, opacity: float = 0.5, mode: str = "fill",
                 colour: tuple[int, int, int] | None = None) -> np.ndarray:
    """RGBA uint8 H×W×4 drawing the non-zero classes of ``mask``: ``fill`` (translucent
    regions), ``contour`` (outlines, opaque) or ``both``. One ``colour`` for every class, or
    the class palette when None."""
    if mode not in ("fill", "contour", "both"):
        raise ValueError(f"unknown overlay mode {mode!r}; valid: fill, contour, both")
    labels = np.asarray(mask)
    if labels.dtype == np.bool_:
        labels = labels.view(np.uint8)
    h, w = labels.shape[:2]
    rgba = np.zeros((h, w, 4), np.uint8)
    if colour is not None:
        rgba[..., :3] = colour
    else:
        palette = CLASS_COLOURS
        index = np.where(labels > 0, 1 + (labels.astype(np.int64) - 1) % (len(palette) - 1), 0)
        rgba[..., :3] = palette[index]
    alpha = np.zeros((h, w), np.float32)
    if mode in ("fill", "both"):
        alpha[labels > 0] = opacity
    if mode in ("contour", "both"):
        alpha[contour_of(labels)] = max(opacity, 0.9) if mode == "both" else min(1.0, opacity * 2 + 0.2)
    rgba[..., 3] = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    return rgba


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
