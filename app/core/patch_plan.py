"""Which augmented patch training draws for item ``i`` of epoch ``e`` (no torch here).

The training data set and the GUI's augmentation preview both use these, so the preview is
exactly what training sees: the same sample, the same pipeline, the same ``(epoch, index)`` key.
"""

from __future__ import annotations

import math

import numpy as np

from .augment import Pipeline
from .augment.base import Augmented
from .augment.geometric import Crop
from .augment.intensity import data_range, set_value_range
from .config import ExperimentConfig
from .dataset import Sample


def training_pipeline(config: ExperimentConfig, samples: list[Sample] | None = None) -> Pipeline:
    """The configured augmentation followed by a random crop to the patch size; given the
    training ``samples``, intensity amounts are fractions of their range (``data_range``)."""
    pipeline = Pipeline.from_dict(config.augmentation)
    if samples:
        set_value_range(pipeline.transforms, data_range([s.image for s in samples]))
    size = config.data.patch_size
    pipeline.transforms.append(Crop(p=1.0, size=(size, size), position="random"))
    return pipeline


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """The seeded shuffle of ``count`` training samples used in ``epoch``."""
    return np.random.default_rng([seed, epoch, 7]).permutation(count)


def patches_per_epoch(samples: list[Sample], patch_size: int) -> int:
    """One pass: enough patches to cover the training images' area once (at least one each)."""
    area = sum(s.shape[0] * s.shape[1] for s in samples)
    return max(len(samples), math.ceil(area / (patch_size * patch_size)))


def patches_in_epoch(config: ExperimentConfig, samples: list[Sample]) -> int:
    """The patches one training epoch draws: ``steps_per_epoch`` batches when set, else one pass."""
    steps = config.training.steps_per_epoch * config.training.batch_size
    if steps:
        return max(1, int(steps))
    return patches_per_epoch(samples, config.data.patch_size) if samples else 1


def training_patch(config: ExperimentConfig, samples: list[Sample], epoch: int, index: int,
                   pipeline: Pipeline | None = None) -> tuple[Sample, Augmented]:
    """The sample behind item ``index`` of ``epoch`` and its augmented patch, as training draws it."""
    if not samples:
        raise ValueError("no training samples")
    order = epoch_order(config.training.seed, epoch, len(samples))
    sample = samples[int(order[index % len(samples)])]
    pipeline = pipeline or training_pipeline(config, samples)
    return sample, pipeline(sample.image, sample.mask, key=(epoch, index))


def oversized_patch(samples: list[Sample], patch: int) -> str | None:
    """A warning when ``patch`` is larger than every training image: its patches are mostly
    padding (weighted 0), which costs time and teaches nothing; None otherwise."""
    if not samples or any(max(s.shape) >= patch for s in samples):
        return None
    side = max(max(s.shape) for s in samples)
    return (f"the patch size {patch} is larger than every training image (the largest side is {side} pixels): "
            f"patches are mostly padding, which costs time and teaches nothing; a patch size of {side} or less "
            "would do")
