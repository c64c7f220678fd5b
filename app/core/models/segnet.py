"""SegNet (Badrinarayanan et al. 2017): the decoder up-samples with the encoder's pooling indices."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import PaddedModel, conv_block


class SegNet(PaddedModel):
    """VGG-style encoder (max-pool keeps its indices), mirror decoder with max-unpooling; no
    skip concatenation. Any input size works (mirror-padded to a multiple of ``2**depth``)."""

    def __init__(self, in_channels: int, num_classes: int, depth: int = 4, base_width: int = 16,
                 batch_norm: bool = True, dropout: float = 0.0, convs_per_block: int = 2):
        super().__init__(in_channels, num_classes)
        self.multiple = 2**depth
        widths = [base_width * 2 ** min(i, 3) for i in range(depth)]
        self.encoder = nn.ModuleList()
        ch = in_channels
        for w in widths:
            self.encoder.append(conv_block(ch, w, batch_norm=batch_norm, convs=convs_per_block))
            ch = w
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.decoder = nn.ModuleList()
        for i in reversed(range(depth)):
            out = widths[i - 1] if i > 0 else widths[0]
            self.decoder.append(conv_block(widths[i], out, batch_norm=batch_norm, convs=convs_per_block))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        indices, sizes = [], []
        for block in self.encoder:
            x = block(x)
            sizes.append(x.shape)
            x, idx = self.pool(x)
            indices.append(idx)
        x = self.dropout(x)
        for block, idx, size in zip(self.decoder, reversed(indices), reversed(sizes)):
            x = block(self.unpool(x, idx, output_size=size))
        return self.head(x)
