"""U-Net whose encoder grows its receptive field with dilated convolutions instead of pooling.

The resolution never drops: level ``i`` uses dilation ``2**i``; the decoder mirrors the
encoder (dilations shrinking back to 1) and concatenates the skip features, as in the
melanoma segmentation study's best model. Any input size works, and the logits match it.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import PaddedModel, conv_block


class UNetDilate(PaddedModel):
    """Full-resolution encoder-decoder with dilations 1, 2, 4, ... and skip concatenation."""

    def __init__(self, in_channels: int, num_classes: int, depth: int = 3, base_width: int = 8,
                 batch_norm: bool = True, dropout: float = 0.0):
        super().__init__(in_channels, num_classes)
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        ch = in_channels
        for i, w in enumerate(widths[:-1]):
            self.down.append(conv_block(ch, w, batch_norm=batch_norm, dilation=2**i))
            ch = w
        self.bottom = conv_block(ch, widths[-1], batch_norm=batch_norm, dilation=2**depth, dropout=dropout)
        self.reduce = nn.ModuleList()
        self.merge = nn.ModuleList()
        for i, (w_low, w) in enumerate(zip(widths[::-1][:-1], widths[::-1][1:])):
            self.reduce.append(nn.Conv2d(w_low, w, 1))
            self.merge.append(conv_block(2 * w, w, batch_norm=batch_norm, dilation=2 ** (depth - 1 - i)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.bottom(x)
        for reduce, merge, skip in zip(self.reduce, self.merge, reversed(skips)):
            x = merge(torch.cat([skip, reduce(x)], dim=1))
        return self.head(x)
