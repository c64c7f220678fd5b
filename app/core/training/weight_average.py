"""An exponential moving average of a model's weights: when ``training.ema_decay`` is above 0 it
is what validates and what checkpoints hold for prediction (the raw weights train on)."""

from __future__ import annotations

import torch


class WeightAverage:
    """An exponential moving average of a model's weights (and batch-norm statistics), with the
    usual warm-up: the decay is min(decay, (1 + n) / (10 + n)) after n updates."""

    def __init__(self, model: torch.nn.Module, decay: float):
        import copy

        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.decay, self.updates = decay, 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.module.state_dict().values(), model.state_dict().values()):
            if average.is_floating_point():
                average.mul_(d).add_(current.detach(), alpha=1 - d)
            else:
                average.copy_(current)
