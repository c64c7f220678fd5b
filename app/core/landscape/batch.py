"""The fixed batch of validation images a loss landscape is evaluated on (built once, reused
for every grid point)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..config import ExperimentConfig
from ..dataset import Dataset


@dataclass
class LandscapeBatch:
    """Network input and loss targets, exactly as training forms them.

    ``images`` N×C×H×W float32 (normalised), ``targets`` N×H×W int64 class indices, ``weights``
    N×H×W float32: the per-pixel weight training passes to the loss (0 on padding, times the
    U-Net border map when the experiment trains with it). ``weight_map`` (optional): valid × the
    border map, for ``weighted_ce`` when the experiment itself does not use the map.
    """

    images: Tensor
    targets: Tensor
    weights: Tensor
    names: list[str] = field(default_factory=list)
    split: str = "val"
    weight_map: Tensor | None = None
    asked_patch: int | None = None  # a patch larger than every image, cut down to them (fixed_batch)

    def __post_init__(self):
        n, _, h, w = self.images.shape
        for label, t in (("targets", self.targets), ("weights", self.weights), ("weight_map", self.weight_map)):
            if t is not None and tuple(t.shape) != (n, h, w):
                raise ValueError(f"{label} must be {n}×{h}×{w} to match the images, got {tuple(t.shape)}")

    @property
    def count(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def to(self, device) -> "LandscapeBatch":
        move = (lambda t: None if t is None else t.to(device))
        return LandscapeBatch(move(self.images), move(self.targets), move(self.weights), list(self.names),
                              self.split, move(self.weight_map), self.asked_patch)

    def describe(self) -> str:
        h, w = self.size
        cut = f"; patch {self.asked_patch} cut to the largest image" if self.asked_patch else ""
        return f"{self.count} {self.split} image{'s' * (self.count != 1)} ({h}×{w}{cut})"


def _center_crop(size: tuple[int, int], image: np.ndarray, mask: np.ndarray):
    """Centre crop (mirror-padding smaller images, padding marked invalid) as training's crop does."""
    from ..augment import Pipeline
    from ..augment.geometric import Crop

    out = Pipeline([Crop(p=1.0, size=size, position="center")])(image, mask)
    valid = np.ones(out.mask.shape, bool) if out.valid is None else out.valid
    return out.image, out.mask, valid


def fixed_batch(config: ExperimentConfig, data: str | os.PathLike | Dataset | tuple | None = None,
                count: int = 4, patch: int | None = None, seed: int = 0, *, normaliser=None,
                weight_map: bool | None = None, split: str = "val") -> LandscapeBatch:
    """``count`` images of the experiment's validation split, normalised as training does.

    ``data``: a dataset folder (split with the experiment's settings, as training did), a loaded
    :class:`~app.core.dataset.Dataset`, or None for the experiment's own data. With more images
    than ``count`` in the split, a seeded choice (``seed``) in file order; a split without images
    falls back to ``test``, then ``train`` (the batch's ``split`` says which).
    ``patch``: the centre ``patch``×``patch`` crop of each image (smaller images mirror-padded,
    the padding weighted 0; a patch larger than every image is cut to the largest side); None:
    whole images (of different sizes: each centre-cropped to the smallest common height and width).
    ``normaliser``: the checkpoint's (pass it when you have it); None computes it from the dataset
    as training does. ``weight_map``: also build the U-Net border weight map (None: only when the
    experiment trains with it).
    """
    from ..experiment_data import load_experiment_data
    from ..training.data import Normaliser
    from ..weight_map import unet_weight_map

    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if patch is not None and patch < 1:
        raise ValueError(f"patch must be a positive size or None (whole images), got {patch}")
    dataset = data if isinstance(data, Dataset) else load_experiment_data(
        config, None if data is None else (data if isinstance(data, tuple) else Path(data)))
    samples, used = [], split
    for name in dict.fromkeys((split, "test", "train")):
        samples = dataset.split(name)
        if samples:
            used = name
            break
    if not samples:
        raise ValueError(f"{dataset.root}: no images to evaluate the landscape on")
    if len(samples) > count:
        chosen = np.sort(np.random.default_rng([int(seed), 11]).choice(len(samples), count, replace=False))
        samples = [samples[int(i)] for i in chosen]
    if normaliser is None:
        normaliser = Normaliser.for_dataset(config.data.normalisation, dataset.stats, samples[0].image.dtype)
    asked = None
    if patch is None:
        size = (min(s.shape[0] for s in samples), min(s.shape[1] for s in samples))
    else:
        largest = max(max(s.shape) for s in samples)
        if patch > largest:  # the rest would be padding, weighted 0: the same loss at many times the work
            asked, patch = int(patch), largest
        size = (int(patch), int(patch))
    use_map = config.loss.weight_map if weight_map is None else (weight_map or config.loss.weight_map)
    images, targets, weights, maps = [], [], [], []
    for sample in samples:
        image, mask, valid = _center_crop(size, sample.image, sample.mask)
        images.append(normaliser(image).transpose(2, 0, 1))
        targets.append(mask.astype(np.int64))
        valid = valid.astype(np.float32)
        border = None
        if use_map:
            border = valid * unet_weight_map(mask, w0=config.loss.weight_map_w0, sigma=config.loss.weight_map_sigma)
            maps.append(border)
        weights.append(border if config.loss.weight_map else valid)
    return LandscapeBatch(torch.from_numpy(np.ascontiguousarray(np.stack(images))),
                          torch.from_numpy(np.stack(targets)), torch.from_numpy(np.stack(weights)),
                          [s.name for s in samples], used,
                          torch.from_numpy(np.stack(maps)) if maps else None, asked)
