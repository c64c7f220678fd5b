"""Interpreting mask files as label maps.

A mask file may be binary with any two values (0/255, 0/1, 1/2, ...), an indexed label map
(0..C-1), grey-coded classes (0/128/255) or a colour-coded image. :func:`infer_label_mapping`
looks at the values used across a whole dataset and decides how raw values become class
indices 0..C-1; :func:`apply_label_mapping` converts one mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MASK_MODES = ("auto", "binary", "indexed")
DEFAULT_MAX_CLASSES = 64


def raw_label_values(mask: np.ndarray) -> np.ndarray:
    """Collapse a raw mask to one label value per pixel (H×W, integer).

    Grayscale masks pass through; colour masks whose channels agree become grayscale; other
    colour masks get one integer per colour (R·65536 + G·256 + B), black staying 0.
    Float masks must hold whole numbers.
    """
    if mask.ndim == 3:
        if all(np.array_equal(mask[:, :, 0], mask[:, :, c]) for c in range(1, mask.shape[2])):
            mask = mask[:, :, 0]
        else:
            rgb = mask[:, :, :3].astype(np.int64)
            return (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
    if mask.dtype.kind == "f":
        if not np.all(np.isfinite(mask)) or not np.array_equal(mask, np.round(mask)):
            raise ValueError("mask holds fractional values; a label map needs whole numbers")
        mask = mask.astype(np.int64)
    if mask.dtype == np.bool_:
        mask = mask.astype(np.uint8)
    return mask


def unique_values(labels: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer label map (fast path for 8-bit)."""
    if labels.dtype == np.uint8:
        return np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
    return np.unique(labels)


SOFT_MIN_BETWEEN = 8  # values between the lowest and the highest that make a mask look blurred
SOFT_BAND = 5  # blurred edges are bands narrower than this many pixels


def looks_soft(labels: np.ndarray, values: np.ndarray) -> bool:
    """True for a binary mask with blurred edges (anti-aliased drawing, JPEG compression): many
    values between its lowest and highest, on thin bands only (where the two meet). A grey-coded
    label map's classes fill regions instead."""
    if len(values) < 2 + SOFT_MIN_BETWEEN:
        return False
    import cv2

    between = ((labels != values[0]) & (labels != values[-1])).astype(np.uint8)
    inside = cv2.erode(between, np.ones((SOFT_BAND, SOFT_BAND), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return np.count_nonzero(inside) <= 0.1 * np.count_nonzero(between)


@dataclass(frozen=True)
class LabelMapping:
    """How raw mask values map to class indices."""

    mode: str  # "binary", "indexed" or "grey-coded"
    num_classes: int
    value_to_class: dict[int, int] = field(default_factory=dict)  # empty for identity mapping
    note: str = ""

    def describe(self) -> str:
        if not self.value_to_class:
            return f"{self.mode}: {self.num_classes} classes, values used as class indices"
        pairs = ", ".join(f"{v}→{c}" for v, c in sorted(self.value_to_class.items()))
        return f"{self.mode}: {self.num_classes} classes ({pairs})"


def infer_label_mapping(
    value_sets: list[np.ndarray],
    *,
    mode: str = "auto",
    max_classes: int = DEFAULT_MAX_CLASSES,
    soft: list[bool] | None = None,
) -> LabelMapping:
    """Decide the mapping from the distinct values of every mask in a dataset (and, given
    ``soft``, whether each mask :func:`looks_soft`).

    ``auto``: two values or fewer → binary (lowest → 0, highest → 1); a mix of 0/1 and 0/255
    masks → binary; values all below ``max_classes`` → indexed as they are; otherwise up to
    ``max_classes`` distinct values → grey-coded (sorted values → 0..C-1), unless every mask
    with values between its lowest and highest looks soft: then binary, thresholded half-way,
    with a note. More than ``max_classes`` values → binary (lowest value is background), with a
    note saying so.
    ``binary``: the lowest value is background, everything else foreground.
    ``indexed``: values are class indices as they are.
    """
    if mode not in MASK_MODES:
        raise ValueError(f"unknown mask mode {mode!r}; valid: {', '.join(MASK_MODES)}")
    union = np.unique(np.concatenate(value_sets)) if value_sets else np.array([0])
    union = [int(v) for v in union]

    def binary(note: str = "") -> LabelMapping:
        background = 0 if len(union) == 1 and union[0] != 0 else union[0]
        mapping = {v: (0 if v == background else 1) for v in union}
        return LabelMapping("binary", 2, mapping, note)

    if mode == "binary":
        return binary()
    if mode == "indexed":
        return LabelMapping("indexed", max(2, union[-1] + 1))
    if len(union) <= 2:
        return binary()
    if set(union) == {0, 1, 255} and not any({1, 255} <= set(map(int, s)) for s in value_sets):
        return binary("masks mix 0/1 and 0/255 encodings; both read as binary")
    if union[-1] < max_classes:
        return LabelMapping("indexed", union[-1] + 1)
    if soft and any(soft) and all(flag or len(v) <= 2 for flag, v in zip(soft, value_sets)):
        low, high = union[0], union[-1]
        middle = (low + high) / 2
        return LabelMapping("binary", 2, {v: int(v > middle) for v in union},
                            f"masks look anti-aliased or JPEG-compressed ({len(union) - 2} values between {low} "
                            f"and {high}, on their edges only); read as binary, above {middle:g} = foreground")
    if len(union) <= max_classes:
        return LabelMapping("grey-coded", len(union), {v: i for i, v in enumerate(union)})
    note = (
        f"masks together use {len(union)} distinct values, more than {max_classes} classes; "
        "read as binary (lowest value = background)"
    )
    return binary(note)


def apply_label_mapping(labels: np.ndarray, mapping: LabelMapping) -> np.ndarray:
    """Convert a raw label map (from :func:`raw_label_values`) to class indices."""
    dtype = np.uint8 if mapping.num_classes <= 256 else np.uint16
    if not mapping.value_to_class:
        return labels.astype(dtype, copy=False)
    if labels.dtype in (np.uint8, np.uint16):
        lut = np.zeros(256 if labels.dtype == np.uint8 else 65536, dtype=dtype)
        for value, cls in mapping.value_to_class.items():
            if value < lut.size:
                lut[value] = cls
        return lut[labels]
    values = np.array(sorted(mapping.value_to_class), dtype=np.int64)
    classes = np.array([mapping.value_to_class[v] for v in values], dtype=dtype)
    index = np.clip(np.searchsorted(values, labels), 0, len(values) - 1)
    return classes[index]
