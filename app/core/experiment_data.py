"""The dataset an experiment trains on, loaded without importing torch (the GUI uses it)."""

from __future__ import annotations

from pathlib import Path

from .config import ExperimentConfig
from .dataset import Dataset, load_dataset
from .paths import ensure_demo_dataset


def load_experiment_data(config: ExperimentConfig, path: str | Path | tuple | None = None,
                         progress=None) -> Dataset:
    """The experiment's dataset (``path`` overrides the configured one; demo data when neither)
    with its split overrides applied. Overrides naming samples that are no longer there are
    skipped and reported in the dataset's problems. ``progress(done, total)`` as files are read."""
    from .pairing import Problem

    if path is None and config.data.path and config.data.label_stack:
        path = (config.data.path, config.data.label_stack)
    path = path or config.data.path or ensure_demo_dataset()
    dataset = load_dataset(path, val_fraction=config.data.val_fraction, seed=config.data.split_seed,
                           mask_mode=config.data.mask_mode, progress=progress)
    if config.data.splits:
        names = {s.name for s in dataset.samples}
        missing = sorted(set(config.data.splits) - names)
        dataset.assign_splits({k: v for k, v in config.data.splits.items() if k in names})
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            dataset.problems.append(Problem(dataset.root, f"split settings name samples that are not in the "
                                                          f"dataset (skipped): {shown}"))
    return dataset
