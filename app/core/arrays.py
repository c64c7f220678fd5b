"""Small array helpers shared by the data and augmentation code."""

from __future__ import annotations

import cv2
import numpy as np

_CV_DEPTH = {np.dtype(np.uint8): cv2.CV_8U, np.dtype(np.uint16): cv2.CV_16U,
             np.dtype(np.int16): cv2.CV_16S, np.dtype(np.float32): cv2.CV_32F}


def as_hwc(image: np.ndarray) -> np.ndarray:
    """View an image as H×W×C (a grayscale H×W image gets C = 1)."""
    if image.ndim == 2:
        return image[:, :, None]
    if image.ndim == 3:
        return image
    raise ValueError(f"expected an H×W or H×W×C image, got shape {image.shape}")


def dtype_range(dtype: np.dtype) -> tuple[float, float]:
    """The intensity range of a dtype: (0, 255) for uint8, (0, 65535) for uint16, (0, 1) for floats."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return 0.0, 1.0
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    return 0.0, 1.0


def clip_to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round (for integer dtypes) and clip float ``values`` into ``dtype``'s range, then cast."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        low, high = dtype_range(dtype)
        np.clip(values, low, high, out=values)
        return np.rint(values, out=values).astype(dtype)
    return values.astype(dtype, copy=False)


def add_clipped(image: np.ndarray, delta: np.ndarray | float) -> np.ndarray:
    """``image + delta`` (delta: float32 array of image's shape, or a number), rounded and
    clipped to the image's dtype, in one pass where OpenCV supports the dtype."""
    depth = _CV_DEPTH.get(image.dtype)
    channels = image.shape[2] if image.ndim == 3 else 1
    if depth is not None and channels <= 4:
        other = delta if isinstance(delta, np.ndarray) else (float(delta),) * 4
        out = cv2.add(image, other, dtype=depth)
        return out.reshape(image.shape)
    return clip_to_dtype(image.astype(np.float32) + delta, image.dtype)
