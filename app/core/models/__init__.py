"""Model registry: ``available_models()`` and ``build_model(name, in_channels, num_classes, **params)``.

Every model takes N×C_in×H×W and returns N×num_classes logits. All but ``unet_valid`` return
logits of the input's size for any input size (mirror-padding internally); ``unet_valid``
returns the smaller valid region and rejects sizes it cannot take, naming ones that work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..registry import LazyFactory, Param, Registry

if TYPE_CHECKING:
    from torch import nn

# Factories are imported when a model is built, so listing models and checking an experiment's
# settings does not import torch (the window opens faster).
SegNet = LazyFactory("app.core.models.segnet:SegNet")
UNet = LazyFactory("app.core.models.unet:UNet")
UNetDilate = LazyFactory("app.core.models.unet_dilate:UNetDilate")
UNetPlusPlus = LazyFactory("app.core.models.unet_pp:UNetPlusPlus")
UNetStride = LazyFactory("app.core.models.unet_stride:UNetStride")
UNetValid = LazyFactory("app.core.models.unet_valid:UNetValid")

MODELS: Registry = Registry("model")


def _common(depth: int = 4, max_depth: int = 6, base_width: int = 16) -> list[Param]:
    return [
        Param("depth", "int", depth, 1, max_depth, help="number of down-sampling levels"),
        Param("base_width", "int", base_width, 4, 128, help="channels of the first level; doubled per level"),
        Param("batch_norm", "bool", True, help="batch normalisation after each convolution"),
        Param("dropout", "float", 0.0, 0.0, 0.9, help="2-D dropout at the bottleneck"),
    ]


MODELS.add("unet", UNet, _common() + [
    Param("up_mode", "choice", "transpose", choices=("transpose", "bilinear"),
          help="up-sampling: 2×2 transposed convolution or bilinear interpolation"),
], "U-Net with same-padding convolutions; output size = input size.", output="same")
MODELS.add("unet_valid", UNetValid, [
    Param("depth", "int", 4, 1, 5, help="number of down-sampling levels"),
    Param("base_width", "int", 16, 4, 128, help="channels of the first level (64 in the paper)"),
    Param("batch_norm", "bool", False, help="batch normalisation (not in the original)"),
    Param("dropout", "float", 0.0, 0.0, 0.9, help="2-D dropout at the bottleneck"),
], "Original U-Net, unpadded convolutions (572 → 388); overlap-tile prediction with mirrored borders.",
    output="valid")
MODELS.add("unet_stride", UNetStride, _common(),
           "U-Net with strided convolutions instead of pooling and transposed convolutions up.", output="same")
MODELS.add("unet_dilate", UNetDilate, _common(depth=3, max_depth=5, base_width=8),
           "U-Net with dilated convolutions instead of pooling; full resolution throughout.", output="same")
MODELS.add("segnet", SegNet, _common() + [
    Param("convs_per_block", "int", 2, 1, 3, help="3×3 convolutions per encoder/decoder block"),
], "SegNet: encoder-decoder that up-samples with the encoder's max-pooling indices.", output="same")
MODELS.add("unet_pp", UNetPlusPlus, _common() + [
    Param("deep_supervision", "bool", False, help="a head on every top-row node; losses averaged"),
], "UNet++: nested, dense skip pathways; optional deep supervision.", output="same")


def available_models() -> list[str]:
    return MODELS.names()


def build_model(name: str, in_channels: int, num_classes: int, **params) -> "nn.Module":
    """Build a registered model; parameters are validated against their declared ranges."""
    values = MODELS.resolve(name, params)
    if in_channels < 1 or num_classes < 1:
        raise ValueError(f"in_channels and num_classes must be at least 1 (got {in_channels}, {num_classes})")
    return MODELS.get(name).factory(in_channels, num_classes, **values)


def count_parameters(model: "nn.Module") -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["MODELS", "available_models", "build_model", "count_parameters"]
