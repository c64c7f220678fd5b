"""Training patches: the experiment's augmentation pipeline plus a crop to the patch size,
normalised, with a per-pixel loss weight (0 on padding, optionally the U-Net border map).

The sample order and pipeline come from :mod:`app.core.patch_plan`, which the GUI's augmentation
preview uses too with the same
``(epoch, index)`` key, so the preview is exactly what training sees.
"""

from __future__ import annotations


import numpy as np
import torch

from ..arrays import dtype_range
from ..config import ExperimentConfig
from ..dataset import Sample
from ..patch_plan import epoch_order, training_pipeline
from ..patch_plan import patches_per_epoch as default_length
from ..weight_map import unet_weight_map


class Normaliser:
    """Maps raw intensities to network input: (x − mean) / std per channel."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.maximum(np.asarray(std, dtype=np.float32), 1e-6)

    @classmethod
    def for_dataset(cls, mode: str, stats, dtype: np.dtype) -> "Normaliser":
        if mode == "dataset" and stats.intensity_mean:
            return cls(stats.intensity_mean, stats.intensity_std)
        if mode == "none":
            return cls(0.0, 1.0)
        scale = dtype_range(dtype)[1]
        return cls(0.0, scale)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        out = image.astype(np.float32)
        out -= self.mean
        out /= self.std
        return out

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}


class PatchDataset(torch.utils.data.Dataset):
    """Augmented, normalised training patches; item ``i`` of epoch ``e`` is deterministic.

    Item ``i`` comes from sample ``order[i % n]`` with augmentation key ``(e, i)``; the order is
    a seeded shuffle per epoch. Returns ``(image C×P×P float32, mask P×P int64, weight P×P float32)``.
    """

    def __init__(self, samples: list[Sample], config: ExperimentConfig, normaliser: Normaliser,
                 patches_per_epoch: int | None = None):
        if not samples:
            raise ValueError("no training samples")
        self.samples = samples
        self.pipeline = training_pipeline(config, samples)
        self.normaliser = normaliser
        self.seed = config.training.seed
        self.loss_cfg = config.loss
        self.set_epoch(0)
        self.length = patches_per_epoch or default_length(samples, config.data.patch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._order = epoch_order(self.seed, epoch, len(self.samples))

    def __len__(self) -> int:
        return self.length

    def sample_for(self, index: int) -> Sample:
        return self.samples[int(self._order[index % len(self.samples)])]

    def __getitem__(self, index: int):
        sample = self.sample_for(index)
        out = self.pipeline(sample.image, sample.mask, key=(self.epoch, index))
        weight = np.ones(out.mask.shape, np.float32) if out.valid is None else out.valid.astype(np.float32)
        if self.loss_cfg.weight_map:
            weight *= unet_weight_map(out.mask, w0=self.loss_cfg.weight_map_w0, sigma=self.loss_cfg.weight_map_sigma)
        image = np.ascontiguousarray(self.normaliser(out.image).transpose(2, 0, 1))
        return torch.from_numpy(image), torch.from_numpy(out.mask.astype(np.int64)), torch.from_numpy(weight)


VALIDATION_WEIGHT_BUDGET = 256 * 2**20  # bytes of validation weight maps kept between epochs


class ValidationWeights:
    """The per-pixel weight of each validation image's loss, as training weighs its patches: the
    U-Net border weight map when the experiment uses it, else ones (the same loss as no weight, and
    what ``weighted_ce`` needs). Maps are computed once per image while they fit in ``budget``
    bytes, and again at each validation beyond it."""

    def __init__(self, config: ExperimentConfig, budget: int = VALIDATION_WEIGHT_BUDGET):
        self.loss_cfg = config.loss
        self.budget = budget
        self._kept: dict[int, torch.Tensor] = {}
        self._kept_bytes = 0

    def __call__(self, index: int, mask: np.ndarray) -> torch.Tensor:
        """The 1×H×W float32 weight of validation image ``index`` with ``mask``."""
        if not self.loss_cfg.weight_map:
            return torch.ones((1, *mask.shape[:2]), dtype=torch.float32)
        if index in self._kept:
            return self._kept[index]
        weight = torch.from_numpy(unet_weight_map(mask, w0=self.loss_cfg.weight_map_w0,
                                                  sigma=self.loss_cfg.weight_map_sigma).astype(np.float32))[None]
        if self._kept_bytes + weight.numel() * 4 <= self.budget:
            self._kept[index] = weight
            self._kept_bytes += weight.numel() * 4
        return weight
