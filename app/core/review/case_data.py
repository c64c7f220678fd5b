"""A case's pixels: the image, the predicted mask, its watershed clean-up and any correction.

Masks are binary here (foreground = 1): a predicted mask file may be 0/1, 0/255, colour-coded
(any bright channel is foreground) or an 8/16-bit probability map (foreground above one half of
its range).
"""

from __future__ import annotations

import hashlib

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..imageio import ImageReadError, read_image
from ..postprocess import PostprocessResult, WatershedParams, to_gray8, watershed_postprocess
from .record import ReviewCase

CORRECTIONS_DIR = "corrections"  # a review's corrected masks, inside the review folder


@dataclass
class CaseData:
    """Everything the workspace shows for one case. ``source_gray`` is what the watershed
    cleans (the probability map when the review has one, else the predicted mask)."""

    name: str
    image: np.ndarray
    prediction: np.ndarray  # uint8 0/1
    source_gray: np.ndarray  # uint8 0..255
    corrected: np.ndarray | None = None  # uint8 0/1

    def watershed(self, params: WatershedParams) -> PostprocessResult:
        """The clean-up's mask and objects, without its intermediate steps (a review never shows
        them, and for a 4096² case they would hold about 300 MB per cached case)."""
        gray = self.source_gray
        if gray.max(initial=0) <= 1:  # already 0..255: a map this dark is not a 0/1 mask to scale up
            gray = gray.astype(np.float32) / 255
        return watershed_postprocess(gray, params, keep_steps=False)

    def variant_mask(self, variant: str, params: WatershedParams) -> np.ndarray:
        """The prediction (``"prediction"``) or its watershed clean-up (``"watershed"``), 0/1."""
        return self.watershed(params).mask if variant == "watershed" else self.prediction


def binary_mask(array: np.ndarray) -> np.ndarray:
    """A mask or probability map as uint8 0/1 (foreground above half the range)."""
    return (to_gray8(array) > 127).view(np.uint8)


def mask_stats(mask: np.ndarray) -> tuple[int, int]:
    """(foreground area in pixels, number of 8-connected objects)."""
    binary = (np.asarray(mask) > 0).view(np.uint8)
    area = int(np.count_nonzero(binary))
    if area == 0:
        return 0, 0
    count, _ = cv2.connectedComponents(binary, connectivity=8)
    return area, int(count) - 1


def resolve(folder: Path, path: str) -> Path:
    """A path from the record: relative ones live in the review folder."""
    p = Path(path)
    return p if p.is_absolute() else Path(folder) / p


def _finite(raw: np.ndarray, path: Path, what: str) -> np.ndarray:
    """``raw``, refused (naming the file) when it has NaN or infinite values: they have no place
    on a 0..255 scale (complex ones :func:`read_image` refuses)."""
    if raw.dtype.kind == "f" and not np.isfinite(raw).all():
        bad = int(raw.size - np.count_nonzero(np.isfinite(raw)))
        raise ImageReadError(path, f"{bad} pixel(s) of the {what} are NaN or infinite")
    return raw


def read_mask_checked(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """Read a mask file as uint8 0..255 gray and check it matches the image's size.

    A colour-coded mask (channels that differ, e.g. red on black from an annotation tool, one
    colour per cell, or a palette PNG) is foreground wherever it is not black: by luminance pure
    red would be 76 of 255, and a dark class colour such as (64, 0, 0) less, and read as background."""
    raw = _finite(read_image(path), path, "mask")
    if raw.shape[:2] != tuple(shape):
        raise ImageReadError(path, f"mask is {raw.shape[1]}×{raw.shape[0]} but its image is {shape[1]}×{shape[0]}")
    if raw.ndim == 3 and raw.shape[2] > 1:
        colour = raw[:, :, :3]
        if not all(np.array_equal(colour[:, :, 0], colour[:, :, c]) for c in range(1, colour.shape[2])):
            return (colour.max(axis=2) > 0).view(np.uint8) * np.uint8(255)
    return to_gray8(raw)


def read_probability_checked(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """Read a foreground probability map (8-bit gray, 0..255 for 0..1, as ``segstudio predict
    --probabilities`` writes it) as it is, and check it matches the image's size. Unlike a mask,
    a map whose largest value is 1 (every probability under 0.6 %) stays that dark."""
    raw = _finite(read_image(path), path, "probability map")
    if raw.shape[:2] != tuple(shape):
        raise ImageReadError(path, f"probability map is {raw.shape[1]}×{raw.shape[0]} but its image is "
                                   f"{shape[1]}×{shape[0]}")
    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[:, :, 0]
    if raw.dtype != np.uint8 or raw.ndim != 2:
        raise ImageReadError(path, "not a probability map (an 8-bit gray image)")
    return raw


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_unchanged(path: Path, digest: str) -> None:
    """Refuse a source file whose bytes are not those the review was made from (no digest: not checked)."""
    if not digest:
        return
    if not Path(path).is_file():
        raise ImageReadError(path, "file does not exist")
    if file_digest(path) != digest:
        raise ImageReadError(path, "has changed since the review was created, so what was decided on it no "
                                   "longer applies; put the original file back, or start a new review")


def load_case(folder: Path, case: ReviewCase) -> CaseData:
    """Read a case's files; raises :class:`ImageReadError` naming the file that failed, or a
    source mask that changed since the review was made (its decisions were about the old one)."""
    image = read_image(resolve(folder, case.image))
    shape = image.shape[:2]
    mask_path = resolve(folder, case.mask)
    _check_unchanged(mask_path, case.mask_digest)  # first: a changed file is the cause, whatever else is wrong
    gray = read_mask_checked(mask_path, shape)
    prediction = (gray > 127).view(np.uint8)
    source = gray
    if case.probability:
        path = resolve(folder, case.probability)
        try:
            _check_unchanged(path, case.probability_digest)
            source = read_probability_checked(path, shape)
        except ImageReadError:
            if case.probability_digest:  # a source file: its clean-up is what was decided on
                raise
            source = gray  # the clean-up falls back to the mask itself
    corrected = None
    if case.corrected:
        path = resolve(folder, case.corrected)
        if path.resolve().parent != (Path(folder) / CORRECTIONS_DIR).resolve():
            raise ImageReadError(path, "a correction must be in the review's corrections folder")
        corrected = binary_mask(read_mask_checked(path, shape))
    return CaseData(case.name, image, prediction, source, corrected)
