"""Filter-normalised random directions in weight space (Li et al., "Visualizing the Loss
Landscape of Neural Nets", NeurIPS 2018).

A direction is a dict ``{parameter name: tensor}`` with one entry per ``model.named_parameters()``
(same shapes, float32, on the CPU). Convention:

- Every parameter with two or more dimensions (convolution, transposed-convolution and linear
  weights) gets a Gaussian random tensor, then *filter normalisation*: each filter of the
  direction is rescaled to the Frobenius norm of the same filter of the weights,
  ``d[i] ← d[i] · ‖w[i]‖ / ‖d[i]‖``. A filter is a slice along the weight tensor's first
  dimension: the output channel of a ``Conv2d`` (out × in × k × k) or a ``Linear`` row, and the
  input channel of a ``ConvTranspose2d`` (whose weight is in × out × k × k), as in Li et al.'s
  reference code. A filter whose weights are all zero gets a zero direction.
- Biases and batch-norm weights/biases (every parameter of one dimension or none) get a zero
  direction (Li et al.'s ``ignore='biasbn'``); buffers such as batch-norm running statistics
  are not parameters and never move.

The random numbers come from a CPU generator seeded with ``(seed, index)``, drawn parameter by
parameter in ``named_parameters()`` order, so the same seed gives the same directions on every
device and run. Because of the normalisation a direction depends on the weights it is drawn
for: the same seed on the weights of a later epoch gives the same random pattern, rescaled to
those weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

Direction = dict[str, Tensor]


def _generator(seed: int, index: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed) % 2**63, int(index), 0x4C61]).generate_state(2, np.uint32)
    return torch.Generator(device="cpu").manual_seed(int(state[0]) << 32 | int(state[1]))


def filter_normalise(direction: Tensor, weight: Tensor) -> Tensor:
    """``direction`` rescaled filter by filter (first dimension) to the norms of ``weight``'s
    filters; zero for parameters of fewer than two dimensions."""
    if weight.dim() <= 1:
        return torch.zeros_like(direction)
    d = direction.detach().float().reshape(direction.shape[0], -1)
    w = weight.detach().float().cpu().reshape(weight.shape[0], -1)
    d_norm = d.norm(dim=1, keepdim=True)
    w_norm = w.norm(dim=1, keepdim=True)
    scale = torch.where(d_norm > 0, w_norm / d_norm.clamp_min(torch.finfo(torch.float32).tiny),
                        torch.zeros_like(d_norm))
    return (d * scale).reshape(direction.shape)


def random_direction(model: nn.Module, seed: int = 0, index: int = 0) -> Direction:
    """One filter-normalised Gaussian direction for ``model``'s current weights.

    ``index`` picks one of several independent directions of the same ``seed`` (0, 1, ...)."""
    generator = _generator(seed, index)
    direction: Direction = {}
    for name, param in model.named_parameters():
        if param.dim() <= 1:
            direction[name] = torch.zeros(param.shape, dtype=torch.float32)
            continue
        noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
        direction[name] = filter_normalise(noise, param)
    return direction


def random_directions(model: nn.Module, count: int = 2, seed: int = 0) -> list[Direction]:
    """``count`` independent filter-normalised directions (index 0, 1, ... of ``seed``)."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    return [random_direction(model, seed, index) for index in range(count)]


def direction_norm(direction: Direction) -> float:
    """Euclidean norm of the whole direction (all parameters together)."""
    return float(torch.sqrt(sum((d.double() ** 2).sum() for d in direction.values())))
