"""Loss-landscape speed: a 21×21 two-dimensional slice of a default-size U-Net on 4 ISBI 2012
validation images, on CPU.

The model is the registry's default ``unet`` (depth 4, base width 16, batch norm, 1.94 M
parameters) with freshly initialised weights (the time does not depend on their values); the
images are the centre 256×256 crops (the default training patch size) of 4 validation images
of ../shared/data/isbi2012 split as the default experiment splits it, normalised as training
does. Five losses are evaluated on the same logits at every point: dice_ce, dice, bce, focal,
tversky. Reported: set-up, the grid (forward passes + losses), the time per point, and per
point the forward pass alone, the losses alone and the weight update alone: for a plain copy
of the model and for the optimised evaluation copy (batch norm folded, channels-last), each with
all 4 images in one pass, and the optimised copy with the default images per pass (one 256²
image per pass on the CPU). The machine is shared: the load average is printed at the end, and a
loaded machine (load above its 2 cores) slows every figure down.

    python benchmarks/bench_landscape.py [--steps 21] [--patch 256] [--images 4] [--batch-size N] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.core.config import ExperimentConfig  # noqa: E402
from app.core.landscape import build_losses, fixed_batch, random_directions, slice_2d  # noqa: E402
from app.core.landscape.slices import PerturbedModel, evaluate_losses  # noqa: E402
from app.core.models import build_model, count_parameters  # noqa: E402
from app.core.training.device import configure_cpu_threads  # noqa: E402

ISBI = Path(__file__).resolve().parents[2] / "shared" / "data" / "isbi2012"
LOSSES = "dice_ce,dice,bce,focal,tversky"


def per_point_parts(model, batch, losses, directions, optimise: bool, batch_size: int | None,
                    repeats: int = 7) -> tuple[float, float, float]:
    """Seconds per point of the weight update, the forward pass and the losses (medians of ``repeats``)."""
    twin = PerturbedModel(model, directions, "cpu", optimise)
    times: list[tuple[float, float, float]] = []
    with torch.inference_mode():
        twin.logits(batch.images, batch_size)
        for r in range(repeats):
            t0 = time.perf_counter()
            twin.set([0.1 * (r + 1), -0.1])
            t1 = time.perf_counter()
            logits = twin.logits(batch.images, batch_size)
            t2 = time.perf_counter()
            evaluate_losses(logits, batch, losses)
            t3 = time.perf_counter()
            times.append((t1 - t0, t2 - t1, t3 - t2))
    return tuple(statistics.median(t[i] for t in times) for i in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=21)
    parser.add_argument("--patch", type=int, default=256, help="centre crop side; 0 = whole 512×512 images")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--batch-size", type=int, help="images per forward pass (default: the library's, "
                                                       "one 256² image per pass on the CPU)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    args = parser.parse_args()
    if not ISBI.is_dir():
        sys.exit(f"ISBI 2012 data not found at {ISBI}")
    if args.threads:
        torch.set_num_threads(args.threads)
    cores = args.threads or configure_cpu_threads()

    t0 = time.perf_counter()
    config = ExperimentConfig.from_dict({"data": {"path": str(ISBI)}})
    batch = fixed_batch(config, ISBI, count=args.images, patch=args.patch or None)
    losses = build_losses(LOSSES, config, num_classes=2)
    torch.manual_seed(0)
    model = build_model("unet", 1, 2).eval()  # registry defaults
    directions = random_directions(model, 2, seed=0)
    setup = time.perf_counter() - t0
    print(f"model unet {dict(config.model.params) or 'defaults'}: {count_parameters(model):,} parameters; "
          f"batch {batch.describe()} ({', '.join(batch.names)}); losses {LOSSES}; {cores} CPU threads")
    print(f"set-up (dataset, batch, directions): {setup:.1f}s")

    for optimise, chunk in ((False, args.images), (True, args.images), (True, args.batch_size)):
        update, forward, loss = per_point_parts(model, batch, losses, directions, optimise, chunk)
        label = "optimised (BN folded, channels-last)" if optimise else "plain copy"
        passes = f"{chunk} images per pass" if chunk else "default images per pass"
        print(f"per point, {label}, {passes}: weights {1e3 * update:.1f} ms, forward {1e3 * forward:.0f} ms, "
              f"{len(losses)} losses {1e3 * loss:.1f} ms (medians)")

    points = args.steps ** 2
    def progress(d, total):
        if d % max(1, total // 10) == 0 or d == total:
            print(f"  {d}/{total} points, {time.perf_counter() - start:.1f}s", flush=True)

    start, cpu = time.perf_counter(), time.process_time()
    result = slice_2d(model, batch, losses, directions, steps=args.steps, span=1.0, progress=progress,
                      batch_size=args.batch_size)
    grid, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"{args.steps}x{args.steps} slice ({points} points, {len(losses)} losses each): {grid:.1f}s "
          f"({1e3 * grid / points:.0f} ms per point, {cpu:.0f} CPU-seconds); with set-up {grid + setup:.1f}s; "
          f"target < 120 s: {'met' if grid + setup < 120 else 'MISSED'}")
    try:
        print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    except OSError:
        pass
    print(f"images per forward pass: {result.meta['images_per_pass']}")
    print("centre:", ", ".join(f"{n} {v:.4f}" for n, v in zip(result.losses, result.centre)))


if __name__ == "__main__":
    main()
