"""Tiny image files for tests, written with Pillow/tifffile directly (not the code under test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

ISBI = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "isbi2012"


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".tif", ".tiff"):
        tifffile.imwrite(path, array, **kwargs)
    else:
        Image.fromarray(array).save(path, **kwargs)
    return path


def pattern(h: int = 12, w: int = 16, channels: int = 0, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    high = 255 if dtype == np.uint8 else 4095
    shape = (h, w) if channels == 0 else (h, w, channels)
    return rng.integers(0, high, shape).astype(dtype)


def binary_mask(h: int = 12, w: int = 16, values=(0, 255), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    return np.where(rng.random((h, w)) < 0.3, values[1], values[0]).astype(np.uint8)


def make_folder(root: Path, names, *, image_ext=".png", mask_ext=".png", mask_suffix="", size=(12, 16)) -> Path:
    for i, name in enumerate(names):
        save(root / "images" / f"{name}{image_ext}", pattern(*size, seed=i))
        save(root / "masks" / f"{name}{mask_suffix}{mask_ext}", binary_mask(*size, seed=i))
    return root
