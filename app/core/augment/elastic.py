"""Elastic deformation (Simard et al. 2003) with a fast displacement field.

Simard's field is uniform noise in [-1, 1] smoothed by a Gaussian of ``sigma`` pixels and
scaled by ``alpha``. Smoothed white noise is band-limited, so the same random field is drawn
here on a grid ``sigma / 3`` pixels apart (smoothing ``sigma`` becomes 3 grid cells), scaled
so its standard deviation equals Simard's, ``alpha / (2·sigma·sqrt(3·pi))`` pixels, and
interpolated up to full size. One remap then moves image (bilinear), mask (nearest) and the
valid region together.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from ..registry import Param
from .base import Augmented, Transform, register_transform, restore_channels
from .geometric import BORDER_PARAM, BORDERS

GRID_SIGMA = 3.0  # smoothing, in grid cells, of the coarse noise


def displacement_std(alpha: float, sigma: float) -> float:
    """Standard deviation (pixels) of Simard's field: uniform[-1, 1] noise, Gaussian(sigma), × alpha."""
    return alpha / (2.0 * sigma * math.sqrt(3.0 * math.pi))


@lru_cache(maxsize=16)
def _identity_grid(h: int, w: int) -> np.ndarray:
    """H×W×2 float32 (x, y) pixel coordinates, read-only."""
    grid = np.empty((h, w, 2), dtype=np.float32)
    grid[:, :, 0] = np.arange(w, dtype=np.float32)[None, :]
    grid[:, :, 1] = np.arange(h, dtype=np.float32)[:, None]
    grid.setflags(write=False)
    return grid


def displacement_field(shape: tuple[int, int], alpha: float, sigma: float,
                       rng: np.random.Generator) -> np.ndarray:
    """A smooth random field, H×W×2 float32 (dx, dy) in pixels."""
    h, w = shape
    step = max(1.0, sigma / GRID_SIGMA)
    grid_sigma = sigma / step
    gh, gw = max(2, math.ceil(h / step) + 1), max(2, math.ceil(w / step) + 1)
    noise = rng.random((gh, gw, 2), dtype=np.float32)  # uniform [0, 1): mean 0.5, std 1/sqrt(12)
    noise -= np.float32(0.5)
    # White noise of std s0 smoothed by a normalised 2-D Gaussian (g cells) has std s0 / (2·sqrt(pi)·g).
    noise *= np.float32(displacement_std(alpha, sigma) * 2.0 * math.sqrt(math.pi) * grid_sigma * math.sqrt(12.0))
    smooth = cv2.GaussianBlur(noise, (0, 0), grid_sigma, borderType=cv2.BORDER_REFLECT_101)
    return cv2.resize(smooth, (w, h), interpolation=cv2.INTER_LINEAR)


def remap(sample: Augmented, coords: np.ndarray, border: str) -> Augmented:
    """Sample image, mask and valid region at ``coords`` (H×W×2 float32 x, y)."""
    h, w = sample.image.shape[:2]
    mode = BORDERS[border]
    image = restore_channels(cv2.remap(sample.image, coords, None, cv2.INTER_LINEAR, borderMode=mode),
                             sample.image)
    mask = None if sample.mask is None else cv2.remap(sample.mask, coords, None, cv2.INTER_NEAREST,
                                                      borderMode=mode)
    valid = None
    if sample.valid is not None or not _inside(coords, w, h):
        valid = cv2.remap(sample.valid_or_ones().view(np.uint8), coords, None, cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0).view(bool)
    return Augmented(image, mask, valid)


def _inside(coords: np.ndarray, w: int, h: int) -> bool:
    if coords.min() < 0:
        return False
    return bool(coords[:, :, 0].max() <= w - 1 and coords[:, :, 1].max() <= h - 1)


@register_transform
class Elastic(Transform):
    name = "elastic"
    kind = "geometric"
    description = "Smooth random elastic deformation (Simard et al.): alpha scales, sigma smooths."
    PARAMS = (Param("alpha", "float", 300.0, 0.0, 5000.0, help="strength (Simard's alpha)"),
              Param("sigma", "float", 10.0, 1.0, 200.0, help="smoothness in pixels (Simard's sigma)"),
              BORDER_PARAM)

    def apply(self, sample, rng):
        h, w = sample.image.shape[:2]
        coords = displacement_field((h, w), self.params["alpha"], self.params["sigma"], rng)
        coords += _identity_grid(h, w)
        return remap(sample, coords, self.params["border"])
