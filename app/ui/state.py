"""The window's shared state: one experiment, its dataset, the current run. Panels subscribe.

Like napari's models, this holds data and announces changes; it draws nothing. A panel edits
through these methods and passes itself as ``source``, so it can ignore the echo of its own
change while every other panel refreshes.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.core.config import ExperimentConfig

from .dataset_sources import data_key

SECTIONS = ("data", "augmentation", "model", "loss", "optimizer", "training", "postprocess", "name")
FROZEN_WHILE_TRAINING = ("data", "augmentation", "model", "loss", "optimizer", "training", "name")


class ExperimentState(QObject):
    """The experiment being edited, the loaded dataset and the run whose results are shown."""

    configChanged = Signal(str, object)  # section ("all" when replaced), source panel or None
    datasetChanged = Signal()
    splitsChanged = Signal(object)  # source
    runChanged = Signal()  # run folder or checkpoint to show predictions from
    sampleSelected = Signal(str)  # the sample the user is looking at (dataset browser selection)
    trainingChanged = Signal(bool)  # a training run started (True) or ended (False)
    runMoved = Signal(object, object)  # a run folder renamed (old, new path) or deleted (old, None)
    dirtyChanged = Signal(bool)

    def __init__(self, config: ExperimentConfig | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._config = config or ExperimentConfig()
        self.dataset = None  # app.core.dataset.Dataset once loaded
        self.dataset_key: tuple | None = None  # the data settings it was loaded with (dataset_sources.data_key)
        self.config_path: Path | None = None
        self.run_dir: Path | None = None
        self.checkpoint: Path | None = None
        self.training = False
        self.training_run: Path | None = None  # the folder of the run training now, if known
        self.selected_sample: str | None = None
        self._dirty = False

    # -- the experiment ----------------------------------------------------------------------
    @property
    def config(self) -> ExperimentConfig:
        """The live config; read it freely, change it only through the methods below."""
        return self._config

    def snapshot(self) -> ExperimentConfig:
        """A validated deep copy to hand to a worker thread."""
        return copy.deepcopy(self._config).validate()

    def set_config(self, config: ExperimentConfig, path: Path | None = None, source: Any = None) -> None:
        """Replace the whole experiment (opened from a file, or reset)."""
        self._config = config
        self.config_path = path
        self.configChanged.emit("all", source)
        self._set_dirty(False)

    def update(self, section: str, source: Any = None, **changes: Any) -> None:
        """Change fields of one section, e.g. ``update("training", source, epochs=5)``.

        ``augmentation`` and ``postprocess`` are plain dicts and are replaced by ``value=...``;
        ``name`` takes ``value=...`` too.
        """
        if section not in SECTIONS:
            raise ValueError(f"unknown section {section!r}; valid: {', '.join(SECTIONS)}")
        if self.training and section in FROZEN_WHILE_TRAINING:
            # The run uses a snapshot; a late edit (e.g. a spin box losing focus) is refused and
            # the panels are told to show the experiment's values again.
            self.configChanged.emit(section, None)
            return
        if section in ("augmentation", "postprocess", "name"):
            if set(changes) != {"value"}:
                raise ValueError(f"{section} is replaced whole: update({section!r}, value=...)")
            setattr(self._config, section, copy.deepcopy(changes["value"]))
        else:
            target = getattr(self._config, section)
            for key, value in changes.items():
                if not hasattr(target, key):
                    raise ValueError(f"{section} has no field {key!r}")
                setattr(target, key, copy.deepcopy(value))
        self.configChanged.emit(section, source)
        self._set_dirty(True)

    @property
    def dirty(self) -> bool:
        return self._dirty

    def mark_saved(self, path: Path) -> None:
        self.config_path = path
        self._set_dirty(False)

    def mark_dirty(self) -> None:
        self._set_dirty(True)

    def _set_dirty(self, dirty: bool) -> None:
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirtyChanged.emit(dirty)

    # -- the dataset -------------------------------------------------------------------------
    def set_dataset(self, dataset) -> None:
        """A freshly loaded dataset (its splits already follow ``config.data.splits``)."""
        self.dataset = dataset
        self.dataset_key = data_key(self._config.data) if dataset is not None else None
        if self.sample(self.selected_sample) is None:
            self.selected_sample = dataset.samples[0].name if dataset is not None and dataset.samples else None
        self.datasetChanged.emit()

    def sample(self, name: str | None = None):
        """The named sample (default: the selected one), or None."""
        name = name or self.selected_sample
        if self.dataset is None or name is None:
            return None
        return next((s for s in self.dataset.samples if s.name == name), None)

    def select_sample(self, name: str | None) -> None:
        if name != self.selected_sample:
            self.selected_sample = name
            self.sampleSelected.emit(name or "")

    def dataset_matches_config(self) -> bool:
        """Whether the loaded dataset is the one the experiment names (not an older one while
        the new one is still loading)."""
        if self.dataset is None or self.dataset_key != data_key(self._config.data):
            return False  # e.g. a new validation fraction, its reload not done (or failed)
        data = self._config.data
        if data.path is None:
            from app.core.paths import demo_dataset_dir

            return _same(self.dataset.root, demo_dataset_dir())
        if data.label_stack:
            return any(_same(s.image_path, Path(data.path)) for s in self.dataset.samples[:1])
        return _same(self.dataset.root, Path(data.path))

    def set_split(self, names: list[str], split: str, source: Any = None) -> None:
        """Move samples to ``train``/``val``/``test``; the choice is saved in the experiment."""
        if self.dataset is None or self.training:
            self.splitsChanged.emit(None)
            return
        matched = self.dataset_key == data_key(self._config.data)
        self.dataset.assign_splits({name: split for name in names})
        splits = dict(self._config.data.splits)
        splits.update({name: split for name in names})
        self._config.data.splits = splits
        if matched:  # the move is in both; other settings still to be loaded stay unmatched
            self.dataset_key = data_key(self._config.data)
        self.splitsChanged.emit(source)
        self._set_dirty(True)

    # -- results -----------------------------------------------------------------------------
    def set_run(self, run_dir: Path | None, checkpoint: Path | None = None) -> None:
        """Show results of ``run_dir`` (its best checkpoint unless ``checkpoint`` is given)."""
        self.run_dir = Path(run_dir) if run_dir else None
        if checkpoint is None and self.run_dir is not None:
            best = self.run_dir / "checkpoints" / "best.pt"
            checkpoint = best if best.exists() else self.run_dir / "checkpoints" / "last.pt"
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.runChanged.emit()

    def set_training(self, running: bool, run_dir: Path | None = None) -> None:
        """A run started (in ``run_dir``, when one folder is known) or training ended."""
        self.training_run = Path(run_dir) if running and run_dir else None
        if running != self.training:
            self.training = running
            self.trainingChanged.emit(running)


def _same(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False
