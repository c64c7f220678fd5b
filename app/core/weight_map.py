"""The U-Net border weight map (Ronneberger et al. 2015, eq. 2).

    w(x) = w_c(x) + w0 · exp(-(d1(x) + d2(x))² / (2σ²))

``w_c`` balances class frequencies; ``d1``, ``d2`` are the distances to the nearest and the
second-nearest object (connected component of the foreground). The border term is applied to
background pixels, so the thin gaps between touching objects weigh most.

Speed: each object's exact Euclidean distance transform is computed only inside its bounding
box grown by the distance ``R`` beyond which the border term is below ``tolerance``
(``R = σ·sqrt(2·ln(w0 / tolerance))``); farther objects cannot change ``w`` by more than that.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np


def class_balance_weights(mask: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """w_c per pixel: ``pixels / (classes present × pixels of this class)`` (mean weight 1)."""
    num_classes = num_classes or int(mask.max()) + 1
    counts = np.bincount(mask.ravel(), minlength=num_classes).astype(np.float64)
    present = counts > 0
    per_class = np.zeros_like(counts)
    per_class[present] = mask.size / (present.sum() * counts[present])
    return per_class.astype(np.float32)[mask]


def _nearest_two(objects: np.ndarray, boxes: np.ndarray, labels: range, margin: int):
    h, w = objects.shape
    d1 = np.full((h, w), np.inf, dtype=np.float32)
    d2 = np.full((h, w), np.inf, dtype=np.float32)
    for label in labels:
        x, y, bw, bh = (int(v) for v in boxes[label, :4])
        ys = slice(max(0, y - margin), min(h, y + bh + margin))
        xs = slice(max(0, x - margin), min(w, x + bw + margin))
        outside = cv2.compare(objects[ys, xs], label, cv2.CMP_NE)
        dist = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        near, second = d1[ys, xs], d2[ys, xs]  # views: OpenCV updates them in place
        cv2.min(second, cv2.max(near, dist), dst=second)
        cv2.min(near, dist, dst=near)
    return d1, d2


def border_distances(objects: np.ndarray, boxes: np.ndarray, reach: float,
                     workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Distances to the nearest and second-nearest object, exact wherever both are within
    ``reach`` pixels (elsewhere exact or ``inf``). ``objects`` labels objects 1..K and
    ``boxes[k]`` is object k's (x, y, width, height). ``workers`` > 1 splits the objects over
    threads (OpenCV releases the GIL) and merges their two nearest."""
    # A background pixel is at least 1 pixel from every object, so an object that is nearest
    # or second-nearest with d1 + d2 <= reach lies within reach - 1 of it.
    margin = max(1, int(math.ceil(reach)) - 1)
    count = len(boxes)
    if workers <= 1 or count < 16:
        return _nearest_two(objects, boxes, range(1, count), margin)
    chunks = [range(1 + i, count, workers) for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda labels: _nearest_two(objects, boxes, labels, margin), chunks))
    d1, d2 = parts[0]
    for a1, a2 in parts[1:]:
        np.minimum(d2, np.maximum(d1, a1), out=d2)
        np.minimum(d2, a2, out=d2)
        np.minimum(d1, a1, out=d1)
    return d1, d2


def unet_weight_map(mask: np.ndarray, *, w0: float = 10.0, sigma: float = 5.0, balance: bool = True,
                    num_classes: int | None = None, connectivity: int = 4,
                    tolerance: float = 1e-4, workers: int = 1) -> np.ndarray:
    """Per-pixel loss weights (float32, H×W) for a label mask (0 = background); objects are
    4- or 8-connected components of the foreground. ``workers`` threads share the distance
    transforms (keep 1 inside data-loader workers, which already use every core)."""
    weights = class_balance_weights(mask, num_classes) if balance else np.ones(mask.shape, np.float32)
    if w0 <= 0:
        return weights
    count, objects, stats, _ = cv2.connectedComponentsWithStats((mask > 0).view(np.uint8), connectivity=connectivity,
                                                                ltype=cv2.CV_32S)
    if count < 3:  # background plus fewer than two objects: no gaps between objects
        return weights
    reach = sigma * math.sqrt(2.0 * math.log(w0 / tolerance)) if w0 > tolerance else 0.0
    d1, d2 = border_distances(objects, stats, reach, workers)
    total = d1 + d2
    background = (mask == 0) & np.isfinite(total)
    border = np.exp(-np.square(total[background]) / np.float32(2.0 * sigma * sigma))
    weights[background] += np.float32(w0) * border
    return weights
