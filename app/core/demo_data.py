"""Seeded synthetic segmentation data, so SegStudio can train on first launch with no user data.

Everything is generated (never downloaded) and deterministic for a seed. Two flavours:

* ``em``: grey electron-microscopy-like cells (as in the ISBI 2012 membrane task); the mask is
  255 on cell interiors and 0 on membranes.
* ``lesion``: an RGB dermoscopy-like skin image with one lesion; the mask is 255 on the lesion.

In both, the mask is the ground truth the image is drawn from, and the images carry
distractors (dark organelles, hairs) that are deliberately *not* foreground.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi

from .atomic import atomic_write_text
from .imageio import write_image

__all__ = ["FLAVOURS", "generate_em_sample", "generate_lesion_sample", "generate_sample",
           "write_demo_dataset"]

FLAVOURS: tuple[str, ...] = ("em", "lesion")

_EM_CELL_AREA = 600.0  # mean cell area in pixels before merging (pixel scale is fixed)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth random field with features about ``scale`` pixels across, roughly zero mean, std 1."""
    h, w = shape
    grid = (max(2, round(h / scale)), max(2, round(w / scale)))
    field = cv2.resize(rng.standard_normal(grid).astype(np.float32), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    sub = field[::4, ::4]
    return (field - sub.mean()) / (sub.std() + 1e-6)


def _em_labels(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Warped cell labels (Voronoi of uneven random seeds), before and after merging neighbours."""
    shape = (size, size)
    density = np.exp(0.35 * _smooth_noise(rng, shape, size / 3)).ravel()
    n_seeds = max(6, int(round(size * size / _EM_CELL_AREA * rng.uniform(0.8, 1.25))))
    flat = rng.choice(size * size, size=n_seeds, replace=False, p=density / density.sum())
    seeds = np.ones(shape, bool)
    seeds.flat[flat] = False
    seed_label = np.zeros(shape, np.int32)
    seed_label.flat[flat] = np.arange(n_seeds)
    iy, ix = ndi.distance_transform_edt(seeds, return_distances=False, return_indices=True)
    labels = seed_label[iy, ix]
    # Merge tiny cells and ~15% of the others into a larger-numbered neighbour: bigger,
    # non-convex cells.
    a, b = labels[:, :-1].ravel(), labels[:, 1:].ravel()
    differ = a != b
    pairs = np.unique(np.minimum(a, b)[differ] * n_seeds + np.maximum(a, b)[differ])
    parent = np.arange(n_seeds)
    tiny = np.bincount(labels.ravel(), minlength=n_seeds) < _EM_CELL_AREA / 5
    chosen = pairs[(rng.random(len(pairs)) < 0.15 / 3) | tiny[pairs // n_seeds]]  # ~6 neighbours
    parent[chosen // n_seeds] = chosen % n_seeds
    for _ in range(64):  # resolve chains (always towards larger labels, so no cycles)
        parent = parent[parent]
    both = np.dstack([labels, parent[labels]]).astype(np.float32)
    # Smooth displacement at two scales bends the straight Voronoi edges.
    dy, dx = (3 * _smooth_noise(rng, shape, 28) + 1.6 * _smooth_noise(rng, shape, 14) for _ in "yx")
    gy, gx = np.mgrid[0:size, 0:size].astype(np.float32)
    both = cv2.remap(both, gx + dx, gy + dy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
    return both[..., 0].astype(np.int32), both[..., 1].astype(np.int32)


def _edges(labels: np.ndarray) -> np.ndarray:
    """Pixels on either side of a label change (so lines are at least 2 px wide)."""
    edge = np.zeros(labels.shape, bool)
    horizontal, vertical = labels[:, 1:] != labels[:, :-1], labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    return edge


def generate_em_sample(rng: np.random.Generator,
                       size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One EM-like sample: (uint8 image HxW, uint8 mask HxW; 255 interior, 0 membrane)."""
    shape = (size, size)
    unmerged, labels = _em_labels(rng, size)
    dist = cv2.distanceTransform((~_edges(labels)).astype(np.uint8), cv2.DIST_L2, 5)
    # Membrane half-width varies smoothly along the borders (full width about 2-5 px); an
    # opening of the interiors rounds the cell corners, leaving dark triangles at junctions.
    wobble = 0.5 * _smooth_noise(rng, shape, 20)
    offset = 1.1 + rng.uniform(-0.2, 0.2)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    for _ in range(6):  # nudge the width until membranes cover about 17-28% of the image
        interior = (dist >= np.clip(offset + wobble, 0.5, 2.1)).astype(np.uint8)
        interior = cv2.morphologyEx(interior, cv2.MORPH_OPEN, disk)
        fraction = 1 - interior.mean()
        if 0.17 <= fraction <= 0.28:
            break
        offset += 0.2 if fraction < 0.17 else -0.2
    membrane = interior == 0
    mask = interior * np.uint8(255)

    # Cells: a grey level each (a few darker ones) and blotches; dark membranes; slight blur.
    n_cells = int(labels.max()) + 1
    dark_cell = rng.random(n_cells) < 0.1
    grey = np.where(dark_cell, rng.uniform(115, 140, n_cells), rng.uniform(150, 185, n_cells))
    img = grey.astype(np.float32)[labels] + 8 * _smooth_noise(rng, shape, 6)
    mem_grey = 75 + 15 * _smooth_noise(rng, shape, 15)
    img = cv2.GaussianBlur(np.where(membrane, mem_grey, img), (0, 0), rng.uniform(0.6, 0.9))
    # Distractors (not membrane in the mask): faint ghost borders where cells were merged,
    # mitochondria (dark rim, grey inside) and vesicles (dots, small rings) inside cells.
    inner = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    dark = np.where(_edges(unmerged) & (inner > 2), rng.uniform(0.2, 0.4), 0).astype(np.float32)
    n = rng.poisson(size * size / 1500)  # candidate centres; kept where they fit inside a cell
    centres, axes = rng.integers(0, size, (n, 2)), rng.integers((4, 3), (10, 7), (n, 2))
    for (cy, cx), (a, b) in zip(centres, axes):
        if inner[cy, cx] > a + 3:
            angle = float(rng.uniform(0, 180))
            cv2.ellipse(dark, (int(cx), int(cy)), (int(a), int(b)), angle, 0, 360, 0.55, -1)
            cv2.ellipse(dark, (int(cx), int(cy)), (int(a), int(b)), angle, 0, 360, 1.0, 1)
    for cy, cx, r in rng.integers((0, 0, 1), (size, size, 4), (rng.poisson(size * size / 200), 3)):
        cv2.circle(dark, (int(cx), int(cy)), int(r), 1.0, -1 if r < 3 else 2)
    dark[inner < 3] = 0  # never touch a membrane
    dark += rng.random(shape, np.float32) < 0.04  # fine dark specks everywhere
    img -= 60 * cv2.GaussianBlur(dark, (0, 0), 0.6)
    # Grain, uneven illumination (section thickness) and camera noise.
    img += 10 * _smooth_noise(rng, shape, 1.5) + 10 * _smooth_noise(rng, shape, size / 2)
    img += rng.uniform(4, 8) * rng.standard_normal(shape, np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), mask


def generate_lesion_sample(rng: np.random.Generator,
                           size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One dermoscopy-like sample: (uint8 RGB image HxWx3, uint8 mask HxW; 255 lesion)."""
    shape = (size, size)
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size - 0.5  # -0.5..0.5
    # Skin: base tone, gentle illumination gradient, vignetting and mottled texture.
    skin = rng.uniform((200, 150, 120), (235, 185, 160)).astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    light = 1 + rng.uniform(0.1, 0.3) * (math.cos(angle) * xx + math.sin(angle) * yy)
    light *= 1 - rng.uniform(0.5, 1.0) * (xx * xx + yy * yy)
    mottle = 0.04 * _smooth_noise(rng, shape, size / 12) + 0.015 * _smooth_noise(rng, shape, 2)
    img = skin * (light * (1 + mottle))[..., None]

    # Lesion: star-shaped blob whose radius is a random Fourier series in the angle.
    cy, cx = (float(v) for v in rng.uniform(-0.12, 0.12, 2))
    rho = np.hypot(yy - cy, xx - cx)
    turns = np.linspace(0, 2 * np.pi, 1024, endpoint=False)
    outline = np.ones(1024)
    for k in range(2, 13):
        outline += rng.uniform(0, 0.5) / k ** 1.5 * np.cos(k * turns + rng.uniform(0, 2 * np.pi))
    outline = (outline * rng.uniform(0.15, 0.3)).astype(np.float32)
    theta = np.arctan2(yy - cy, xx - cx)
    radius = outline[(theta * (1024 / (2 * np.pi))).astype(np.int32) % 1024]
    mask = np.where(rho < radius, 255, 0).astype(np.uint8)
    rel = np.minimum(rho / radius, 1)  # 0 at the centre, 1 on the border
    colour = rng.uniform((110, 65, 40), (160, 100, 70)).astype(np.float32)
    texture = 1 + 0.12 * _smooth_noise(rng, shape, size / 30) + 0.05 * _smooth_noise(rng, shape, 2)
    shade = (1 - rng.uniform(0.3, 0.55) * (1 - rel * rel)) * texture * light
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), size / 200)[..., None]
    img += alpha * (colour * shade[..., None] - img)

    # Hairs: a few thin dark curves crossing everything (not lesion in the mask).
    hairs = np.zeros(shape, np.float32)
    t = np.linspace(0, 1, 64)[:, None]
    for _ in range(rng.integers(1, 6)):
        p0, p1, p2 = rng.uniform(-0.2, 1.2, (3, 2)) * size
        curve = (1 - t) ** 2 * p0 + 2 * t * (1 - t) * p2 + t ** 2 * p1
        points = [np.round(curve).astype(np.int32)]
        cv2.polylines(hairs, points, False, 1.0, 1 + size // 384, cv2.LINE_AA)
    hairs = (np.minimum(hairs, 1) * rng.uniform(0.7, 0.95))[..., None]
    img += hairs * (np.array([45, 32, 25], np.float32) - img)
    img = cv2.GaussianBlur(img, (0, 0), 0.6) + 3 * rng.standard_normal(img.shape, np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), mask


_GENERATORS = {"em": generate_em_sample, "lesion": generate_lesion_sample}


def generate_sample(flavour: str, seed: int, index: int,
                    size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``index`` of the ``flavour`` dataset for ``seed``; same arguments, same arrays."""
    if flavour not in _GENERATORS:
        raise ValueError(f"unknown demo flavour {flavour!r}; choose one of: {', '.join(FLAVOURS)}")
    return _GENERATORS[flavour](np.random.default_rng([seed, index]), size)


def _validate(flavour: str, count: int, size: int, val_fraction: float, seed: int) -> None:
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown demo flavour {flavour!r}; choose one of: {', '.join(FLAVOURS)}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an integer >= 1, got {count!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 32 <= size <= 4096:
        raise ValueError(f"size must be an integer from 32 to 4096, got {size!r}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be at least 0 and below 1, got {val_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


def write_demo_dataset(directory: str | os.PathLike, *, flavour: str = "em", count: int = 24,
                       size: int = 256, val_fraction: float = 0.2, seed: int = 0) -> Path:
    """Write a demo dataset (``train``/``val`` with ``images``/``masks``) to a new ``directory``.

    Never overwrites: a non-empty ``directory`` raises :class:`FileExistsError`. The dataset is
    built in a temporary sibling folder and renamed into place, so no half dataset is left.
    """
    _validate(flavour, count, size, val_fraction, seed)
    target = Path(directory).expanduser().absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} already exists and is not an empty folder; "
                              "choose a new one")
    target.parent.mkdir(parents=True, exist_ok=True)
    n_val = min(count - 1, max(1, round(count * val_fraction))) if val_fraction > 0 else 0
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        for index in range(count):
            split = "val" if index >= count - n_val else "train"
            image, mask = generate_sample(flavour, seed, index, size)
            name = f"{flavour}_{index:03d}.png"
            for kind, array in (("images", image), ("masks", mask)):
                (tmp / split / kind).mkdir(parents=True, exist_ok=True)
                write_image(tmp / split / kind / name, array)
        meaning = ("255 = cell interior, 0 = membrane" if flavour == "em"
                   else "255 = lesion, 0 = skin (background)")
        atomic_write_text(tmp / "README.txt", (
            "Synthetic SegStudio demo data (generated, not real images).\n"
            f"flavour: {flavour}\nseed: {seed}\n"
            f"count: {count} ({count - n_val} train, {n_val} val)\n"
            f"size: {size}x{size} pixels\nmasks: {meaning}\n"))
        if target.exists():
            target.rmdir()  # empty (checked above); rename cannot replace a folder everywhere
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
