"""Tiled whole-image prediction (Qt-free).

``predict_probabilities(model, image, settings)`` runs a segmentation model over an image of
any size in overlapping tiles and blends the per-tile probabilities into one
``num_classes × H × W`` map; ``predict_labels`` takes its argmax.

Two geometries are handled:

* same-size models (every model but ``unet_valid``): logits have the input tile's size. Tiles of
  ``tile × tile`` input pixels are laid on a grid with stride ``tile·(1 − overlap)``, the last
  tile of each row/column aligned to the image edge. An axis shorter than the tile is
  mirror-padded up to the tile and the result cropped back.
* valid-convolution models (``unet_valid``): the logits are the centre of the input, smaller by
  a margin on every side. This is the overlap-tile strategy of Ronneberger et al.: ``tile`` is
  the side of the *output* tile (rounded up to a size the model can produce), the whole image is
  mirror-padded by the margin, and each input tile is its output tile plus the margin on every
  side. Output tile origins lie on a grid whose stride is ``tile·(1 − overlap)`` rounded down
  to a multiple of the pooling step ``2**depth`` (so every tile sees the same pooling phase and
  overlapping tiles agree exactly: the result equals one big tile, seamlessly); the last tiles
  may reach past the image, which is mirror-padded that far too.

Per tile the logits become probabilities (softmax, or sigmoid for a single-logit model); they
are accumulated with blend weights into an output buffer and a weight buffer and divided at the
end. A single-logit model (``num_classes == 1``) yields two channels ``[1 − p, p]`` so callers
can always take the argmax over axis 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from .models.unet_valid import UNetValid, valid_output_size
from .training.precision import prefers_channels_last

_BLENDS = ("gaussian", "constant")
# Flip dims of an N×C×H×W tensor for test-time augmentation: none, horizontal, vertical, both.
_FLIPS: tuple[tuple[int, ...], ...] = ((), (3,), (2,), (2, 3))
_AUTOCASTS = {("cuda", torch.float16), ("cuda", torch.bfloat16), ("cpu", torch.bfloat16)}
_MAX_PROBE = 4096


@dataclass(frozen=True)
class TileSettings:
    """How ``predict_probabilities`` tiles an image.

    ``tile``: tile side in input pixels; for ``unet_valid`` the *output* tile side (the input tile
    is that plus twice the margin, rounded up to a size the model takes). ``overlap``: fraction of
    the tile shared with its neighbour, in [0, 0.9]. ``batch_size``: tiles per forward pass.
    ``flip_tta``: average over the four flips (none, horizontal, vertical, both).
    ``blend``: ``"gaussian"`` (weights fall off towards tile edges, sigma = tile/8 as in nnU-Net)
    or ``"constant"``.
    """

    tile: int = 256
    overlap: float = 0.25
    batch_size: int = 4
    flip_tta: bool = False
    blend: str = "gaussian"

    def __post_init__(self):
        if int(self.tile) != self.tile or self.tile < 1:
            raise ValueError(f"tile must be a positive integer, got {self.tile!r}")
        if not 0.0 <= float(self.overlap) <= 0.9:
            raise ValueError(f"overlap must be in [0, 0.9], got {self.overlap!r}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.blend not in _BLENDS:
            raise ValueError(f"unknown blend {self.blend!r}; valid: {', '.join(_BLENDS)}")

    def stride(self, tile: int | None = None) -> int:
        """Step between tile origins for a tile of side ``tile`` (default: ``self.tile``)."""
        tile = self.tile if tile is None else tile
        return max(1, int(round(tile * (1.0 - self.overlap))))


def tile_settings_for(config, flip_tta: bool | None = None) -> TileSettings:
    """The tiling an experiment validates and predicts with: its patch size, overlap and batch."""
    t = config.training
    return TileSettings(tile=config.data.patch_size, overlap=t.tile_overlap, batch_size=max(1, t.batch_size),
                        flip_tta=t.flip_tta if flip_tta is None else flip_tta)


def tile_positions(length: int, tile: int, stride: int) -> list[int]:
    """Origins of tiles of side ``tile`` covering ``[0, length)`` with step ``stride``.

    Origins are ``0, stride, 2·stride, …`` and the last tile ends exactly at ``length`` (it is
    shifted back to the edge, so no tile reaches outside when ``length >= tile``); no duplicates.
    When ``length <= tile`` there is one tile at 0 (the caller pads the image up to the tile).
    A stride larger than the tile is reduced to the tile, so that the tiles leave no gaps.
    """
    if length < 1 or tile < 1 or stride < 1:
        raise ValueError(f"length, tile and stride must be positive (got {length}, {tile}, {stride})")
    stride = min(stride, tile)
    if length <= tile:
        return [0]
    last = length - tile
    positions = list(range(0, last, stride))
    positions.append(last)
    return positions


def _covering_positions(length: int, tile: int, stride: int) -> list[int]:
    """Origins ``0, stride, 2·stride, …`` until the tiles cover ``[0, length)``; the last tile may
    reach past ``length`` (the caller pads). Keeps every origin on the stride grid."""
    count = 1 + max(0, -(-(length - tile) // stride))
    return [i * stride for i in range(count)]


@lru_cache(maxsize=16)
def _blend_weights(height: int, width: int, blend: str) -> np.ndarray:
    """Blend weights of a tile (read-only, cached): Gaussian with sigma = side/8, max 1, or ones."""
    if blend == "constant":
        weights = np.ones((height, width), np.float32)
    else:
        def axis(n: int) -> np.ndarray:
            x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0  # symmetric: flip-consistent
            sigma = max(n / 8.0, 1e-3)
            return np.exp(-0.5 * (x / sigma) ** 2)

        weights = np.outer(axis(height), axis(width))
        weights /= weights.max()
        # Edge pixels must keep a positive weight (nnU-Net clamps zeros to the smallest weight).
        weights = np.maximum(weights, 1e-6).astype(np.float32)
    weights.setflags(write=False)
    return weights


# ----------------------------------------------------------------------------- geometry

def _output_side(model: nn.Module, side: int) -> int | None:
    """Output side for a square input of ``side`` pixels, or None if the model cannot take it."""
    if isinstance(model, UNetValid):
        return valid_output_size(side, model.depth)
    try:
        return int(model.output_size((side, side))[0])
    except ValueError:
        return None


def _is_valid_model(model: nn.Module) -> bool:
    """True for models whose logits are smaller than their input (unpadded convolutions)."""
    if isinstance(model, UNetValid):
        return True
    if not callable(getattr(model, "output_size", None)):
        return False
    probe = 256
    return _output_side(model, probe) != probe


def _valid_tile(model: nn.Module, out_tile: int) -> tuple[int, int, int, int]:
    """(input side, output side, margin, step) of the smallest valid tile whose output side is at
    least ``out_tile``. The margin is ``(input − output) / 2`` pixels on every side; ``step`` is the
    distance to the next valid input side (``2**depth``: the pooling grid), so tiles shifted by a
    multiple of it see the same pooling phase and agree exactly where they overlap."""
    # Find the margin from the first valid input side at or above out_tile, then step up from
    # out_tile + 2·margin until the output reaches out_tile.
    margin = None
    for side in range(out_tile, out_tile + _MAX_PROBE):
        out = _output_side(model, side)
        if out:
            margin = (side - out) // 2
            break
    if margin is None:
        raise ValueError(f"found no input size the model takes near {out_tile} pixels")
    for side in range(out_tile + 2 * margin, out_tile + 2 * margin + _MAX_PROBE):
        out = _output_side(model, side)
        if out and out >= out_tile:
            if (side - out) % 2:
                raise ValueError(f"model output ({out}) is not centred in its input ({side})")
            step = next((s - side for s in range(side + 1, side + _MAX_PROBE) if _output_side(model, s)), 1)
            return side, out, (side - out) // 2, step
    raise ValueError(f"found no input size giving an output of at least {out_tile} pixels")


def _mirror_pad(image: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Mirror-pad an H×W×C array: reflect (repeatedly, for pads larger than the image), or
    replicate along an axis of a single pixel."""
    if not (top or bottom or left or right):
        return image
    h, w = image.shape[:2]
    if h >= 2 and w >= 2:
        return np.pad(image, ((top, bottom), (left, right), (0, 0)), mode="reflect")
    image = np.pad(image, ((top, bottom), (0, 0), (0, 0)), mode="reflect" if h >= 2 else "edge")
    return np.pad(image, ((0, 0), (left, right), (0, 0)), mode="reflect" if w >= 2 else "edge")


def _prepare_image(image: np.ndarray, mean, std, in_channels: int | None) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"expected an H×W or H×W×C image, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image of shape {image.shape}")
    if in_channels is not None and image.shape[2] != in_channels:
        raise ValueError(f"the model takes {in_channels} channel(s), the image has {image.shape[2]}")
    image = image.astype(np.float32, copy=False)
    mean = np.asarray(mean, np.float32).reshape(-1)
    std = np.asarray(std, np.float32).reshape(-1)
    if mean.size not in (1, image.shape[2]) or std.size not in (1, image.shape[2]):
        raise ValueError(f"mean/std need 1 or {image.shape[2]} values, got {mean.size} and {std.size}")
    if np.any(std == 0):
        raise ValueError("std must not be zero")
    if np.any(mean != 0) or np.any(std != 1):
        image = (image - mean) / std
    return image


def _resolve_device(model: nn.Module, device) -> torch.device:
    if device is None:
        param = next(model.parameters(), None)
        return param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    param = next(model.parameters(), None)
    if param is not None and param.device.type != device.type:
        raise ValueError(f"the model is on {param.device} but prediction was asked on {device}; "
                         "move it first with model.to(device)")
    return device


def _to_probabilities(logits) -> torch.Tensor:
    if isinstance(logits, (list, tuple)):  # deep supervision heads: average, as unet_pp does in eval
        logits = torch.stack(list(logits)).mean(0)
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)


# ----------------------------------------------------------------------------- prediction

def predict_probabilities(model: nn.Module, image: np.ndarray, settings: TileSettings = TileSettings(), *,
                          device="cpu", mean: float | Sequence[float] = 0.0, std: float | Sequence[float] = 1.0,
                          autocast: torch.dtype | None = None,
                          progress: Callable[[int, int], None] | None = None,
                          should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """Class probabilities (float32, ``num_classes × H × W``) for a whole H×W×C (or H×W) image.

    ``image`` is float data already normalised by the caller; ``mean``/``std`` (scalars or one
    per channel), if given, are applied first as ``(x − mean) / std``. A single-logit model gives
    ``2 × H × W`` = ``[1 − p, p]``. The model runs in eval mode under ``torch.inference_mode``;
    every submodule's training flag is restored afterwards. ``device``: where tiles are sent (the
    model must already be there; ``None`` = the model's device). ``autocast``: the dtype to
    autocast to (float16 on CUDA, bfloat16 on CUDA or the CPU; see ``training.precision``), None
    = float32. On CUDA and the CPU, tiles go in channels-last (faster convolutions).
    ``progress(done, total)`` is called after each batch of tiles; ``should_stop()`` is checked
    before each batch and ``True`` raises ``InterruptedError("prediction stopped")``.
    """
    data = _prepare_image(image, mean, std, getattr(model, "in_channels", None))
    height, width = data.shape[:2]
    device = _resolve_device(model, device)

    if _is_valid_model(model):
        # Overlap-tile: origins on a grid whose stride is a multiple of the pooling step, the
        # image mirror-padded by the margin plus whatever the last tiles reach past it.
        in_tile, out_tile, margin, step = _valid_tile(model, int(settings.tile))
        stride = max(step, settings.stride(out_tile) // step * step)
        rows = _covering_positions(height, out_tile, stride)
        cols = _covering_positions(width, out_tile, stride)
    else:
        in_tile = out_tile = int(settings.tile)
        margin, stride = 0, settings.stride(out_tile)
        rows = tile_positions(max(height, out_tile), out_tile, stride)
        cols = tile_positions(max(width, out_tile), out_tile, stride)
    # Output frame: the image, extended at the bottom/right as far as the tiles reach.
    frame_h, frame_w = rows[-1] + out_tile, cols[-1] + out_tile
    data = _mirror_pad(data, margin, margin + frame_h - height, margin, margin + frame_w - width)
    source = torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))  # C×H×W, CPU
    origins = [(y, x) for y in rows for x in cols]
    total = len(origins)
    weights_np = _blend_weights(out_tile, out_tile, settings.blend)
    weights = torch.from_numpy(weights_np.copy()).to(device)
    flips = _FLIPS if settings.flip_tta else _FLIPS[:1]
    if autocast is not None and (device.type, autocast) not in _AUTOCASTS:
        autocast = None  # e.g. float16 asked for on the CPU: float32 there
    channels_last = prefers_channels_last(device)

    accumulated: np.ndarray | None = None
    weight_sum = np.zeros((frame_h, frame_w), np.float32)
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, total, settings.batch_size):
                if should_stop is not None and should_stop():
                    raise InterruptedError("prediction stopped")
                batch_origins = origins[start:start + settings.batch_size]
                batch = torch.stack([source[:, y:y + in_tile, x:x + in_tile] for y, x in batch_origins])
                batch = batch.to(device)
                if channels_last:
                    batch = batch.contiguous(memory_format=torch.channels_last)
                probs = None
                for dims in flips:
                    tiles = batch.flip(dims) if dims else batch
                    with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                        logits = model(tiles)
                    p = _to_probabilities(logits)
                    if tuple(p.shape[-2:]) != (out_tile, out_tile):
                        raise ValueError(f"model gave logits of {tuple(p.shape[-2:])} for a "
                                         f"{in_tile}×{in_tile} tile; expected {out_tile}×{out_tile}")
                    if dims:
                        p = p.flip(dims)
                    probs = p if probs is None else probs + p
                if len(flips) > 1:
                    probs = probs / len(flips)
                weighted = (probs * weights).cpu().numpy()
                if accumulated is None:
                    accumulated = np.zeros((weighted.shape[1], frame_h, frame_w), np.float32)
                for tile_probs, (y, x) in zip(weighted, batch_origins):
                    accumulated[:, y:y + out_tile, x:x + out_tile] += tile_probs
                    weight_sum[y:y + out_tile, x:x + out_tile] += weights_np
                if progress is not None:
                    progress(min(start + len(batch_origins), total), total)
    finally:
        for module, training in modes:
            module.training = training

    result = accumulated[:, :height, :width] / weight_sum[None, :height, :width]
    if result.shape[0] == 1:
        result = np.concatenate([1.0 - result, result], axis=0)
    return np.ascontiguousarray(result, dtype=np.float32)


def predict_labels(model: nn.Module, image: np.ndarray, settings: TileSettings = TileSettings(),
                   **kwargs) -> np.ndarray:
    """Argmax of ``predict_probabilities`` (same keyword arguments): an H×W label image,
    uint8 for up to 256 classes, else uint16."""
    probabilities = predict_probabilities(model, image, settings, **kwargs)
    dtype = np.uint8 if probabilities.shape[0] <= 256 else np.uint16
    return np.argmax(probabilities, axis=0).astype(dtype)


__all__ = ["TileSettings", "predict_labels", "predict_probabilities", "tile_positions"]
