"""Background jobs of the model panel and the weight-map colouring.

Each job runs on a :class:`~app.ui.tasks.TaskRunner` thread and takes the runner's context
``ctx`` last (``ctx.check()`` raises once a newer job has replaced it): building the model for its
parameter count and patch-size note, computing the U-Net border weight map of a mask and
colouring it with a lookup table, and listing the devices PyTorch can train on. They import
PyTorch lazily, so importing this module stays cheap.
"""

from __future__ import annotations

import numpy as np


def count_job(name: str, in_channels: int, num_classes: int, params: dict, patch: int, ctx) -> tuple:
    """Build the model (background thread): its parameter count, and a note when the patch size
    does not fit it (e.g. unet_valid)."""
    from app.core.models import build_model, count_parameters

    ctx.check()
    model = build_model(name, in_channels, num_classes, **params)
    ctx.check()
    return count_parameters(model), patch_note(model, patch)


def patch_note(model, patch: int) -> str:
    """Empty when ``model`` takes ``patch``-pixel patches; otherwise why not."""
    try:
        model.output_size((patch, patch))
    except ValueError as exc:
        return f"patch size {patch}: {exc}"
    return ""


def weight_job(name: str, mask: np.ndarray, w0: float, sigma: float, lut: np.ndarray, ctx) -> tuple:
    """The border weight map of ``mask`` and its heat-map colouring (background thread)."""
    from app.core.weight_map import unet_weight_map

    ctx.check()
    weights = unet_weight_map(mask, w0=w0, sigma=sigma)
    low, high = float(weights.min()), float(weights.max())
    scaled = (weights - low) / (high - low) if high > low else np.zeros_like(weights)
    rgb = np.ascontiguousarray(lut[np.clip(scaled * 255.0, 0, 255).astype(np.uint8)][..., :3])
    return name, weights, rgb


def viridis_lut() -> np.ndarray:
    """The 256-entry viridis lookup table (RGB bytes) the weight map is coloured with."""
    import pyqtgraph as pg

    return pg.colormap.get("viridis").getLookupTable(0.0, 1.0, 256, alpha=False, mode="byte")


def list_devices(_ctx):
    """The devices PyTorch can train on (background thread: it imports torch)."""
    from app.core.training.device import available_devices

    return available_devices()


__all__ = ["count_job", "list_devices", "patch_note", "viridis_lut", "weight_job"]
