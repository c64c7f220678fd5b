"""Loss-surface viewer, the computation: loss landscapes around trained weights (Li et al.,
"Visualizing the Loss Landscape of Neural Nets", 2018) and loss-versus-prediction curves.

Typical use (a worker thread in the GUI, or ``segstudio landscape``)::

    from app.core.landscape import (build_losses, fixed_batch, random_directions, slice_2d,
                                    save_figure)
    predictor = Predictor.from_checkpoint(path, "cpu")
    batch = fixed_batch(predictor.config, data_dir, count=4, patch=256, normaliser=predictor.normaliser)
    losses = build_losses("dice,bce,tversky:alpha=0.7", predictor.config, predictor.num_classes)
    dirs = random_directions(predictor.model, 2, seed=0)
    result = slice_2d(predictor.model, batch, losses, dirs, steps=21, span=1.0,
                      progress=on_progress, should_stop=lambda: cancelled)
    result.save("landscape.npz"); save_figure(result, "landscape.png")

Names are imported on first use, so importing this package (e.g. to read saved results with
:class:`LandscapeResult`) does not load torch.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "LandscapeResult": "result", "save_snapshot": "result", "list_snapshots": "result", "snapshot_path": "result",
    "SNAPSHOT_FOLDER": "result",
    "render_figure": "figure", "save_figure": "figure",
    "Direction": "directions", "random_direction": "directions", "random_directions": "directions",
    "filter_normalise": "directions", "direction_norm": "directions",
    "LandscapeBatch": "batch", "fixed_batch": "batch",
    "build_losses": "loss_set", "parse_loss_item": "loss_text", "needs_weight_map": "loss_set",
    "slice_1d": "slices", "slice_2d": "slices", "snapshot_slice": "slices", "grid_axis": "slices",
    "evaluate_losses": "slices", "PerturbedModel": "slices",
    "loss_vs_prediction": "prediction", "PredictionCurves": "prediction", "CASES": "prediction",
    "probability_axis": "prediction",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
