"""Loss versus predicted probability for one pixel: how each loss weighs easy and hard pixels.

For a foreground pixel (target 1) and a background pixel (target 0), each loss's value and its
derivative with respect to the pixel's predicted foreground probability p ∈ (0, 1), by autograd
through the real loss implementations (binary form: one sigmoid logit, logit(p)).

What "one pixel" means:

- Pixel-wise losses (``bce``, ``ce``, ``weighted_ce`` with weight 1, ``focal``, custom losses):
  a 1×1 image, so the value is the per-pixel term itself (BCE: −log p for a foreground pixel).
- Region losses (``dice``, ``jaccard``, ``tversky``, ``focal_tversky``): the pixel is one of an
  image of ``context`` pixels (default 8×8 = 64) whose other pixels are predicted perfectly
  (logits ±30, probabilities 0 and 1 to float precision); ``context // 2`` of those others are
  foreground. The value is that image's loss as the one pixel's p varies, so it depends on the
  image size: a region loss spreads over every pixel of the region.
- ``dice_ce``: λ_dice · (its Dice term, region convention) + λ_ce · (its cross-entropy term,
  1×1 convention).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

CASES = ("foreground", "background")  # target 1, target 0
PERFECT_LOGIT = 30.0


@dataclass
class PredictionCurves:
    """``value[k, c, i]`` and ``gradient[k, c, i]`` (d value / d p) of loss ``losses[k]`` for case
    ``CASES[c]`` (0 foreground, 1 background) at probability ``p[i]``."""

    p: np.ndarray
    losses: list[str]
    value: np.ndarray
    gradient: np.ndarray
    context: int

    def of(self, loss: str, case: str = "foreground") -> tuple[np.ndarray, np.ndarray]:
        k, c = self.losses.index(loss), CASES.index(case)
        return self.value[k, c], self.gradient[k, c]


def _is_region(loss: nn.Module) -> bool:
    from ..losses.base import OverlapLoss

    return isinstance(loss, OverlapLoss)


def _context_image(p: torch.Tensor, target: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits 1×1×1×context (the pixel first, the others perfect) and the target 1×1×context."""
    others = context - 1
    fg_others = context // 2
    truth = torch.zeros(others, dtype=torch.int64)
    truth[:fg_others] = 1
    perfect = torch.where(truth == 1, PERFECT_LOGIT, -PERFECT_LOGIT).to(torch.float64)
    pixel = (torch.log(p) - torch.log1p(-p)).reshape(1)
    logits = torch.cat([pixel, perfect]).reshape(1, 1, 1, context)
    targets = torch.cat([torch.tensor([target]), truth]).reshape(1, 1, context)
    return logits, targets


def _pixel_image(p: torch.Tensor, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.log(p) - torch.log1p(-p)).reshape(1, 1, 1, 1), torch.tensor([[[target]]])


def _value(loss: nn.Module, p: torch.Tensor, target: int, context: int) -> torch.Tensor:
    from ..losses.dice_ce import DiceCELoss

    def call(module, logits, targets):
        return module(logits, targets, torch.ones(targets.shape, dtype=torch.float32))

    if isinstance(loss, DiceCELoss):
        region = call(loss.dice, *_context_image(p, target, context))
        pixel = call(loss.ce, *_pixel_image(p, target))
        return loss.lambda_dice * region + loss.lambda_ce * pixel
    if _is_region(loss):
        return call(loss, *_context_image(p, target, context))
    return call(loss, *_pixel_image(p, target))


MAX_POINTS = 100_000  # a curve of more points shows nothing more, and each point is a forward and backward pass
MAX_CONTEXT = 16_777_216  # pixels in the region: a 4096² image


def probability_axis(points: int = 101, eps: float = 1e-3) -> np.ndarray:
    """``points`` probabilities from ``eps`` to 1 − ``eps`` (0.5 included for an odd count)."""
    if not 2 <= points <= MAX_POINTS:
        raise ValueError(f"points must be 2 to {MAX_POINTS:,}, got {points}")
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps}")
    return np.linspace(eps, 1 - eps, points)


def loss_vs_prediction(losses: Mapping[str, nn.Module], points: int = 101, *, eps: float = 1e-3,
                       context: int = 64) -> PredictionCurves:
    """Value and d/dp of every loss for a foreground and a background pixel (see the module doc).

    ``losses``: ``{label: loss module}`` (see :func:`~app.core.landscape.build_losses`)."""
    if not 2 <= context <= MAX_CONTEXT:
        raise ValueError(f"the region must be 2 to {MAX_CONTEXT:,} pixels, got {context}")
    grid = probability_axis(points, eps)
    value = np.zeros((len(losses), len(CASES), points))
    gradient = np.zeros_like(value)
    for k, loss in enumerate(losses.values()):
        loss = copy.deepcopy(loss).cpu()  # the caller's module stays where it is
        for c, target in enumerate((1, 0)):
            for i, prob in enumerate(grid):
                p = torch.tensor(float(prob), dtype=torch.float64, requires_grad=True)
                with torch.enable_grad():
                    out = _value(loss, p, target, context)
                    (grad,) = torch.autograd.grad(out, p)
                value[k, c, i] = float(out.detach())
                gradient[k, c, i] = float(grad)
    return PredictionCurves(grid, list(losses), value, gradient, context)
