"""Engine overhead: the same model, patches and number of steps through SegStudio's Trainer
and through a bare PyTorch loop, in one run. The ratio should stay under 1.05.

Both loops draw identical batches from the same PatchDataset (augmentation included) and run
forward, loss, backward, optimizer and scheduler steps, in the same arithmetic and memory layout
(the engine's mixed-precision choice: bfloat16 channels-last on a CPU with native bfloat16); the
engine adds its events, metrics,
health checks, stop/pause flags and the end-of-epoch checkpoint.

    python benchmarks/bench_engine_overhead.py [--steps 30] [--patch 128] [--batch 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.core.config import ExperimentConfig  # noqa: E402
from app.core.demo_data import write_demo_dataset  # noqa: E402
from app.core.losses import build_loss  # noqa: E402
from app.core.models import build_model  # noqa: E402
from app.core.optim import build_optimizer, build_scheduler  # noqa: E402
from app.core.training.data import Normaliser, PatchDataset  # noqa: E402
from app.core.training.engine import Trainer, load_experiment_data  # noqa: E402
from app.core.training.precision import autocast_dtype, describe, prefers_channels_last  # noqa: E402


def bare_loop(config: ExperimentConfig, steps: int) -> float:
    torch.manual_seed(config.training.seed)
    dataset = load_experiment_data(config)
    train = dataset.split("train")
    norm = Normaliser.for_dataset(config.data.normalisation, dataset.stats, train[0].image.dtype)
    patches = PatchDataset(train, config, norm, steps * config.training.batch_size)
    model = build_model(config.model.name, train[0].channels, dataset.num_classes, **config.model.params)
    loss_fn = build_loss(config.loss.name, **config.loss.params)
    optimizer = build_optimizer(config.optimizer.name, model.parameters(), config.optimizer.lr)
    scheduler = build_scheduler(config.optimizer.schedule, optimizer, steps)
    loader = torch.utils.data.DataLoader(patches, batch_size=config.training.batch_size)
    dtype = autocast_dtype("cpu", config.training.mixed_precision)
    channels_last = prefers_channels_last("cpu")
    if channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    start = time.perf_counter()
    for images, masks, weights in loader:
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            logits = model(images)
        loss = loss_fn(logits, masks, weights)
        loss.backward()
        optimizer.step()
        scheduler.step()
        float(loss.detach())
    return time.perf_counter() - start


def engine(config: ExperimentConfig, run_dir: Path) -> float:
    summary = Trainer(config, run_dir).run()
    return summary["wall_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = write_demo_dataset(Path(tmp) / "demo", count=12, size=256, val_fraction=0.0)
        config = ExperimentConfig()
        config.data.path, config.data.patch_size, config.data.val_fraction = str(data), args.patch, 0.0
        config.training.batch_size, config.training.epochs = args.batch, 1
        config.training.steps_per_epoch, config.training.device = args.steps, "cpu"
        config.validate()
        bare_loop(config, 3)  # warm-up
        bare, ours = [], []
        for r in range(args.rounds):
            bare.append(bare_loop(config, args.steps))
            ours.append(engine(config, Path(tmp) / f"run{r}"))
        b, o = min(bare), min(ours)
        paired = sorted(e / p for e, p in zip(ours, bare))
        print(f"{args.steps} steps of {args.batch}×{args.patch}² patches, model {config.model.name}, "
              f"{torch.get_num_threads()} threads, {describe(autocast_dtype('cpu', config.training.mixed_precision))}, "
              f"{args.rounds} interleaved rounds")
        print(f"best: bare PyTorch loop {b:.2f}s, SegStudio engine {o:.2f}s, ratio {o / b:.3f}; "
              f"median of paired ratios {paired[len(paired) // 2]:.3f} (range {paired[0]:.3f}-{paired[-1]:.3f})")


if __name__ == "__main__":
    main()
