"""Soft Dice and soft Jaccard (IoU) losses."""

from __future__ import annotations

from torch import Tensor

from .base import OverlapLoss


class DiceLoss(OverlapLoss):
    """1 − (2·TP + s) / (2·TP + FP + FN + s) = 1 − (2Σpg + s) / (Σp + Σg + s), as MONAI's DiceLoss
    with smooth_nr = smooth_dr = s. ``batch``: sum over the batch before the ratio (else per sample,
    then mean). ``class_weighting`` "inverse_frequency": per-class losses weighted by 1/(class pixels
    in the batch), absent classes get the largest weight, weights mean 1."""

    def per_class(self, tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
        return 1 - (2 * tp + self.smooth) / (2 * tp + fp + fn + self.smooth)


class JaccardLoss(OverlapLoss):
    """Soft IoU: 1 − (Σpg + s) / (Σp + Σg − Σpg + s) (= MONAI's DiceLoss(jaccard=True) with smoothing 2s).
    Options as :class:`DiceLoss`."""

    def per_class(self, tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
        return 1 - (tp + self.smooth) / (tp + fp + fn + self.smooth)
