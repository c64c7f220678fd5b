"""Whether a dataset can be trained on, checked before a model is built: training samples, one
channel count and one bit depth; what is only worth a warning (no validation samples, a patch
larger than every image) is returned for the engine to report."""

from __future__ import annotations

from ..patch_plan import oversized_patch


def check_training_data(dataset, train: list, val: list, patch_size: int) -> tuple[str | None, list[str]]:
    """``(why training cannot start, or None; warnings)``."""
    if not train:
        return (f"{dataset.root}: no training samples (of {len(dataset.samples)} loaded, "
                f"{len(dataset.problems)} problems)"), []
    warnings = []
    if not val:
        warnings.append("the dataset has no validation samples: curves show training loss only and best.pt "
                        "follows the training loss")
    if oversized := oversized_patch(train, patch_size):
        warnings.append(oversized)
    channels = {s.channels for s in train}
    if len(channels) > 1:
        return f"training images mix {sorted(channels)} channels; convert them to one kind", warnings
    dtypes = {str(s.image.dtype) for s in dataset.samples}
    if len(dtypes) > 1:
        return (f"images mix bit depths ({', '.join(sorted(dtypes))}); normalisation needs one kind: convert them "
                "to the same bit depth"), warnings
    return None, warnings
