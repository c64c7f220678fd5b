"""The Sweeps panel's results after a run ends, for a large sweep (offscreen Qt): GUI-thread time
of a refresh (read sweep.json and the runs' summaries, rank, fill the table, draw the heat map)
when one summary changed, and the first refresh with nothing read before.

    python benchmarks/bench_sweep_results.py [--runs 300] [--repeats 15]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtWidgets import QApplication  # noqa: E402

from app.core.atomic import atomic_write_json  # noqa: E402
from app.ui.sweep_results_view import SweepResultsView  # noqa: E402

GRID = {"model.name": ["unet", "segnet", "unet_pp"], "loss.name": ["ce", "dice", "focal", "tversky", "dice_ce"],
        "optimizer.lr": [1e-4, 3e-4, 1e-3, 3e-3], "training.batch_size": [2, 4, 8, 16, 32]}


def summary(rng: random.Random) -> dict:
    return {"best_dice": rng.random(), "best_iou": rng.random(), "highest_accuracy": rng.random(),
            "lowest_loss": rng.random(), "best_value": rng.random(), "wall_seconds": 60.0, "epochs": 5,
            "lowest_loss_epoch": 3, "highest_accuracy_epoch": 4, "best_metric": "val_dice", "best_epoch": 4,
            "reason": "completed", "device": "cpu"}


def write_sweep(root: Path, runs: int) -> list[str]:
    rng, points = random.Random(0), []
    for i, combo in enumerate(itertools.islice(itertools.product(*GRID.values()), runs)):
        name = f"run{i:03d}"
        (root / name).mkdir()
        atomic_write_json(root / name / "summary.json", summary(rng))
        points.append({"name": name, "values": dict(zip(GRID, combo)), "status": "completed"})
    (root / "sweep.json").write_text(json.dumps({"spec": {"grid": GRID}, "points": points}))
    return [p["name"] for p in points]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = write_sweep(root, args.runs)
        view = SweepResultsView()
        view.resize(1200, 800)
        view.show()
        app.processEvents()
        start = time.perf_counter()
        view.set_folder(root)
        app.processEvents()
        first = time.perf_counter() - start
        rng, times = random.Random(1), []
        for i in range(args.repeats):
            atomic_write_json(root / names[i % len(names)] / "summary.json", summary(rng))  # a run ended
            start = time.perf_counter()
            view.refresh()
            app.processEvents()  # the repaint of the visible rows included
            times.append(time.perf_counter() - start)
        print(f"{args.runs} runs, {len(view.ranked_model.columns)} columns")
        print(f"first refresh (every summary read, window shown): {first * 1e3:.0f} ms")
        print(f"refresh after a run ended: median {statistics.median(times) * 1e3:.1f} ms, "
              f"max {max(times) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
