"""Datasets: a list of samples (image, mask, name, source paths) plus a split.

:func:`load_dataset` never stops on a bad file: each unreadable or mismatched file is
recorded in :attr:`Dataset.problems` (file and reason) and its sample is left out. Only a
missing, empty or unrecognisable dataset raises :class:`DatasetError`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .arrays import as_hwc
from .imageio import ImageReadError, read_image, read_tiff_pages
from .masks import (DEFAULT_MAX_CLASSES, LabelMapping, apply_label_mapping, infer_label_mapping,
                    looks_soft, raw_label_values, unique_values)
from .pairing import SPLITS, DatasetError, PairSpec, Problem, discover

__all__ = ["Dataset", "DatasetError", "Problem", "Sample", "load_dataset", "random_split"]

ProgressCallback = Callable[[int, int], None]


@dataclass
class Sample:
    """One image with its mask. ``image`` is H×W×C in the file's dtype; ``mask`` holds class
    indices 0..C-1 (uint8, or uint16 beyond 256 classes)."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    image_path: Path
    mask_path: Path
    split: str = "train"
    page: int | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    @property
    def channels(self) -> int:
        return self.image.shape[2]


@dataclass
class Dataset:
    """Samples, their split, how mask values were read, and the problems found."""

    root: Path
    layout: str
    samples: list[Sample]
    labels: LabelMapping
    problems: list[Problem] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return self.labels.num_classes

    def split(self, name: str) -> list[Sample]:
        """The samples of one split (``train``, ``val`` or ``test``)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
        return [s for s in self.samples if s.split == name]

    def split_counts(self) -> dict[str, int]:
        return {name: sum(s.split == name for s in self.samples) for name in SPLITS}

    def assign_splits(self, splits: Mapping[str, str]) -> None:
        """Set the split of the named samples (e.g. from the GUI or an experiment config)."""
        by_name = {s.name: s for s in self.samples}
        for name, split in splits.items():
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r} for {name!r}; valid: {', '.join(SPLITS)}")
            if name not in by_name:
                raise KeyError(f"no sample named {name!r} in {self.root}")
            by_name[name].split = split
        self.__dict__.pop("stats", None)

    @cached_property
    def stats(self):
        """Per-sample and per-dataset statistics (:class:`~app.core.stats.DatasetStats`)."""
        from .stats import dataset_stats

        return dataset_stats(self)


@dataclass
class _RawSample:
    spec: PairSpec
    image: np.ndarray
    labels: np.ndarray
    values: np.ndarray
    soft: bool  # a binary mask with blurred edges (masks.looks_soft)


def _read_one(spec: PairSpec, pages: dict, max_classes: int) -> _RawSample | Problem:
    try:
        if spec.page is None:
            image = read_image(spec.image_path)
            mask = read_image(spec.mask_path, keep_palette=True)
        else:
            image, mask = pages[spec.image_path][spec.page], pages[spec.mask_path][spec.page]
            for item in (image, mask):
                if isinstance(item, ImageReadError):
                    raise item
    except ImageReadError as exc:
        return Problem(exc.path, exc.reason)
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        where_image = spec.image_path if spec.page is None else Path(f"{spec.image_path}#page{spec.page}")
        bad = int(image.size - np.count_nonzero(np.isfinite(image)))
        return Problem(where_image, f"{bad} pixel(s) are NaN or infinite (no loss can be computed on them); "
                                    "fill them or mask them out; left out")
    where = spec.mask_path if spec.page is None else Path(f"{spec.mask_path}#page{spec.page}")
    if image.shape[:2] != mask.shape[:2]:
        return Problem(where, f"mask is {mask.shape[1]}×{mask.shape[0]} but its image "
                              f"{spec.image_path.name} is {image.shape[1]}×{image.shape[0]}; left out")
    try:
        labels = raw_label_values(mask)
    except ValueError as exc:
        return Problem(where, f"{exc}; left out")
    values = unique_values(labels)
    soft = looks_soft(labels, values)
    if len(values) > max_classes and not soft:
        return Problem(where, f"mask has {len(values)} distinct values, more than a label map of at most "
                              f"{max_classes} classes can mean (a photo?); left out")
    return _RawSample(spec, as_hwc(image), labels, values, soft)


def _one_channel_count(raw: list[_RawSample], root: Path, problems: list[Problem]) -> list[_RawSample]:
    """Give every image the most common channel count: grayscale saved as RGB (three equal
    channels) becomes grayscale, grayscale among colour images is repeated into three
    channels, as prediction does; other images are left out, named (a model takes one kind)."""
    if len({r.image.shape[2] for r in raw}) < 2:
        return raw

    def grey(image: np.ndarray) -> bool:
        return image.shape[2] == 3 and all(np.array_equal(image[:, :, 0], image[:, :, c]) for c in (1, 2))

    kinds = Counter(1 if grey(r.image) else r.image.shape[2] for r in raw)  # grayscale saved as RGB counts as 1
    common = max(kinds, key=lambda c: (kinds[c], c))
    kept, converted = [], 0
    for r in raw:
        image, channels = r.image, r.image.shape[2]
        if channels != common:
            if common == 1 and grey(image):
                r.image, converted = np.ascontiguousarray(image[:, :, :1]), converted + 1
            elif common == 3 and channels == 1:
                r.image, converted = np.repeat(image, 3, axis=2), converted + 1
            else:
                where = r.spec.image_path if r.spec.page is None else Path(f"{r.spec.image_path}#page{r.spec.page}")
                problems.append(Problem(where, f"has {channels} channels but most images have {common}; a model "
                                               f"takes one kind; left out"))
                continue
        kept.append(r)
    if converted:
        kind = "grayscale saved as RGB read as grayscale" if common == 1 else "grayscale read as RGB"
        problems.append(Problem(root, f"{converted} image(s) of {len(raw)}: {kind}, like the others"))
    return kept


def random_split(names: list[str], val_fraction: float, seed: int) -> dict[str, str]:
    """Seeded train/val split of ``names``; the same names, fraction and seed give the same split.

    At least one validation sample when there are two or more samples and the fraction is > 0.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ordered = sorted(names)
    n_val = int(round(len(ordered) * val_fraction))
    if val_fraction > 0 and len(ordered) >= 2:
        n_val = min(max(n_val, 1), len(ordered) - 1)
    order = np.random.default_rng(seed).permutation(len(ordered))
    val = {ordered[i] for i in order[:n_val]}
    return {name: ("val" if name in val else "train") for name in ordered}


def load_dataset(
    source: str | os.PathLike | tuple,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    mask_mode: str = "auto",
    max_classes: int = DEFAULT_MAX_CLASSES,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> Dataset:
    """Load a dataset from a folder, or from ``(image_stack, label_stack)`` TIFF paths.

    A folder with ``train/``/``val/``[/``test/``] keeps that split; otherwise samples get a
    seeded random split with ``val_fraction`` of them in ``val``. ``progress(done, total)`` is
    called as files are read, at most once per percent (from worker threads).
    """
    problems: list[Problem] = []
    layout, root, specs = discover(source, problems)

    pages: dict[Path, list] = {}
    for path in {s.image_path for s in specs if s.page is not None} | {s.mask_path for s in specs if s.page is not None}:
        try:
            pages[path], _ = read_tiff_pages(path)
        except ImageReadError as exc:
            raise DatasetError(str(exc)) from None

    total, done = len(specs), 0
    workers = workers or min(8, os.cpu_count() or 1)
    results: list[_RawSample | Problem] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(lambda spec: _read_one(spec, pages, max_classes), specs):
            results.append(result)
            done += 1
            if progress is not None and (done == total or done * 100 // total != (done - 1) * 100 // total):
                progress(done, total)  # at most once a percent: each call is a GUI update

    raw = [r for r in results if isinstance(r, _RawSample)]
    problems.extend(r for r in results if isinstance(r, Problem))
    raw = _one_channel_count(raw, root, problems)
    mapping = infer_label_mapping([r.values for r in raw], mode=mask_mode, max_classes=max_classes,
                                  soft=[r.soft for r in raw])
    if mapping.note:
        problems.append(Problem(root, mapping.note))

    samples = [
        Sample(r.spec.name, r.image, apply_label_mapping(r.labels, mapping), r.spec.image_path,
               r.spec.mask_path, r.spec.split or "train", r.spec.page)
        for r in raw
    ]
    seen: dict[str, int] = {}
    for s in samples:  # the same stem may appear in two split folders
        seen[s.name] = seen.get(s.name, 0) + 1
    for s in samples:
        if seen[s.name] > 1:
            s.name = f"{s.split}/{s.name}"
    if layout != "split-folders":
        unsplit = [s.name for s in samples]
    elif not any(s.split == "val" for s in samples):  # train/ (and test/) only: val comes from train
        unsplit = [s.name for s in samples if s.split == "train"]
    else:
        unsplit = []
    if unsplit:
        assignment = random_split(unsplit, val_fraction, seed)
        for s in samples:
            s.split = assignment.get(s.name, s.split)
    return Dataset(root, layout, samples, mapping, problems)
