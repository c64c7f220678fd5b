"""Per-sample and per-dataset statistics: sizes, channels, class balance, intensities."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .arrays import dtype_range


@dataclass(frozen=True)
class SampleStats:
    name: str
    split: str
    height: int
    width: int
    channels: int
    dtype: str
    class_fractions: tuple[float, ...]  # fraction of pixels per class
    mean: tuple[float, ...]  # per channel, in the file's units
    std: tuple[float, ...]

    @property
    def foreground_fraction(self) -> float:
        """Fraction of pixels not in class 0."""
        return 1.0 - self.class_fractions[0]


@dataclass(frozen=True)
class DatasetStats:
    count: int
    split_counts: dict[str, int]
    num_classes: int
    label_mapping: str
    class_fractions: tuple[float, ...]  # over all pixels of all samples
    min_size: tuple[int, int]  # (height, width) of the smallest image by area
    max_size: tuple[int, int]  # ... and of the largest
    channels: tuple[int, ...]  # distinct channel counts
    dtypes: tuple[str, ...]
    # Normalisation, from the training split: per channel, in the file's units and in [0, 1] units.
    intensity_mean: tuple[float, ...]
    intensity_std: tuple[float, ...]
    normalised_mean: tuple[float, ...]
    normalised_std: tuple[float, ...]
    samples: tuple[SampleStats, ...]

    @property
    def float_data(self) -> bool:
        """True for floating-point images, whose "full range" (and so the scaled figures) means nothing."""
        return any(np.dtype(d).kind == "f" for d in self.dtypes)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["samples"] = [asdict(s) for s in self.samples]
        return data


def sample_stats(sample, num_classes: int) -> SampleStats:
    """Statistics of one :class:`~app.core.dataset.Sample`."""
    pixels = sample.mask.size
    counts = np.bincount(sample.mask.ravel(), minlength=num_classes)[:num_classes]
    flat = sample.image.reshape(-1, sample.image.shape[2]).astype(np.float64)
    return SampleStats(
        name=sample.name,
        split=sample.split,
        height=sample.image.shape[0],
        width=sample.image.shape[1],
        channels=sample.image.shape[2],
        dtype=str(sample.image.dtype),
        class_fractions=tuple(float(c) / pixels for c in counts),
        mean=tuple(float(v) for v in flat.mean(axis=0)),
        std=tuple(float(v) for v in flat.std(axis=0)),
    )


def _pooled(stats: list[SampleStats]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Pooled mean and standard deviation over samples of equal channel count."""
    weights = np.array([s.height * s.width for s in stats], dtype=np.float64)
    means = np.array([s.mean for s in stats])
    variances = np.array([s.std for s in stats]) ** 2
    mean = (weights[:, None] * means).sum(0) / weights.sum()
    var = (weights[:, None] * (variances + means**2)).sum(0) / weights.sum() - mean**2
    return tuple(float(v) for v in mean), tuple(float(v) for v in np.sqrt(np.maximum(var, 0.0)))


def dataset_stats(dataset) -> DatasetStats:
    """Statistics of a whole :class:`~app.core.dataset.Dataset`."""
    per_sample = [sample_stats(s, dataset.num_classes) for s in dataset.samples]
    if not per_sample:
        empty: tuple = ()
        return DatasetStats(0, dataset.split_counts(), dataset.num_classes, "no masks read",
                            (0.0,) * dataset.num_classes, (0, 0), (0, 0), empty, empty,
                            empty, empty, empty, empty, empty)
    pixels = np.array([s.height * s.width for s in per_sample], dtype=np.float64)
    fractions = np.array([s.class_fractions for s in per_sample])
    class_fractions = tuple(float(v) for v in (pixels[:, None] * fractions).sum(0) / pixels.sum())

    # Normalisation statistics come from the training split (falling back to all samples),
    # restricted to the most common channel count.
    pool = [s for s in per_sample if s.split == "train"] or per_sample
    channel_counts = [s.channels for s in pool]
    common = max(set(channel_counts), key=channel_counts.count)
    pool = [s for s in pool if s.channels == common]
    mean, std = _pooled(pool)
    scale = max(dtype_range(np.dtype(s.dtype))[1] for s in pool)
    by_area = sorted(per_sample, key=lambda s: (s.height * s.width, s.height, s.width))
    smallest, largest = by_area[0], by_area[-1]  # real image sizes, not the least width with the least height
    return DatasetStats(
        count=len(per_sample),
        split_counts=dataset.split_counts(),
        num_classes=dataset.num_classes,
        label_mapping=dataset.labels.describe(),
        class_fractions=class_fractions,
        min_size=(smallest.height, smallest.width),
        max_size=(largest.height, largest.width),
        channels=tuple(sorted({s.channels for s in per_sample})),
        dtypes=tuple(sorted({s.dtype for s in per_sample})),
        intensity_mean=mean,
        intensity_std=std,
        normalised_mean=tuple(v / scale for v in mean),
        normalised_std=tuple(v / scale for v in std),
        samples=tuple(per_sample),
    )
