"""U-Net (Ronneberger et al. 2015) with same-padding convolutions: logits match the input size."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import PaddedModel, Up, conv_block


class UNet(PaddedModel):
    """Encoder of ``depth`` max-pool steps, decoder with skip concatenation.

    Widths double per level from ``base_width``. Any input size works: it is mirror-padded to a
    multiple of ``2**depth`` and the logits are cropped back.
    """

    def __init__(self, in_channels: int, num_classes: int, depth: int = 4, base_width: int = 16,
                 batch_norm: bool = True, dropout: float = 0.0, up_mode: str = "transpose"):
        super().__init__(in_channels, num_classes)
        self.multiple = 2**depth
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        ch = in_channels
        for w in widths[:-1]:
            self.down.append(conv_block(ch, w, batch_norm=batch_norm))
            ch = w
        self.pool = nn.MaxPool2d(2)
        self.bottom = conv_block(ch, widths[-1], batch_norm=batch_norm, dropout=dropout)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w_low, w in zip(widths[::-1][:-1], widths[::-1][1:]):
            self.up.append(Up(w_low, w, up_mode))
            self.merge.append(conv_block(2 * w, w, batch_norm=batch_norm))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([skip, up(x)], dim=1))
        return self.head(x)
