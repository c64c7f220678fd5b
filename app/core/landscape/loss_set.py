"""Which losses a landscape evaluates: names from the loss registry, with parameters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from torch import nn

from ..config import ExperimentConfig
from ..losses import LOSSES, build_loss
from .loss_text import parse_loss_item


def build_losses(spec: str | Iterable | Mapping | None = None, config: ExperimentConfig | None = None,
                 num_classes: int | None = None) -> dict[str, nn.Module]:
    """Losses to evaluate, ``{label: loss module}``.

    ``spec``: None (the experiment's own loss), a comma-separated text (``"dice,bce,tversky:alpha=0.7"``),
    a list of such items, a mapping ``{name: params}`` or a mapping ``{label: loss module}`` (used
    as is). A loss named like the experiment's own (without parameters) gets the experiment's
    parameters, so its centre value is the checkpoint's training loss. ``num_classes`` (the
    model's) rejects binary-only losses for multi-class models.
    """
    if spec is None:
        if config is None:
            raise ValueError("no losses given and no experiment to take its loss from")
        spec = [config.loss.name]
    if isinstance(spec, str):
        spec = [item for item in spec.split(",") if item.strip()]
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        items = [(str(item).strip(), None) for item in spec]
    if not items:
        raise ValueError("no losses given")
    losses: dict[str, nn.Module] = {}
    for label, value in items:
        if isinstance(value, nn.Module):
            losses[label] = value
            continue
        if value is None:
            name, params = parse_loss_item(label)
        else:
            name, params = label, dict(value)
        if not params and config is not None and name == config.loss.name:
            params = dict(config.loss.params)
        entry = LOSSES.get(name)  # RegistryError naming the valid losses
        limit = entry.meta.get("max_channels")
        if limit is not None and num_classes is not None and num_classes > limit:
            raise ValueError(f"loss {name!r} is binary only; this model predicts {num_classes} classes")
        losses[label] = build_loss(name, **params)
    return losses


def needs_weight_map(losses: Mapping[str, nn.Module]) -> bool:
    """True when a loss requires the per-pixel weight map (``weighted_ce``)."""
    from ..losses.ce import WeightedCrossEntropyLoss

    return any(isinstance(loss, WeightedCrossEntropyLoss) for loss in losses.values())
