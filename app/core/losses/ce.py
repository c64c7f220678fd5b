"""Pixel-wise softmax cross-entropy, plain (``ce``) and with the U-Net weight map (``weighted_ce``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import SegLoss, class_counts, inverse_frequency, one_hot, two_class, weighted_mean
from .options import CLASS_WEIGHTS



class CrossEntropyLoss(SegLoss):
    """Softmax cross-entropy; C == 1 is the binary (sigmoid) form. Mean Σw·c·ce / Σw·c where w is the
    per-pixel weight and c the target's class weight (PyTorch's convention).

    ``class_weights``: "none", "balanced" (inverse class frequency of the batch's target over pixels
    with w > 0, mean 1 over present classes) or an explicit list, one per class ([bg, fg] for C == 1).
    """

    def __init__(self, class_weights: str | Sequence[float] = "none"):
        super().__init__()
        if isinstance(class_weights, str):
            if class_weights not in CLASS_WEIGHTS:
                raise ValueError(f"class_weights must be one of {CLASS_WEIGHTS} or a list, got {class_weights!r}")
            self.mode, fixed = class_weights, None
        else:
            self.mode, fixed = "list", torch.as_tensor(class_weights, dtype=torch.float32).flatten()
            if fixed.numel() == 0 or bool((fixed < 0).any()) or not bool(torch.isfinite(fixed).all()):
                raise ValueError(f"class_weights must be finite, non-negative numbers, got {class_weights!r}")
        self.register_buffer("fixed", fixed, persistent=False)

    def terms(self, logits: Tensor, target: Tensor, weight: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Per-pixel cross-entropy and the effective per-pixel weight (None: all ones)."""
        logits = two_class(logits)
        classes = logits.shape[1]
        hot = one_hot(target, classes)  # also validates the class indices
        ce = F.cross_entropy(logits, target, reduction="none")
        if self.mode == "none":
            return ce, weight
        if self.mode == "balanced":
            cw = inverse_frequency(class_counts(hot, weight), fill_absent=False)
        else:
            if self.fixed.numel() != classes:
                raise ValueError(f"class_weights has {self.fixed.numel()} values for {classes} classes")
            cw = self.fixed.to(logits.device)
        pixel = cw[target]
        return ce, pixel if weight is None else weight * pixel

    def compute(self, logits: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
        return weighted_mean(*self.terms(logits, target, weight))


class WeightedCrossEntropyLoss(CrossEntropyLoss):
    """Cross-entropy weighted by a required per-pixel weight map (U-Net border weights).

    ``normalise``: "weights" → Σw·ce / Σw; "pixels" → Σw·ce / (number of pixels with w > 0).
    """

    def __init__(self, normalise: str = "weights", class_weights: str | Sequence[float] = "none"):
        super().__init__(class_weights)
        if normalise not in ("weights", "pixels"):
            raise ValueError(f"normalise must be 'weights' or 'pixels', got {normalise!r}")
        self.normalise = normalise

    def compute(self, logits: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
        if weight is None:
            raise ValueError("weighted_ce needs the per-pixel weight map: pass loss(logits, target, weight=w) "
                             "(e.g. the U-Net border weight map), or use 'ce'")
        ce, w = self.terms(logits, target, weight)
        if self.normalise == "weights":
            return weighted_mean(ce, w)
        return (w * ce).sum() / (weight > 0).sum().clamp_min(1)
