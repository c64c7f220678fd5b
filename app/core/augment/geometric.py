"""Geometric transforms: flips, rotations, scaling, crops and mirror padding.

Image, mask and valid region move together; masks use nearest-neighbour interpolation so
label values stay exact. Pixels that come from outside the source image are marked invalid.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..registry import Param
from .base import Augmented, Transform, register_transform, restore_channels

BORDERS = {"mirror": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT}
BORDER_PARAM = Param("border", "choice", "mirror", choices=tuple(BORDERS),
                     help="fill outside the image: mirror (reflect without repeating the edge) or constant 0")
CORNERS = ("random", "center", "top_left", "top_right", "bottom_left", "bottom_right")


def _each(sample: Augmented, op) -> Augmented:
    """Apply an array operation (flip, rotate, slice) to image, mask and valid alike."""
    return Augmented(op(sample.image),
                     None if sample.mask is None else op(sample.mask),
                     None if sample.valid is None else op(sample.valid))


def warp_affine(sample: Augmented, matrix: np.ndarray, border: str) -> Augmented:
    """Warp with a 2×3 affine matrix (output size = input size)."""
    h, w = sample.image.shape[:2]
    mode = BORDERS[border]
    image = restore_channels(cv2.warpAffine(sample.image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                                            borderMode=mode), sample.image)
    mask = None if sample.mask is None else cv2.warpAffine(sample.mask, matrix, (w, h),
                                                           flags=cv2.INTER_NEAREST, borderMode=mode)
    valid = cv2.warpAffine(sample.valid_or_ones().view(np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0).view(bool)
    return Augmented(image, mask, valid)


def pad(sample: Augmented, top: int, bottom: int, left: int, right: int, border: str) -> Augmented:
    """Pad each side; padded pixels are marked invalid."""
    if not (top or bottom or left or right):
        return sample
    mode = BORDERS[border]

    def do(array, value=0, border_mode=mode):
        out = cv2.copyMakeBorder(np.ascontiguousarray(array), top, bottom, left, right, border_mode, value=value)
        return restore_channels(out, array)

    valid = do(sample.valid_or_ones().view(np.uint8), 0, cv2.BORDER_CONSTANT).view(bool)
    return Augmented(do(sample.image), None if sample.mask is None else do(sample.mask), valid)


@register_transform
class Flip(Transform):
    name = "flip"
    kind = "geometric"
    description = "Mirror horizontally, vertically or both (random: one of the three)."
    PARAMS = (Param("direction", "choice", "random", choices=("random", "horizontal", "vertical", "both")),)

    def apply(self, sample, rng):
        direction = self.params["direction"]
        if direction == "random":
            direction = ("horizontal", "vertical", "both")[rng.integers(3)]
        axes = {"horizontal": (1,), "vertical": (0,), "both": (0, 1)}[direction]
        return _each(sample, lambda a: np.flip(a, axes))


@register_transform
class Rotate90(Transform):
    name = "rotate90"
    kind = "geometric"
    description = "Rotate by a random multiple of 90° (0, 90, 180 or 270)."

    def apply(self, sample, rng):
        k = int(rng.integers(4))
        return _each(sample, lambda a: np.rot90(a, k, axes=(0, 1)))


@register_transform
class Rotate(Transform):
    name = "rotate"
    kind = "geometric"
    description = "Rotate about the centre by a random angle in [-max_angle, max_angle]."
    PARAMS = (Param("max_angle", "float", 15.0, 0.0, 180.0, help="degrees"), BORDER_PARAM)

    def apply(self, sample, rng):
        angle = rng.uniform(-self.params["max_angle"], self.params["max_angle"])
        h, w = sample.image.shape[:2]
        matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
        return warp_affine(sample, matrix, self.params["border"])


@register_transform
class Scale(Transform):
    name = "scale"
    kind = "geometric"
    description = "Zoom about the centre by a random factor in the range; the size stays."
    PARAMS = (Param("factor", "float_range", (0.9, 1.1), 0.25, 4.0, help="zoom factor range"), BORDER_PARAM)

    def apply(self, sample, rng):
        factor = rng.uniform(*self.params["factor"])
        h, w = sample.image.shape[:2]
        matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, factor)
        return warp_affine(sample, matrix, self.params["border"])


@register_transform
class Crop(Transform):
    name = "crop"
    kind = "geometric"
    description = "Cut a window of the given size, at random or at a named corner."
    PARAMS = (Param("size", "int_pair", (256, 256), 1, 16384, help="height, width"),
              Param("position", "choice", "random", choices=CORNERS))

    def apply(self, sample, rng):
        ch, cw = self.params["size"]
        h, w = sample.image.shape[:2]
        if ch > h or cw > w:  # too small: mirror-pad up to the crop size first
            dy, dx = max(0, ch - h), max(0, cw - w)
            sample = pad(sample, dy // 2, dy - dy // 2, dx // 2, dx - dx // 2, "mirror")
            h, w = sample.image.shape[:2]
        position = self.params["position"]
        if position == "random":
            y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        else:
            y = {"top": 0, "center": (h - ch) // 2, "bottom": h - ch}[position.split("_")[0]]
            x = {"left": 0, "center": (w - cw) // 2, "right": w - cw}[position.split("_")[-1]]
        return _each(sample, lambda a: a[y:y + ch, x:x + cw])


@register_transform
class Pad(Transform):
    name = "pad"
    kind = "geometric"
    description = ("Pad every side by a margin, then (if to_size > 0) up to at least to_size; "
                   "mirror padding as the original U-Net's overlap-tile strategy.")
    PARAMS = (Param("margin", "int", 16, 0, 4096, help="pixels added on every side"),
              Param("to_size", "int", 0, 0, 16384, help="pad symmetrically up to this height/width (0 = off)"),
              BORDER_PARAM)

    def apply(self, sample, rng):
        m, target = self.params["margin"], self.params["to_size"]
        h, w = sample.image.shape[0] + 2 * m, sample.image.shape[1] + 2 * m
        dy, dx = max(0, target - h), max(0, target - w)
        return pad(sample, m + dy // 2, m + dy - dy // 2, m + dx // 2, m + dx - dx // 2, self.params["border"])
