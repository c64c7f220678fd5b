"""Sweep overhead: the same N tiny runs trained directly, one Trainer after another, and through
``run_sweep`` (which validates every point, loads the dataset once, writes sweep.json after each
point and reports progress). The overhead per run should be about zero or negative.

Both sides train the same configs (those of the sweep's points) into fresh run folders; the
direct side is what N ``segstudio train`` runs in one process would do (each loads the data).
A third figure, direct with one shared dataset, separates the data loading from the sweep's
own book-keeping. Rounds alternate the three; medians are reported, in total time and in the
time outside the training loops (set-up, data loading, book-keeping), which is less noisy.

    python benchmarks/bench_sweep_overhead.py [--points 6] [--rounds 3] [--steps 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.core.demo_data import write_demo_dataset  # noqa: E402
from app.core.experiment_data import load_experiment_data  # noqa: E402
from app.core.sweep import SweepSpec, expand  # noqa: E402
from app.core.sweep_run import run_sweep  # noqa: E402
from app.core.training.engine import Trainer  # noqa: E402

LOSSES = ["dice", "focal", "bce", "tversky", "jaccard", "dice_ce", "ce", "focal_tversky"]


def spec_for(data: Path, points: int, steps: int, patch: int) -> SweepSpec:
    losses = LOSSES[:max(1, points // 2)]
    lrs = [1e-3, 3e-4][:max(1, points // len(losses))]
    base = {"data": {"path": str(data), "patch_size": patch},
            "model": {"name": "unet", "params": {"depth": 2, "base_width": 8}},
            "training": {"epochs": 1, "batch_size": 2, "steps_per_epoch": steps, "device": "cpu"}}
    return SweepSpec.from_dict({"name": "bench", "base": base, "grid": {"loss.name": losses, "optimizer.lr": lrs}})


def direct(spec: SweepSpec, out: Path, shared: bool) -> tuple[float, float]:
    start = time.perf_counter()
    points = expand(spec)
    dataset = load_experiment_data(points[0].config) if shared else None
    trained = sum(Trainer(p.config, out / p.name, dataset=dataset).run()["wall_seconds"] for p in points)
    return time.perf_counter() - start, trained


def swept(spec: SweepSpec, out: Path) -> tuple[float, float]:
    start = time.perf_counter()
    result = run_sweep(spec, out, progress=lambda p: None)
    return time.perf_counter() - start, sum(p.summary["wall_seconds"] for p in result.points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="training steps per run")
    parser.add_argument("--patch", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_demo_dataset(tmp / "demo", count=12, size=128)
        spec = spec_for(data, args.points, args.steps, args.patch)
        n = len(expand(spec))
        Trainer(expand(spec)[0].config, tmp / "warm-up").run()
        times: dict[str, list[tuple[float, float]]] = {"direct": [], "direct, shared data": [], "sweep": []}
        for r in range(args.rounds):
            times["direct"].append(direct(spec, tmp / f"direct{r}", shared=False))
            times["direct, shared data"].append(direct(spec, tmp / f"shared{r}", shared=True))
            times["sweep"].append(swept(spec, tmp / f"sweep{r}"))
        print(f"{n} runs of {args.steps} steps (U-Net depth 2, width 8, {args.patch}² patches, batch 2, CPU, "
              f"validation on {len(load_experiment_data(expand(spec)[0].config).split('val'))} images); "
              f"median of {args.rounds} rounds")
        median = {k: (statistics.median(t for t, _ in v), statistics.median(t - w for t, w in v))
                  for k, v in times.items()}
        for name, (total, outside) in median.items():
            print(f"  {name:<20} {total:7.2f} s total, {1000 * total / n:6.0f} ms per run, "
                  f"{1000 * outside / n:5.0f} ms per run outside the training loops")
        for other in ("direct", "direct, shared data"):
            paired = [(s[0] - d[0]) / n for s, d in zip(times["sweep"], times[other])]
            outside = [((s[0] - s[1]) - (d[0] - d[1])) / n for s, d in zip(times["sweep"], times[other])]
            print(f"sweep overhead per run vs {other}: {1000 * statistics.median(paired):+.0f} ms in total time, "
                  f"{1000 * statistics.median(outside):+.0f} ms outside the training loops (medians of paired rounds)")

if __name__ == "__main__":
    main()
