"""Shared pieces of the segmentation losses.

Every loss is called as ``loss(logits, target, weight=None)``: ``logits`` float N×C×H×W (C == 1: one
foreground logit, sigmoid; C >= 2: softmax over classes), ``target`` int64 N×H×W of class indices,
``weight`` an optional non-negative float N×H×W per-pixel weight (0 excludes a pixel entirely). The
result is a float32 scalar, computed in float32 with autocast switched off. Any number of spatial
dimensions works (N×C×D×H×W with an N×D×H×W target).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from .options import CLASS_WEIGHTINGS

TINY = torch.finfo(torch.float32).tiny


class SegLoss(nn.Module):
    """Base class: checks shapes, leaves autocast, casts to float32, then calls :meth:`compute`."""

    def forward(self, logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        if logits.dim() < 3:
            raise ValueError(f"logits must be N×C×H×W, got shape {tuple(logits.shape)}")
        expected = (logits.shape[0], *logits.shape[2:])
        if tuple(target.shape) != expected:
            raise ValueError(f"target must be N×H×W {expected} (class indices), got {tuple(target.shape)}")
        if target.is_floating_point():
            raise ValueError("target must hold integer class indices, not floats")
        if weight is not None and tuple(weight.shape) != expected:
            raise ValueError(f"weight must be N×H×W {expected}, got {tuple(weight.shape)}")
        with torch.autocast(logits.device.type, enabled=False):
            return self.compute(logits.float(), target.long(), None if weight is None else weight.float())

    def compute(self, logits: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
        raise NotImplementedError


def one_hot(target: Tensor, channels: int) -> Tensor:
    """Float one-hot N×C×H×W; for ``channels == 1`` the foreground indicator (target must be 0/1)."""
    classes = max(channels, 2)
    try:
        hot = F.one_hot(target, classes).movedim(-1, 1).float()
    except RuntimeError as exc:
        raise ValueError(f"target values must be class indices 0..{classes - 1} "
                         f"for {channels} logit channel(s)") from exc
    return hot[:, 1:] if channels == 1 else hot


def probabilities(logits: Tensor) -> Tensor:
    """Sigmoid for one channel, softmax over channels otherwise."""
    return torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, 1)


def two_class(logits: Tensor) -> Tensor:
    """One foreground logit l → [0, l]; softmax of that is [σ(−l), σ(l)], i.e. the binary form."""
    return torch.cat([torch.zeros_like(logits), logits], 1) if logits.shape[1] == 1 else logits


def weighted_mean(values: Tensor, weight: Tensor | None) -> Tensor:
    """Σw·v / Σw (plain mean without weights); 0 when every weight is 0."""
    if weight is None:
        return values.mean()
    return (weight * values).sum() / weight.sum().clamp_min(TINY)


def soft_pow(x: Tensor, gamma: float, eps: float = 1e-6) -> Tensor:
    """x**gamma for x >= 0, finite gradient at x = 0 (x is clamped to eps when 0 < gamma < 1)."""
    return x.clamp_min(eps if 0 < gamma < 1 else 0.0).pow(gamma)


def class_counts(hot: Tensor, weight: Tensor | None) -> Tensor:
    """Pixels of each class over the whole batch, counting only pixels with weight > 0."""
    if weight is not None:
        hot = hot * (weight > 0).unsqueeze(1)
    return hot.sum(dim=[0, *range(2, hot.dim())])


def inverse_frequency(counts: Tensor, fill_absent: bool) -> Tensor:
    """Weights ∝ 1/count, mean 1 over present classes. Absent classes get 0, or with ``fill_absent``
    the largest weight (then the mean is 1 over all classes)."""
    present = counts > 0
    inv = torch.where(present, 1.0 / counts.clamp_min(1.0), torch.zeros_like(counts))
    if fill_absent:
        inv = torch.where(present, inv, inv.max())
        return inv / inv.mean().clamp_min(TINY)
    return inv * present.sum() / inv.sum().clamp_min(TINY)


class OverlapLoss(SegLoss):
    """Region losses: soft TP/FP/FN per sample and class (or over the whole batch) → per-class loss → mean.

    The per-pixel weight multiplies every pixel's contribution: TP = Σw·p·g, FP = Σw·p·(1−g),
    FN = Σw·(1−p)·g. C == 1 scores the single foreground channel (``include_background`` is moot).
    """

    def __init__(self, smooth: float = 1e-5, include_background: bool = True, batch: bool = False,
                 class_weighting: str = "none"):
        super().__init__()
        if class_weighting not in CLASS_WEIGHTINGS:
            raise ValueError(f"class_weighting must be one of {CLASS_WEIGHTINGS}, got {class_weighting!r}")
        self.smooth, self.include_background, self.batch = float(smooth), include_background, batch
        self.class_weighting = class_weighting

    def per_class(self, tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
        raise NotImplementedError

    def compute(self, logits: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
        p, g = probabilities(logits), one_hot(target, logits.shape[1])
        if not self.include_background and logits.shape[1] > 1:
            p, g = p[:, 1:], g[:, 1:]
        w = torch.ones_like(p[:, :1]) if weight is None else weight.unsqueeze(1)
        dims = [*([0] if self.batch else []), *range(2, p.dim())]
        wp, wg = w * p, w * g
        tp = (wp * g).sum(dims)
        loss = self.per_class(tp, (wp * (1 - g)).sum(dims), (wg * (1 - p)).sum(dims))
        if self.class_weighting == "inverse_frequency":
            loss = loss * inverse_frequency(class_counts(g, weight), fill_absent=True)
        return loss.mean()
