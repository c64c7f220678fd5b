"""Loss along one or two directions around the trained weights, on a fixed batch.

How a grid is evaluated:

- The model is copied once (never per point) to the evaluation device, in eval mode; the
  caller's model is never modified, not even temporarily. With ``optimise`` (the default) the copy
  has every convolution → batch-norm pair folded into one convolution (exact in eval mode, since
  batch-norm parameters have a zero direction) and uses channels-last memory, which is about a
  third faster on CPU; the folded weights move along the correspondingly scaled directions, so
  every grid point is the same network as the unfolded one up to float rounding.
- A saved copy of the weights θ that move is kept; at each point they are set in place to
  θ + a·d₁ (+ b·d₂) from it.
- Under ``torch.inference_mode``, the logits of the whole batch are computed once per point and
  every chosen loss is applied to the same logits. ``batch_size`` images go through the network
  per pass; the default (None) is the whole batch in one pass on a GPU and, on the CPU, passes of
  about 256×256 pixels (one 256² image), which keeps the activations in the CPU's caches: on the
  2-core development machine one pass per 256² image is about 20 % faster than one pass over
  four. The losses always see the whole batch's logits, so the chunking never changes a value
  beyond float rounding.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from ..training.precision import prefers_channels_last
from .batch import LandscapeBatch
from .directions import Direction, random_direction, random_directions
from .result import LandscapeResult

CPU_PIXELS_PER_PASS = 256 * 256
Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


def grid_axis(steps: int, span: float) -> np.ndarray:
    """``steps`` evenly spaced values from −span to +span; exactly 0 at the centre of an odd count."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    if not span > 0:
        raise ValueError(f"span must be > 0, got {span}")
    half = (steps - 1) / 2
    return span * (np.arange(steps, dtype=np.float64) - half) / half


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def _fold_batch_norm(model: nn.Module) -> dict[str, Tensor]:
    """Fold each Conv2d directly followed by an eval-mode BatchNorm2d (inside an nn.Sequential)
    into one biased Conv2d, the batch norm replaced by Identity. Returns, per folded weight's
    parameter name, the per-output-channel scale γ/√(var+ε) the weight was multiplied by."""
    scales: dict[str, Tensor] = {}
    for prefix, seq in list(model.named_modules()):
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq._modules.items())
        for (conv_key, conv), (bn_key, bn) in zip(children, children[1:]):
            if not (type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and bn.running_var is not None
                    and bn.running_mean is not None and bn.affine and bn.num_features == conv.out_channels):
                continue
            with torch.no_grad():
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                  conv.padding, conv.dilation, conv.groups, True, conv.padding_mode,
                                  device=conv.weight.device, dtype=conv.weight.dtype)
                fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
                bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
                fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
            seq._modules[conv_key] = fused
            seq._modules[bn_key] = nn.Identity()
            name = f"{prefix}.{conv_key}.weight" if prefix else f"{conv_key}.weight"
            scales[name] = scale.detach().clone()
    return scales


class PerturbedModel:
    """A one-off evaluation copy of ``model`` whose weights are set to θ + Σ cₖ·dₖ in place.

    ``directions``: one or more directions of ``model`` (names as ``model.named_parameters()``).
    """

    def __init__(self, model: nn.Module, directions: Sequence[Direction], device=None, optimise: bool = True):
        if not directions:
            raise ValueError("need at least one direction")
        names = dict(model.named_parameters())
        for k, direction in enumerate(directions):
            missing = set(names) - set(direction)
            extra = set(direction) - set(names)
            if missing or extra:
                which = sorted(missing or extra)[0]
                raise ValueError(f"direction {k + 1} does not fit this model ({'missing' if missing else 'unknown'} "
                                 f"parameter {which!r}); draw it with random_direction(model)")
            for name, d in direction.items():
                if tuple(d.shape) != tuple(names[name].shape):
                    raise ValueError(f"direction {k + 1}: {name} has shape {tuple(d.shape)}, "
                                     f"the model's {tuple(names[name].shape)}")
        self.device = torch.device(device) if device is not None else _model_device(model)
        self.channels_last = optimise and prefers_channels_last(self.device)
        twin = copy.deepcopy(model).to(self.device).eval()
        twin.requires_grad_(False)
        scales = _fold_batch_norm(twin) if optimise else {}
        if self.channels_last:
            twin.to(memory_format=torch.channels_last)
        self.model = twin
        params = dict(twin.named_parameters())
        self.entries: list[tuple[Tensor, Tensor, list[Tensor]]] = []
        for name in names:
            moving = [direction[name] for direction in directions]
            if not any(bool(d.any()) for d in moving):
                continue
            param = params[name]
            scaled = []
            for d in moving:
                d = d.to(self.device, param.dtype)
                if name in scales:
                    d = d * scales[name].to(self.device, param.dtype).view(-1, *([1] * (d.dim() - 1)))
                scaled.append(torch.empty_like(param).copy_(d))  # same memory format as the weight
            self.entries.append((param, param.detach().clone(), scaled))
        self.moving_parameters = sum(p.numel() for p, _, _ in self.entries)

    @torch.no_grad()
    def set(self, coords: Sequence[float]) -> None:
        """Weights θ + Σ coords[k]·dₖ (coords of 0 give θ exactly)."""
        for param, base, ds in self.entries:
            torch.add(base, ds[0], alpha=float(coords[0]), out=param)
            for d, c in zip(ds[1:], coords[1:]):
                if c != 0:
                    param.add_(d, alpha=float(c))

    def default_chunk(self, images: Tensor) -> int:
        """Images per pass when none is given: all on a GPU, ~256×256 pixels' worth on the CPU."""
        if self.device.type != "cpu":
            return images.shape[0]
        pixels = images.shape[-2] * images.shape[-1]
        return max(1, min(images.shape[0], CPU_PIXELS_PER_PASS // max(1, pixels)))

    def logits(self, images: Tensor, batch_size: int | None = None):
        """Logits of ``images`` (already on the device), ``batch_size`` images per pass (None: see
        :meth:`default_chunk`); chunks are concatenated."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        n = images.shape[0]
        step = int(batch_size) if batch_size else self.default_chunk(images)
        step = max(1, step)
        outputs = [self.model(images[i:i + step]) for i in range(0, n, step)]
        if len(outputs) == 1:
            return outputs[0]
        if isinstance(outputs[0], (list, tuple)):
            return [torch.cat(heads) for heads in zip(*outputs)]
        return torch.cat(outputs)


def _crop_to(t: Tensor | None, size: tuple[int, int]) -> Tensor | None:
    if t is None or tuple(t.shape[-2:]) == tuple(size):
        return t
    dy, dx = (t.shape[-2] - size[0]) // 2, (t.shape[-1] - size[1]) // 2
    return t[..., dy:dy + size[0], dx:dx + size[1]]


def evaluate_losses(logits, batch: LandscapeBatch, losses: Mapping[str, nn.Module]) -> list[float]:
    """Every loss on the same logits, as training calls them (with the per-pixel weight; logits
    smaller than the batch, from valid convolutions, score the centre of the targets; a list of
    deep-supervision heads averages the loss over the heads)."""
    from ..losses.ce import WeightedCrossEntropyLoss

    heads = list(logits) if isinstance(logits, (list, tuple)) else [logits]
    size = tuple(heads[-1].shape[-2:])
    target = _crop_to(batch.targets, size)
    weights = _crop_to(batch.weights, size)
    border = _crop_to(batch.weight_map, size)
    values = []
    for label, loss in losses.items():
        w = weights
        if isinstance(loss, WeightedCrossEntropyLoss):
            if border is None:
                raise ValueError(f"{label} needs the U-Net border weight map: build the batch with "
                                 f"fixed_batch(..., weight_map=True)")
            w = border
        total = sum(loss(head, target, w) for head in heads) / len(heads)
        values.append(float(total))
    return values


def _check(batch: LandscapeBatch, losses: Mapping[str, nn.Module]) -> None:
    if not losses:
        raise ValueError("no losses to evaluate")
    if not isinstance(batch, LandscapeBatch):
        raise TypeError(f"batch must be a LandscapeBatch (see fixed_batch), got {type(batch).__name__}")


@contextmanager
def _stoppable(model: nn.Module, should_stop: ShouldStop | None):
    """While inside, every layer of ``model`` checks ``should_stop()`` before it runs, so a stop
    lands within one layer, not after a whole point (one point of big images can take a minute)."""
    if should_stop is None:
        yield
        return

    def check(_module, _inputs):
        if should_stop():
            raise InterruptedError("landscape stopped")

    handles = [m.register_forward_pre_hook(check) for m in model.modules() if not list(m.children())]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _grid(model: nn.Module, batch: LandscapeBatch, losses: Mapping[str, nn.Module], directions: Sequence[Direction],
          axes: list[np.ndarray], *, batch_size: int | None, device, optimise: bool, progress: Progress | None,
          should_stop: ShouldStop | None, meta: dict | None) -> LandscapeResult:
    _check(batch, losses)
    start = time.perf_counter()
    twin = PerturbedModel(model, directions, device, optimise)
    on_device = batch.to(twin.device)
    shape = tuple(len(a) for a in axes)
    total = int(np.prod(shape))
    values = np.full((len(losses), *shape), np.nan)
    centre = None
    with torch.inference_mode(), _stoppable(twin.model, should_stop):
        for done, index in enumerate(np.ndindex(*shape)):
            if should_stop is not None and should_stop():
                raise InterruptedError("landscape stopped")
            coords = [float(axis[i]) for axis, i in zip(axes, index)]
            twin.set(coords)
            row = evaluate_losses(twin.logits(on_device.images, batch_size), on_device, losses)
            values[(slice(None), *index)] = row
            if all(c == 0.0 for c in coords):
                centre = row
            if progress is not None:
                progress(done + 1, total)
        if centre is None:  # an even step count has no grid point at θ itself
            twin.set([0.0] * len(axes))
            centre = evaluate_losses(twin.logits(on_device.images, batch_size), on_device, losses)
    seconds = time.perf_counter() - start
    info = {"dims": len(axes), "steps": list(shape), "span": float(max(abs(axes[0][0]), abs(axes[0][-1]))),
            "images": batch.count, "image_size": list(batch.size), "split": batch.split, "names": batch.names,
            "device": str(twin.device), "optimised": bool(optimise),
            "images_per_pass": int(batch_size or twin.default_chunk(on_device.images)), "seconds": round(seconds, 3),
            "seconds_per_point": round(seconds / total, 5), "moving_parameters": twin.moving_parameters}
    return LandscapeResult(list(losses), axes, values, np.asarray(centre), {**info, **(meta or {})})


def slice_1d(model: nn.Module, batch: LandscapeBatch, losses: Mapping[str, nn.Module], direction: Direction,
             steps: int = 21, span: float = 1.0, *, batch_size: int | None = None, device=None,
             optimise: bool = True, progress: Progress | None = None, should_stop: ShouldStop | None = None,
             meta: dict | None = None) -> LandscapeResult:
    """Every loss at θ + a·d for ``steps`` values of a in [−span, span]: ``values`` losses × steps.

    ``losses``: ``{label: loss module}`` (see :func:`~app.core.landscape.build_losses`).
    ``batch_size``: images per forward pass (None: the whole batch on a GPU, ~256×256 pixels per
    pass on the CPU; the losses always see the whole batch). ``progress(done, total)`` after each
    point; ``should_stop()`` before each, True raises ``InterruptedError``. ``device``: where to
    evaluate (default: the model's). ``optimise``: fold batch norm and use channels-last in the
    evaluation copy (False: a plain copy, bit-identical to the model at the centre). ``meta``:
    extra entries for the result's ``meta``. Returns a :class:`LandscapeResult`."""
    return _grid(model, batch, losses, [direction], [grid_axis(steps, span)], batch_size=batch_size, device=device,
                 optimise=optimise, progress=progress, should_stop=should_stop, meta=meta)


def slice_2d(model: nn.Module, batch: LandscapeBatch, losses: Mapping[str, nn.Module],
             directions: Sequence[Direction], steps: int = 21, span: float = 1.0, *, batch_size: int | None = None,
             device=None, optimise: bool = True, progress: Progress | None = None,
             should_stop: ShouldStop | None = None, meta: dict | None = None) -> LandscapeResult:
    """Every loss at θ + a·d₁ + b·d₂ on a ``steps`` × ``steps`` grid over [−span, span]²:
    ``values[k, i, j]`` at (a_i, b_j). Options as :func:`slice_1d`."""
    if len(directions) != 2:
        raise ValueError(f"a 2-D slice needs two directions, got {len(directions)}")
    axis = grid_axis(steps, span)
    return _grid(model, batch, losses, list(directions), [axis, axis.copy()], batch_size=batch_size, device=device,
                 optimise=optimise, progress=progress, should_stop=should_stop, meta=meta)


def snapshot_slice(model: nn.Module, batch: LandscapeBatch, losses: Mapping[str, nn.Module],
                   directions: Direction | Sequence[Direction] | None = None, steps: int = 21, span: float = 1.0, *,
                   seed: int = 0, dims: int = 1, **options) -> LandscapeResult:
    """A slice for the training engine to take every N epochs (cheap: 1-D by default).

    ``directions`` None draws them for the current weights from ``seed`` (the same seed every
    epoch, so the random pattern is the same and only its filter normalisation follows the
    weights); one direction gives a 1-D slice, two a 2-D one (``dims`` applies when drawing).
    The caller's model, its weights and its train/eval mode are left as they were. Store the
    result with :func:`~app.core.landscape.save_snapshot` as ``landscapes/epoch_XXX.npz``::

        if landscape_every and epoch % landscape_every == 0:
            save_snapshot(run_dir, epoch, snapshot_slice(model, batch, losses, seed=seed))

    where ``batch = fixed_batch(config, dataset, normaliser=normaliser)`` and
    ``losses = build_losses(None, config)`` were built once before the first epoch.
    """
    if directions is None:
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims}")
        directions = [random_direction(model, seed)] if dims == 1 else random_directions(model, 2, seed)
    elif isinstance(directions, Mapping):
        directions = [directions]
    directions = list(directions)
    meta = {"seed": seed, **options.pop("meta", {})}
    if len(directions) == 1:
        return slice_1d(model, batch, losses, directions[0], steps, span, meta=meta, **options)
    return slice_2d(model, batch, losses, directions, steps, span, meta=meta, **options)
