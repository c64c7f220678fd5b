"""Dice + cross-entropy compound loss."""

from __future__ import annotations

from torch import Tensor

from .base import SegLoss
from .ce import CrossEntropyLoss
from .dice import DiceLoss


class DiceCELoss(SegLoss):
    """λ_dice·Dice + λ_ce·CE (as MONAI's DiceCELoss; CE is BCE for C == 1). Dice options as
    :class:`DiceLoss`; the CE is unweighted by class. Both terms use the per-pixel weight."""

    def __init__(self, lambda_dice: float = 1.0, lambda_ce: float = 1.0, smooth: float = 1e-5,
                 include_background: bool = True, batch: bool = False, class_weighting: str = "none"):
        super().__init__()
        if lambda_dice < 0 or lambda_ce < 0 or lambda_dice + lambda_ce <= 0:
            raise ValueError(f"need lambda_dice, lambda_ce >= 0, not both 0; got {lambda_dice}, {lambda_ce}")
        self.lambda_dice, self.lambda_ce = float(lambda_dice), float(lambda_ce)
        self.dice = DiceLoss(smooth, include_background, batch, class_weighting)
        self.ce = CrossEntropyLoss()

    def compute(self, logits: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
        return (self.lambda_dice * self.dice.compute(logits, target, weight)
                + self.lambda_ce * self.ce.compute(logits, target, weight))
