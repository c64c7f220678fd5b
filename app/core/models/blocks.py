"""Building blocks shared by the models."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_block(in_ch: int, out_ch: int, *, padding: bool = True, batch_norm: bool = True,
               dropout: float = 0.0, dilation: int = 1, convs: int = 2) -> nn.Sequential:
    """``convs`` × (3×3 conv → [batch norm] → ReLU), then optional 2-D dropout."""
    layers: list[nn.Module] = []
    for i in range(convs):
        pad = dilation if padding else 0
        layers.append(nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, padding=pad, dilation=dilation,
                                bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_ch))
        layers.append(nn.ReLU(inplace=True))
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class Up(nn.Module):
    """Double the resolution: 2×2 transposed convolution, or bilinear interpolation + 1×1 conv."""

    def __init__(self, in_ch: int, out_ch: int, mode: str = "transpose"):
        super().__init__()
        if mode == "transpose":
            self.op = nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2)
        elif mode == "bilinear":
            self.op = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                    nn.Conv2d(in_ch, out_ch, 1))
        else:
            raise ValueError(f"unknown up-sampling mode {mode!r}; valid: transpose, bilinear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Mirror-pad H and W at the bottom/right up to a multiple; returns the padded tensor and
    the original (H, W) so the output can be cropped back."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class PaddedModel(nn.Module):
    """Base for models that need H and W divisible by ``2**depth``: any input size is
    mirror-padded up to the next multiple and the logits are cropped back, transparently."""

    multiple: int = 1

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        if in_channels < 1 or num_classes < 1:
            raise ValueError("in_channels and num_classes must be at least 1")
        self.in_channels = in_channels
        self.num_classes = num_classes

    def forward_padded(self, x: torch.Tensor):
        raise NotImplementedError

    def forward(self, x: torch.Tensor):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects N×{self.in_channels}×H×W input, got {tuple(x.shape)}")
        padded, (h, w) = pad_to_multiple(x, self.multiple)
        out = self.forward_padded(padded)
        if isinstance(out, (list, tuple)):
            return [o[..., :h, :w] for o in out]
        return out[..., :h, :w]

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Logits have the input's size."""
        return tuple(size)
