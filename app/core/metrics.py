"""Segmentation metrics on NumPy label maps, per image and aggregated.

Overlap scores come from a confusion matrix; a class absent from both prediction and truth
scores 1 (perfect agreement), so empty images do not produce NaN. Instance quality uses
scikit-image's adapted Rand error and variation of information (the ISBI 2012 measures) on
connected components of the foreground.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# error_map codes
TRUE_NEGATIVE, TRUE_POSITIVE, FALSE_POSITIVE, FALSE_NEGATIVE = 0, 1, 2, 3
ERROR_COLOURS = np.array([[0, 0, 0], [0, 200, 0], [230, 40, 40], [40, 120, 255]], dtype=np.uint8)


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """C×C counts: rows are true classes, columns predicted classes."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and truth {target.shape} differ in shape")
    index = target.astype(np.int64).ravel() * num_classes + pred.astype(np.int64).ravel()
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.where(den > 0, num / np.maximum(den, 1), 1.0)


@dataclass(frozen=True)
class Scores:
    """Overlap scores. ``iou``/``dice``/``precision``/``recall`` are over the foreground
    classes (1..C-1, averaged); ``mean_iou`` averages every class including background."""

    pixel_accuracy: float
    iou: float
    dice: float
    precision: float
    recall: float
    mean_iou: float
    class_iou: tuple[float, ...]
    class_dice: tuple[float, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def scores_from_confusion(cm: np.ndarray) -> Scores:
    cm = cm.astype(np.float64)
    tp = np.diag(cm)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    iou = _ratio(tp, tp + fp + fn)
    dice = _ratio(2 * tp, 2 * tp + fp + fn)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    fg = slice(1, None) if len(tp) > 1 else slice(0, None)
    total = cm.sum()
    return Scores(
        pixel_accuracy=float(tp.sum() / total) if total else 1.0,
        iou=float(iou[fg].mean()), dice=float(dice[fg].mean()),
        precision=float(precision[fg].mean()), recall=float(recall[fg].mean()),
        mean_iou=float(iou.mean()),
        class_iou=tuple(float(v) for v in iou), class_dice=tuple(float(v) for v in dice),
    )


def segmentation_scores(pred: np.ndarray, target: np.ndarray, num_classes: int = 2) -> Scores:
    """Pixel accuracy, IoU, Dice, precision and recall of one prediction."""
    return scores_from_confusion(confusion_matrix(pred, target, num_classes))


def instance_labels(mask: np.ndarray, foreground: int | None = None, connectivity: int = 1) -> np.ndarray:
    """Connected components of the foreground (class ``foreground``, or every class > 0)."""
    binary = mask > 0 if foreground is None else mask == foreground
    from scipy import ndimage  # imported on first use: keeps start-up light

    structure = ndimage.generate_binary_structure(2, connectivity)
    labels, _ = ndimage.label(binary, structure=structure)
    return labels


def adapted_rand_error(pred_labels: np.ndarray, true_labels: np.ndarray) -> float:
    """ISBI 2012 adapted Rand error (0 = perfect) of two instance label maps; label 0 of the
    truth (the boundary/background) is ignored, so a truth with no object gives NaN (undefined:
    average with :func:`mean_defined`)."""
    from skimage.metrics import adapted_rand_error as _adapted_rand_error  # imported on first use

    if not np.any(true_labels):
        return float("nan")
    error, _, _ = _adapted_rand_error(true_labels.astype(np.int64), pred_labels.astype(np.int64))
    return float(error)


def mean_defined(values) -> float | None:
    """The mean of the finite values (an image without true objects has no Rand error), or None."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def foreground_rand_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Adapted Rand error of two masks' foregrounds (every class > 0), each taken as its
    connected components: the score of a prediction before any clean-up."""
    return adapted_rand_error(instance_labels(pred), instance_labels(truth))


def variation_of_information(pred_labels: np.ndarray, true_labels: np.ndarray) -> float:
    """Variation of information (split + merge entropies, 0 = perfect); truth label 0 ignored."""
    from skimage.metrics import variation_of_information as _variation_of_information

    split, merge = _variation_of_information(true_labels.astype(np.int64), pred_labels.astype(np.int64),
                                             ignore_labels=(0,))
    return float(split + merge)


def error_map(pred: np.ndarray, target: np.ndarray, positive: int = 1) -> np.ndarray:
    """Per-pixel TRUE_NEGATIVE / TRUE_POSITIVE / FALSE_POSITIVE / FALSE_NEGATIVE codes (uint8)
    for class ``positive``; colour it with ``ERROR_COLOURS[codes]``."""
    p, t = pred == positive, target == positive
    codes = np.zeros(pred.shape, dtype=np.uint8)
    codes[p & t] = TRUE_POSITIVE
    codes[p & ~t] = FALSE_POSITIVE
    codes[~p & t] = FALSE_NEGATIVE
    return codes


class ScoreAccumulator:
    """Aggregates images: ``micro`` pools every pixel, ``macro`` averages per-image scores."""

    def __init__(self, num_classes: int = 2):
        self.num_classes = num_classes
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.per_image: list[Scores] = []

    def add(self, pred: np.ndarray, target: np.ndarray) -> Scores:
        cm = confusion_matrix(pred, target, self.num_classes)
        self.confusion += cm
        scores = scores_from_confusion(cm)
        self.per_image.append(scores)
        return scores

    def micro(self) -> Scores:
        return scores_from_confusion(self.confusion)

    def macro(self) -> dict[str, float]:
        keys = ("pixel_accuracy", "iou", "dice", "precision", "recall", "mean_iou")
        return {k: float(np.mean([getattr(s, k) for s in self.per_image])) if self.per_image else float("nan")
                for k in keys}
