"""The original U-Net with unpadded ("valid") convolutions (Ronneberger et al. 2015).

Each 3×3 convolution loses a 1-pixel border, so the logits are smaller than the input
(572 → 388 for depth 4). It is used with overlap-tile prediction: the input tile is the output
tile plus a mirrored margin of ``(in - out) / 2`` pixels. Only some input sizes work: every
feature map before a pooling must have an even size; a wrong size raises an error listing the
nearest sizes that work.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import Up, conv_block


def valid_output_size(size: int, depth: int) -> int | None:
    """Output side for an input side, or None if that input side does not work."""
    for _ in range(depth):
        size -= 4
        if size <= 0 or size % 2:
            return None
        size //= 2
    size -= 4
    if size <= 0:
        return None
    for _ in range(depth):
        size = size * 2 - 4
    return size if size > 0 else None


def nearest_valid_sizes(size: int, depth: int, count: int = 2) -> list[int]:
    """Valid input sides nearest to ``size`` (below and above)."""
    below = [s for s in range(size, 0, -1) if valid_output_size(s, depth)][:count]
    above: list[int] = []
    side = max(size, 0) + 1
    while len(above) < count and side <= max(size, 0) + 2**depth * (count + 64):  # past the smallest valid side
        if valid_output_size(side, depth):
            above.append(side)
        side += 1
    return sorted(below + above)


class UNetValid(nn.Module):
    """Original U-Net: unpadded convolutions, skip connections centre-cropped to fit."""

    def __init__(self, in_channels: int, num_classes: int, depth: int = 4, base_width: int = 16,
                 batch_norm: bool = False, dropout: float = 0.0):
        super().__init__()
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        ch = in_channels
        for w in widths[:-1]:
            self.down.append(conv_block(ch, w, padding=False, batch_norm=batch_norm))
            ch = w
        self.pool = nn.MaxPool2d(2)
        self.bottom = conv_block(ch, widths[-1], padding=False, batch_norm=batch_norm, dropout=dropout)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w_low, w in zip(widths[::-1][:-1], widths[::-1][1:]):
            self.up.append(Up(w_low, w, "transpose"))
            self.merge.append(conv_block(2 * w, w, padding=False, batch_norm=batch_norm))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Logit size for an input size; raises ValueError naming valid sizes if it does not work."""
        out = []
        for side in size:
            result = valid_output_size(int(side), self.depth)
            if result is None:
                near = ", ".join(map(str, nearest_valid_sizes(int(side), self.depth)))
                raise ValueError(f"unet_valid (depth {self.depth}) cannot take a side of {side} pixels; "
                                 f"sides that work near it: {near}")
            out.append(result)
        return tuple(out)

    def margin(self, size: int = 572) -> int:
        """Pixels lost on each side: the mirrored margin an overlap tile needs."""
        return (size - self.output_size((size, size))[0]) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNetValid expects N×{self.in_channels}×H×W input, got {tuple(x.shape)}")
        self.output_size(tuple(x.shape[-2:]))
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = up(x)
            dy, dx = (skip.shape[-2] - x.shape[-2]) // 2, (skip.shape[-1] - x.shape[-1]) // 2
            skip = skip[..., dy:dy + x.shape[-2], dx:dx + x.shape[-1]]
            x = merge(torch.cat([skip, x], dim=1))
        return self.head(x)
