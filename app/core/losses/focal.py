"""Focal loss (Lin et al. 2017)."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import SegLoss, one_hot, soft_pow, two_class, weighted_mean


class FocalLoss(SegLoss):
    """−α_t·(1−p_t)^γ·log p_t per pixel, mean Σw·fl / Σw.

    C == 1: sigmoid focal loss as MONAI's (α_t = α on foreground, 1−α on background). C >= 2: softmax
    focal loss, α_t = 1−α for class 0 and α for every other class (MONAI's scalar-α convention), summed
    over classes per pixel (MONAI's mean reduction also divides by C). γ = 0 without α is CE / BCE.
    """

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25, use_alpha: bool = True):
        super().__init__()
        if gamma < 0 or not 0 <= alpha <= 1:
            raise ValueError(f"need gamma >= 0 and 0 <= alpha <= 1, got gamma={gamma}, alpha={alpha}")
        self.gamma, self.alpha, self.use_alpha = float(gamma), float(alpha), use_alpha

    def compute(self, logits: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
        logits = two_class(logits)
        logp = (one_hot(target, logits.shape[1]) * logits.log_softmax(1)).sum(1)  # log p_t
        loss = -soft_pow(-torch.expm1(logp), self.gamma) * logp
        if self.use_alpha:
            loss = loss * torch.where(target == 0, 1.0 - self.alpha, self.alpha)
        return weighted_mean(loss, weight)
