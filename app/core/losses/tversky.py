"""Tversky loss (Salehi et al. 2017) and focal Tversky loss (Abraham & Khan 2019)."""

from __future__ import annotations

from torch import Tensor

from .base import OverlapLoss, soft_pow


class TverskyLoss(OverlapLoss):
    """1 − TI, TI = (TP + s′) / (TP + α·FP + β·FN + s′) with s′ = s·(α+β)/2.

    Scaling the smoothing by (α+β)/2 makes α = β = ½ exactly Dice and α = β = 1 exactly Jaccard with
    the same ``smooth`` s (MONAI's TverskyLoss with smooth_nr = smooth_dr = s′). α weighs false
    positives, β false negatives; α + β must be > 0. Other options as Dice.
    """

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, smooth: float = 1e-5,
                 include_background: bool = True, batch: bool = False, class_weighting: str = "none"):
        super().__init__(smooth, include_background, batch, class_weighting)
        if alpha < 0 or beta < 0 or alpha + beta <= 0:
            raise ValueError(f"tversky needs alpha, beta >= 0 and alpha + beta > 0, got {alpha}, {beta}")
        self.alpha, self.beta = float(alpha), float(beta)

    def per_class(self, tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
        s = self.smooth * (self.alpha + self.beta) / 2
        return 1 - (tp + s) / (tp + self.alpha * fp + self.beta * fn + s)


class FocalTverskyLoss(TverskyLoss):
    """(1 − TI)^γ per sample and class, then mean. γ is the exponent itself: Abraham & Khan write
    (1 − TI)^(1/γ′) with γ′ = 4/3, i.e. γ = 0.75 here (the default); γ = 1 is the Tversky loss."""

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, gamma: float = 0.75, smooth: float = 1e-5,
                 include_background: bool = True, batch: bool = False, class_weighting: str = "none"):
        super().__init__(alpha, beta, smooth, include_background, batch, class_weighting)
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)

    def per_class(self, tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
        return soft_pow(super().per_class(tp, fp, fn), self.gamma)
