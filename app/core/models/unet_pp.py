"""UNet++ (Zhou et al. 2018): nested, dense skip pathways between encoder and decoder.

Node X[i][j] (level i, column j) sees every earlier node of its level and the up-sampled node
X[i+1][j-1]. With ``deep_supervision`` each top-row node X[0][j] has its own 1×1 head: in
training mode ``forward`` returns the list of all heads' logits (average their losses); in
evaluation mode it returns their mean. Any input size works (mirror-padded, cropped back).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import PaddedModel, Up, conv_block


class UNetPlusPlus(PaddedModel):
    def __init__(self, in_channels: int, num_classes: int, depth: int = 4, base_width: int = 16,
                 batch_norm: bool = True, dropout: float = 0.0, deep_supervision: bool = False):
        super().__init__(in_channels, num_classes)
        self.multiple = 2**depth
        self.depth = depth
        self.deep_supervision = deep_supervision
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.pool = nn.MaxPool2d(2)
        self.nodes = nn.ModuleDict()
        self.ups = nn.ModuleDict()
        for i in range(depth + 1):
            ch = in_channels if i == 0 else widths[i - 1]
            self.nodes[f"{i}_0"] = conv_block(ch, widths[i], batch_norm=batch_norm,
                                              dropout=dropout if i == depth else 0.0)
        for j in range(1, depth + 1):
            for i in range(depth + 1 - j):
                self.ups[f"{i}_{j}"] = Up(widths[i + 1], widths[i], "transpose")
                self.nodes[f"{i}_{j}"] = conv_block(widths[i] * (j + 1), widths[i], batch_norm=batch_norm)
        heads = depth if deep_supervision else 1
        self.heads = nn.ModuleList(nn.Conv2d(widths[0], num_classes, 1) for _ in range(heads))

    def forward_padded(self, x: torch.Tensor):
        grid: dict[tuple[int, int], torch.Tensor] = {}
        for i in range(self.depth + 1):
            x = self.nodes[f"{i}_0"](x if i == 0 else self.pool(x))
            grid[i, 0] = x
        for j in range(1, self.depth + 1):
            for i in range(self.depth + 1 - j):
                inputs = [grid[i, k] for k in range(j)] + [self.ups[f"{i}_{j}"](grid[i + 1, j - 1])]
                grid[i, j] = self.nodes[f"{i}_{j}"](torch.cat(inputs, dim=1))
        if not self.deep_supervision:
            return self.heads[0](grid[0, self.depth])
        outputs = [head(grid[0, j + 1]) for j, head in enumerate(self.heads)]
        return outputs if self.training else torch.stack(outputs).mean(0)
