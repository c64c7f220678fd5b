"""Watershed clean-up of a predicted probability map or mask, step by step.

The steps follow the reference EM project (OpenCV's marker-based watershed recipe); every
intermediate image is returned with its name so the GUI can show the whole strip, and
changing a parameter re-runs only this, never the network:

1. grayscale  2. threshold  3. closing  4. sure background  5. distance transform
6. sure foreground  7. unknown region  8. markers  9. watershed  → result
(then, optionally, small objects removed and holes filled).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import cv2
import numpy as np

from .registry import Param, RegistryError

POSTPROCESS_PARAMS: tuple[Param, ...] = (
    Param("threshold", "float", 0.5, 0.0, 1.0, help="foreground threshold as a fraction of the range "
          "(0.5 = probability 0.5, or 127 of 255)"),
    Param("close_kernel", "int", 3, 1, 31, help="closing kernel side (pixels)"),
    Param("close_iterations", "int", 2, 0, 20, help="closing iterations"),
    Param("dilate_iterations", "int", 3, 0, 50, help="dilations that give the sure background"),
    Param("distance_mask", "choice", 5, choices=(3, 5, 0), help="distance transform mask: 3, 5 or 0 (exact)"),
    Param("foreground_fraction", "float", 0.7, 0.0, 1.0,
          help="sure foreground: distance above this fraction of the maximum (the main tuning knob)"),
    Param("min_object_size", "int", 0, 0, 1_000_000, help="remove objects smaller than this (pixels; 0 = keep all)"),
    Param("fill_holes", "bool", False, help="fill holes inside objects"),
)


@dataclass(frozen=True)
class WatershedParams:
    """Post-processing settings; defaults are the reference project's."""

    threshold: float = 0.5
    close_kernel: int = 3
    close_iterations: int = 2
    dilate_iterations: int = 3
    distance_mask: int = 5
    foreground_fraction: float = 0.7
    min_object_size: int = 0
    fill_holes: bool = False

    def __post_init__(self) -> None:  # checked and converted: 5.0 for an integer setting is stored as 5
        for spec in POSTPROCESS_PARAMS:
            object.__setattr__(self, spec.name, spec.validate(getattr(self, spec.name), "post-processing"))

    @classmethod
    def from_dict(cls, data: dict) -> "WatershedParams":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise RegistryError(f"post-processing has no parameter {', '.join(sorted(unknown))}; "
                                f"valid: {', '.join(sorted(known))}")
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes) -> "WatershedParams":
        return replace(self, **changes)


@dataclass
class PostprocessResult:
    """``mask``: 0/1 uint8; ``labels``: int32 instances (0 = background); ``steps``: every
    intermediate image in order as ``(name, array)``."""

    mask: np.ndarray
    labels: np.ndarray
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)

    @property
    def object_count(self) -> int:
        return int(self.labels.max()) if self.labels.size else 0

    def step(self, name: str) -> np.ndarray:
        for step_name, array in self.steps:
            if step_name == name:
                return array
        raise KeyError(f"no step {name!r}; steps: {', '.join(n for n, _ in self.steps)}")


def to_gray8(prediction: np.ndarray) -> np.ndarray:
    """Bring a probability map (float in [0, 1]), a 0/1 or 0/255 mask, or an 8/16-bit image
    (gray or colour) to one 8-bit channel."""
    array = np.asarray(prediction)
    if array.ndim == 3:
        if array.shape[2] == 1:
            array = array[:, :, 0]
        else:
            array = cv2.cvtColor(np.ascontiguousarray(array[:, :, :3]), cv2.COLOR_RGB2GRAY) \
                if array.dtype in (np.uint8, np.uint16, np.float32) else array[:, :, :3].mean(axis=2)
    if array.dtype == np.bool_:
        return array.view(np.uint8) * np.uint8(255)
    if array.dtype == np.uint8:
        return array if array.max(initial=0) > 1 else array * np.uint8(255)
    if array.dtype.kind == "f":
        return np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if array.dtype == np.uint16:
        top = array.max(initial=0)
        if top <= 1:  # a 0/1 mask saved as 16 bits, like an 8-bit one
            return array.astype(np.uint8) * np.uint8(255)
        return (array >> 8).astype(np.uint8) if top > 255 else array.astype(np.uint8)
    return np.clip(array, 0, 255).astype(np.uint8)


def watershed_postprocess(prediction: np.ndarray, params: WatershedParams | None = None,
                          *, keep_steps: bool = True) -> PostprocessResult:
    """Clean a prediction with marker-based watershed; see the module docstring for the steps.

    Empty input gives an empty mask; all-foreground input gives one object. ``keep_steps``
    False skips storing the intermediate images (a little faster for batch use).
    """
    p = params or WatershedParams()
    steps: list[tuple[str, np.ndarray]] = []
    keep = steps.append if keep_steps else (lambda item: None)

    gray = to_gray8(prediction)
    keep(("grayscale", gray))
    level = min(254, int(round(p.threshold * 255 - 0.5)))  # 0.5 → 127, like the reference
    _, binary = cv2.threshold(gray, level, 255, cv2.THRESH_BINARY)
    keep(("threshold", binary))
    kernel = np.ones((p.close_kernel, p.close_kernel), np.uint8)
    closing = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, kernel, iterations=p.close_iterations) \
        if p.close_iterations else binary
    keep(("closing", closing))
    sure_bg = cv2.dilate(closing, kernel, iterations=p.dilate_iterations) if p.dilate_iterations else closing
    keep(("sure background", sure_bg))

    if not closing.any():
        empty = np.zeros(gray.shape, np.int32)
        for name in ("distance transform", "sure foreground", "unknown region", "markers", "watershed"):
            keep((name, empty if name in ("markers", "watershed") else np.zeros(gray.shape, np.uint8)))
        result = np.zeros(gray.shape, np.uint8)
        keep(("result", result))
        return PostprocessResult(result, empty, steps)

    # A map with no background at all has no distance to measure: pad it with a background frame.
    source = closing if not closing.all() else cv2.copyMakeBorder(closing, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform(source, cv2.DIST_L2, p.distance_mask)
    if source is not closing:
        dist = dist[1:-1, 1:-1]
    keep(("distance transform", dist))
    _, sure_fg = cv2.threshold(dist, p.foreground_fraction * float(dist.max()), 255, cv2.THRESH_BINARY)
    sure_fg = sure_fg.astype(np.uint8)
    keep(("sure foreground", sure_fg))
    unknown = cv2.subtract(sure_bg, sure_fg)
    keep(("unknown region", unknown))
    _, markers = cv2.connectedComponents(sure_fg, ltype=cv2.CV_32S)
    markers += 1
    markers[unknown == 255] = 0
    keep(("markers", markers.copy() if keep_steps else markers))
    flooded = _watershed(gray, markers)
    keep(("watershed", flooded))

    labels = flooded - 1  # background marker 1 → 0, boundaries -1 → -2, objects → 1..K
    np.maximum(labels, 0, out=labels)
    mask = (labels > 0).view(np.uint8)
    keep(("result", mask))
    if p.min_object_size > 0 and labels.any():
        sizes = np.bincount(labels.ravel())
        small = sizes < p.min_object_size
        small[0] = False
        labels[small[labels]] = 0
        labels = _relabel(labels)
        mask = (labels > 0).view(np.uint8)
        keep(("small objects removed", mask))
    if p.fill_holes and labels.any():
        from scipy import ndimage  # imported on first use: keeps start-up light

        filled = ndimage.binary_fill_holes(mask.astype(bool))
        holes = filled & (labels == 0)
        if holes.any():  # give each hole pixel its nearest object's label
            _, (iy, ix) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
            labels[holes] = labels[iy[holes], ix[holes]]
        mask = (labels > 0).view(np.uint8)
        keep(("holes filled", mask))
    return PostprocessResult(mask, labels, steps)


def _watershed(gray: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """cv2.watershed, without its artefact of marking the image's outermost pixels as
    boundary: image and markers get a sacrificial 1-pixel frame that is cropped off again."""
    image = cv2.copyMakeBorder(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    framed = cv2.copyMakeBorder(markers, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    cv2.watershed(image, framed)
    return framed[1:-1, 1:-1]


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive labels 1..K after objects were removed."""
    present = np.flatnonzero(np.bincount(labels.ravel()))
    present = present[present > 0]
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    lut[present] = np.arange(1, len(present) + 1, dtype=np.int32)
    return lut[labels]
