"""Loss registry: ``available_losses()`` and ``build_loss(name, **params)``.

A loss is called as ``loss(logits, target, weight=None)`` with logits N×C×H×W (C == 1: one sigmoid
foreground logit; C >= 2: softmax), target int64 N×H×W and an optional per-pixel weight N×H×W
(0 excludes a pixel). It returns a float32 scalar. Each entry carries a ``formula`` (plain text) in
its meta; ``max_channels`` marks binary-only losses and ``needs_weight`` those that require ``weight``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..registry import LazyFactory, Param, Registry, RegistryError
from .options import CLASS_WEIGHTINGS, CLASS_WEIGHTS

if TYPE_CHECKING:
    from torch import nn

# Imported when a loss is built, so the registry (and experiment validation) needs no torch.
BinaryCrossEntropyLoss = LazyFactory("app.core.losses.bce:BinaryCrossEntropyLoss")
CrossEntropyLoss = LazyFactory("app.core.losses.ce:CrossEntropyLoss")
WeightedCrossEntropyLoss = LazyFactory("app.core.losses.ce:WeightedCrossEntropyLoss")
DiceLoss = LazyFactory("app.core.losses.dice:DiceLoss")
JaccardLoss = LazyFactory("app.core.losses.dice:JaccardLoss")
DiceCELoss = LazyFactory("app.core.losses.dice_ce:DiceCELoss")
FocalLoss = LazyFactory("app.core.losses.focal:FocalLoss")
FocalTverskyLoss = LazyFactory("app.core.losses.tversky:FocalTverskyLoss")
TverskyLoss = LazyFactory("app.core.losses.tversky:TverskyLoss")

LOSSES: Registry = Registry("loss")

_CLASS_WEIGHTS = Param("class_weights", "choice", "none", choices=CLASS_WEIGHTS,
                       help="balanced: inverse class frequency of the batch, mean 1 over present classes")


def _overlap() -> list[Param]:
    return [
        Param("smooth", "float", 1e-5, 1e-8, 10.0, help="added to numerator and denominator"),
        Param("include_background", "bool", True, help="score class 0 too (multi-class only)"),
        Param("batch", "bool", False, help="sum over the whole batch before the ratio (else per image)"),
        Param("class_weighting", "choice", "none", choices=CLASS_WEIGHTINGS,
              help="weight per-class losses by inverse pixel frequency in the batch"),
    ]


def _tversky() -> list[Param]:
    return [
        Param("alpha", "float", 0.5, 0.0, 1.0, help="weight of false positives"),
        Param("beta", "float", 0.5, 0.0, 1.0, help="weight of false negatives"),
    ]


LOSSES.add("ce", CrossEntropyLoss, [_CLASS_WEIGHTS],
           "Pixel-wise softmax cross-entropy (binary cross-entropy for one channel).",
           formula="L = −Σᵢ wᵢ·c_yᵢ·log softmax(zᵢ)[yᵢ] / Σᵢ wᵢ·c_yᵢ")
LOSSES.add("weighted_ce", WeightedCrossEntropyLoss, [
    Param("normalise", "choice", "weights", choices=("weights", "pixels"),
          help="divide by the sum of the weights, or by the number of pixels with weight > 0"),
    _CLASS_WEIGHTS,
], "Cross-entropy weighted by the per-pixel weight map (U-Net border weights); the map is required.",
    formula="L = −Σᵢ w(xᵢ)·log p_yᵢ(xᵢ) / Σᵢ w(xᵢ)", needs_weight=True)
LOSSES.add("bce", BinaryCrossEntropyLoss, [
    Param("pos_weight", "float", 1.0, 0.01, 100.0, help="weight of the foreground term"),
], "Binary cross-entropy on the foreground logit (l₁ − l₀ for two channels).",
    formula="L = −mean[ pw·g·log σ(z) + (1−g)·log(1−σ(z)) ],  z = l₁ − l₀", max_channels=2)
LOSSES.add("dice", DiceLoss, _overlap(), "Soft Dice loss on softmax/sigmoid probabilities.",
           formula="L = 1 − (2·Σp·g + s) / (Σp + Σg + s)")
LOSSES.add("jaccard", JaccardLoss, _overlap(), "Soft Jaccard (IoU) loss on softmax/sigmoid probabilities.",
           formula="L = 1 − (Σp·g + s) / (Σp + Σg − Σp·g + s)")
LOSSES.add("focal", FocalLoss, [
    Param("gamma", "float", 2.0, 0.0, 5.0, help="focusing exponent; 0 = cross-entropy"),
    Param("alpha", "float", 0.25, 0.0, 1.0, help="weight of the foreground classes (background: 1 − α)"),
    Param("use_alpha", "bool", True, help="apply the α class balance"),
], "Focal loss: cross-entropy down-weighted on well-classified pixels.",
    formula="L = −α_t·(1 − p_t)^γ·log p_t")


def _some_weight(first: str, second: str):
    """A check (see Registry.resolve) that two weights are not both 0: the loss would be 0/0."""
    return lambda values: (None if values[first] + values[second] > 0 else
                           f"{first} and {second} cannot both be 0; give one of them a weight")


LOSSES.add("tversky", TverskyLoss, _tversky() + _overlap(),
           "Tversky loss: Dice with separate weights for false positives (α) and false negatives (β).",
           check=_some_weight("alpha", "beta"),
           formula="L = 1 − (TP + s′) / (TP + α·FP + β·FN + s′),  s′ = s·(α+β)/2")
LOSSES.add("focal_tversky", FocalTverskyLoss, _tversky() + [
    Param("gamma", "float", 0.75, 0.1, 4.0, help="exponent on 1 − TI (Abraham & Khan: 1/γ = 4/3 → 0.75)"),
] + _overlap(), "Focal Tversky loss: the Tversky loss raised to the power γ.", check=_some_weight("alpha", "beta"),
    formula="L = (1 − TI)^γ,  TI = (TP + s′) / (TP + α·FP + β·FN + s′)")
LOSSES.add("dice_ce", DiceCELoss, [
    Param("lambda_dice", "float", 1.0, 0.0, 10.0, help="weight of the Dice term"),
    Param("lambda_ce", "float", 1.0, 0.0, 10.0, help="weight of the cross-entropy term"),
] + _overlap(), "Weighted sum of soft Dice and cross-entropy.", check=_some_weight("lambda_dice", "lambda_ce"),
    formula="L = λ_dice·Dice + λ_ce·CE")


def available_losses() -> list[str]:
    return LOSSES.names()


def build_loss(name: str, **params) -> "nn.Module":
    """Build a registered loss; parameters are validated against their declared ranges."""
    values = LOSSES.resolve(name, params)
    try:
        return LOSSES.get(name).factory(**values)
    except ValueError as exc:  # constraints between parameters, e.g. alpha + beta > 0
        raise RegistryError(f"loss {name!r}: {exc}") from exc


def __getattr__(name: str):
    if name == "SegLoss":  # the base class, for custom losses; imports torch
        from .base import SegLoss

        return SegLoss
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["LOSSES", "SegLoss", "available_losses", "build_loss"]
