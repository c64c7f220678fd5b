"""U-Net that goes down with strided convolutions and up with transposed convolutions."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import PaddedModel, conv_block


class UNetStride(PaddedModel):
    """Like :class:`~app.core.models.unet.UNet`, but each max-pool is a learned 3×3 stride-2
    convolution. Any input size works (mirror-padded to a multiple of ``2**depth``, cropped back)."""

    def __init__(self, in_channels: int, num_classes: int, depth: int = 4, base_width: int = 16,
                 batch_norm: bool = True, dropout: float = 0.0):
        super().__init__(in_channels, num_classes)
        self.multiple = 2**depth
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        self.strided = nn.ModuleList()
        ch = in_channels
        for w in widths[:-1]:
            self.down.append(conv_block(ch, w, batch_norm=batch_norm))
            self.strided.append(nn.Sequential(nn.Conv2d(w, w, 3, stride=2, padding=1), nn.ReLU(inplace=True)))
            ch = w
        self.bottom = conv_block(ch, widths[-1], batch_norm=batch_norm, dropout=dropout)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w_low, w in zip(widths[::-1][:-1], widths[::-1][1:]):
            self.up.append(nn.ConvTranspose2d(w_low, w, 2, stride=2))
            self.merge.append(conv_block(2 * w, w, batch_norm=batch_norm))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block, down in zip(self.down, self.strided):
            x = block(x)
            skips.append(x)
            x = down(x)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([skip, up(x)], dim=1))
        return self.head(x)
