"""Comparing several runs image by image on their shared validation images."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import numpy as np


@dataclass
class PerImageComparison:
    """Scores of several runs' checkpoints on the images of their shared split.

    ``images`` are sorted worst first (by the mean Dice over the runs, then by name); the score
    arrays are ``len(images) × len(runs)``, column j for ``runs[j]``. With ``keep_predictions``
    ``samples[i]`` holds image i (image and truth arrays) and ``predictions[i][j]`` run j's
    label map for it."""

    runs: list[Path]
    names: list[str]
    checkpoints: list[Path]
    split: str
    images: list[str]
    dice: "np.ndarray"
    iou: "np.ndarray"
    pixel_accuracy: "np.ndarray"
    problems: list[str] = field(default_factory=list)
    samples: list | None = None
    predictions: list[list["np.ndarray"]] | None = None

    @property
    def mean_dice(self) -> "np.ndarray":
        return self.dice.mean(axis=1)

    def rows(self) -> list[dict]:
        """One dict per image, worst first: ``image``, ``mean_dice`` and ``dice``/``iou`` per run name."""
        out = []
        for i, image in enumerate(self.images):
            row = {"image": image, "mean_dice": float(self.mean_dice[i])}
            for j, name in enumerate(self.names):
                row[f"{name} dice"] = float(self.dice[i, j])
                row[f"{name} iou"] = float(self.iou[i, j])
            out.append(row)
        return out

    def to_csv(self) -> str:
        rows = self.rows()
        buffer = io.StringIO()
        header = ["image", "mean_dice"] + [f"{n} {m}" for n in self.names for m in ("dice", "iou")]
        writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()


def _run_checkpoint(path: Path, problems: list[str]) -> Path:
    best, last = path / "checkpoints" / "best.pt", path / "checkpoints" / "last.pt"
    if best.is_file():
        return best
    if last.is_file():
        problems.append(f"{path.name}: no best.pt; compared its last.pt")
        return last
    raise ValueError(f"run {path.name} has no checkpoint (checkpoints/best.pt) to compare")


def _dataset_key(config, data_path) -> tuple:
    d = config.data
    source = data_path if data_path is not None else (
        (d.path, d.label_stack) if d.path and d.label_stack else d.path)
    if isinstance(source, tuple):
        where = tuple(str(Path(s).expanduser().resolve()) for s in source)
    else:
        where = str(Path(source).expanduser().resolve()) if source else None
    return where, d.val_fraction, d.split_seed, d.mask_mode, tuple(sorted(d.splits.items()))


def compare_per_image(run_paths: Sequence[str | os.PathLike], data_path: str | os.PathLike | None = None,
                      split: str = "val", device: str = "cpu", *,
                      progress: Callable[[int, int], None] | None = None,
                      should_stop: Callable[[], bool] | None = None,
                      keep_predictions: bool = False) -> PerImageComparison:
    """Per-image Dice, IoU and pixel accuracy of each run's best checkpoint (last.pt when a run
    has no best.pt, noted in ``problems``) on the ``split`` images the runs share.

    The dataset is each run's own (as trained: its data path, split seed and split overrides)
    unless ``data_path`` is given; runs trained on different data folders need a ``data_path``.
    Only images in ``split`` for every run are compared (images another run trained on would
    not be a fair test); the others are counted in ``problems``. ``progress(done, total)``
    after each prediction (total = runs × images); ``should_stop()`` is checked before each
    one, and ``True`` raises ``InterruptedError``. Raises ``ValueError`` for no runs, a run
    without a checkpoint, different datasets or no shared images."""
    import numpy as np

    from ..experiment_data import load_experiment_data
    from ..metrics import segmentation_scores
    from ..predictor import Predictor

    stop = should_stop or (lambda: False)
    paths = [Path(p) for p in run_paths]
    if not paths:
        raise ValueError("choose at least one run to compare")
    if len({p.resolve() for p in paths}) != len(paths):
        raise ValueError("the same run is chosen twice")
    problems: list[str] = []
    checkpoints = [_run_checkpoint(p, problems) for p in paths]
    predictors = []
    for checkpoint in checkpoints:
        if stop():
            raise InterruptedError("comparison stopped")
        predictors.append(Predictor.from_checkpoint(checkpoint, device))

    keys = [_dataset_key(p.config, data_path) for p in predictors]
    folders = {key[0] for key in keys}
    if len(folders) > 1:
        listed = "; ".join(f"{p.name}: {key[0] or 'demo data'}" for p, key in zip(paths, keys))
        raise ValueError(f"the runs were trained on different datasets ({listed}); choose one dataset to "
                         "compare them on")
    datasets: dict[tuple, object] = {}
    by_run: list[dict] = []
    for predictor, key in zip(predictors, keys):
        if stop():
            raise InterruptedError("comparison stopped")
        if key not in datasets:
            datasets[key] = load_experiment_data(predictor.config, data_path)
        by_run.append({s.name: s for s in datasets[key].split(split)})
    common = [name for name in by_run[0] if all(name in samples for samples in by_run[1:])]
    if not common:
        raise ValueError(f"the runs share no {split} images" if len(paths) > 1 else
                         f"run {paths[0].name} has no {split} images")
    for path, samples in zip(paths, by_run):
        left_out = len(samples) - len(common)
        if left_out:
            problems.append(f"{path.name}: {left_out} of its {len(samples)} {split} images are not {split} "
                            "images of every run; left out")

    shape = (len(common), len(paths))
    dice, iou, accuracy = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    predictions = [[None] * len(paths) for _ in common] if keep_predictions else None
    total, done = shape[0] * shape[1], 0
    for j, (predictor, samples) in enumerate(zip(predictors, by_run)):
        classes = max(2, predictor.num_classes)
        for i, name in enumerate(common):
            if stop():
                raise InterruptedError("comparison stopped")
            sample = samples[name]
            prediction = predictor.predict(sample.image, should_stop=stop)
            scores = segmentation_scores(prediction.labels, sample.mask, classes)
            dice[i, j], iou[i, j], accuracy[i, j] = scores.dice, scores.iou, scores.pixel_accuracy
            if predictions is not None:
                predictions[i][j] = prediction.labels
            done += 1
            if progress:
                progress(done, total)

    order = sorted(range(len(common)), key=lambda i: (float(dice[i].mean()), common[i]))
    return PerImageComparison(
        runs=paths, names=[p.name for p in paths], checkpoints=checkpoints, split=split,
        images=[common[i] for i in order], dice=dice[order], iou=iou[order], pixel_accuracy=accuracy[order],
        problems=problems, samples=[by_run[0][common[i]] for i in order] if keep_predictions else None,
        predictions=[predictions[i] for i in order] if predictions is not None else None)
