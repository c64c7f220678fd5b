"""Loss-surface slices taken during training (``training.landscape_every``), for the viewer's
"throughout training" slider: the same fixed batch, losses and random direction pattern every
time, stored as ``<run>/landscapes/epoch_XXX.npz``."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..config import ExperimentConfig
from ..dataset import Dataset

SNAPSHOT_IMAGES = 4  # validation images in the fixed batch


class LandscapeRecorder:
    """Builds the fixed batch and the losses once (on first use) and takes a slice when due.

    A problem setting it up (e.g. a loss that needs a weight map the run does not build) is
    raised once as ``ValueError``; the engine then warns and trains on without slices.
    """

    def __init__(self, config: ExperimentConfig, dataset: Dataset, normaliser, num_classes: int,
                 device: torch.device):
        self.config = config
        self.dataset = dataset
        self.normaliser = normaliser
        self.num_classes = num_classes
        self.device = device
        self.every = config.training.landscape_every
        self._prepared = None

    def due(self, epoch: int, last: bool) -> bool:
        """True after finished epoch ``epoch`` (from 1) when a slice is due (and after the last)."""
        return self.every > 0 and (epoch % self.every == 0 or last)

    def _prepare(self):
        from ..landscape import build_losses, fixed_batch, needs_weight_map

        t = self.config.training
        losses = build_losses(t.landscape_losses or None, self.config, self.num_classes)
        batch = fixed_batch(self.config, self.dataset, count=SNAPSHOT_IMAGES, patch=self.config.data.patch_size,
                            seed=t.seed, normaliser=self.normaliser,
                            weight_map=True if needs_weight_map(losses) else None)
        return batch.to(self.device), losses

    def take(self, model: torch.nn.Module, run_dir: Path, epoch: int) -> tuple[Path, float]:
        """Slice around ``model``'s current weights and store it; returns (path, seconds)."""
        from ..landscape import save_snapshot, snapshot_slice

        started = time.perf_counter()
        if self._prepared is None:
            self._prepared = self._prepare()
        batch, losses = self._prepared
        t = self.config.training
        result = snapshot_slice(model, batch, losses, steps=t.landscape_steps, span=t.landscape_span,
                                seed=t.seed, dims=t.landscape_dims, device=self.device,
                                meta={"run": run_dir.name, "model": self.config.model.name})
        path = save_snapshot(run_dir, epoch, result)
        return path, time.perf_counter() - started
