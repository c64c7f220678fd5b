"""Binary cross-entropy on the foreground logit."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import SegLoss, one_hot, weighted_mean


def foreground_logit(logits: Tensor) -> Tensor:
    """N×H×W foreground logit: the logit itself for C == 1, l₁ − l₀ for C == 2 (same probability)."""
    if logits.shape[1] == 1:
        return logits[:, 0]
    if logits.shape[1] == 2:
        return logits[:, 1] - logits[:, 0]
    raise ValueError(f"binary losses take 1 or 2 logit channels, got {logits.shape[1]}; "
                     "use 'ce' or 'focal' for more classes")


class BinaryCrossEntropyLoss(SegLoss):
    """BCE with logits on the foreground logit; equals 2-class softmax CE when ``pos_weight`` = 1.
    Mean Σw·bce / Σw."""

    def __init__(self, pos_weight: float = 1.0):
        super().__init__()
        if not pos_weight > 0:
            raise ValueError(f"pos_weight must be > 0, got {pos_weight}")
        self.pos_weight = float(pos_weight)

    def compute(self, logits: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
        x = foreground_logit(logits)
        g = one_hot(target, 1)[:, 0]
        pos = torch.tensor(self.pos_weight, device=x.device)
        bce = F.binary_cross_entropy_with_logits(x, g, pos_weight=pos, reduction="none")
        return weighted_mean(bce, weight)
