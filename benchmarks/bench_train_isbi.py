"""ISBI 2012 with its conventional split (train 00–26, validate 27–29): `segstudio train` with
default settings and a 600-second limit, as a user would run it.

Prints when the validation pixel accuracy first crossed 0.92 and 0.926 (the best published
figure for this split), the final and best accuracy, IoU and the adapted Rand error of the best
checkpoint on the validation images (before and after watershed clean-up).

    python benchmarks/bench_train_isbi.py [--time-limit 600] [--device auto] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ISBI = ROOT.parent / "shared" / "data" / "isbi2012"
sys.path.insert(0, str(ROOT))


def conventional_split(folder: Path) -> Path:
    for split, names in (("train", range(0, 27)), ("val", range(27, 30))):
        for kind in ("images", "masks"):
            (folder / split / kind).mkdir(parents=True)
            for i in names:
                (folder / split / kind / f"{i:02d}.png").symlink_to(ISBI / kind / f"{i:02d}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=600)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, help="run folder (default: a temporary one)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `segstudio train` options")
    args = parser.parse_args()
    if not ISBI.exists():
        sys.exit(f"{ISBI} not found")
    with tempfile.TemporaryDirectory() as tmp:
        data = conventional_split(Path(tmp) / "isbi")
        out = args.out or Path(tmp) / "run"
        command = [sys.executable, "-m", "app", "train", "--data", str(data), "--time-limit", str(args.time_limit),
                   "--device", args.device, "--out", str(out), "--quiet", *args.extra]
        print("$", " ".join(command[1:]), flush=True)
        start = time.perf_counter()
        subprocess.run(command, check=True)
        wall = time.perf_counter() - start
        rows = list(csv.DictReader((out / "history.csv").open()))
        elapsed, crossed = 0.0, {}
        for row in rows:
            elapsed += float(row["seconds"])
            acc = float(row["val_pixel_accuracy"] or 0)
            for level in (0.92, 0.926):
                if acc >= level and level not in crossed:
                    crossed[level] = (elapsed, int(row["epoch"]))
        best = max(rows, key=lambda r: float(r["val_pixel_accuracy"] or 0))
        last = rows[-1]
        print(f"epochs {len(rows)}, process wall time {wall:.0f}s")
        for level in (0.92, 0.926):
            at = crossed.get(level)
            print(f"val pixel accuracy >= {level}: " + (f"first at {at[0]:.0f}s (epoch {at[1]})" if at else "not reached"))
        print(f"final: accuracy {float(last['val_pixel_accuracy']):.4f}, IoU {float(last['val_iou']):.4f}, "
              f"Dice {float(last['val_dice']):.4f}")
        print(f"best:  accuracy {float(best['val_pixel_accuracy']):.4f} at epoch {best['epoch']}, "
              f"IoU {float(best['val_iou']):.4f}")
        rand_error(out / "checkpoints" / "best.pt", data / "val")


def rand_error(checkpoint: Path, val: Path) -> None:
    from app.core.dataset import load_dataset
    from app.core.metrics import adapted_rand_error, instance_labels
    from app.core.predictor import Predictor

    predictor = Predictor.from_checkpoint(checkpoint)
    before, after = [], []
    for sample in load_dataset(val.parent).split("val"):
        prediction = predictor.predict(sample.image)
        truth = instance_labels(sample.mask)
        before.append(adapted_rand_error(instance_labels(prediction.labels), truth))
        after.append(adapted_rand_error(predictor.postprocess(prediction).labels, truth))
    print(f"adapted Rand error (best.pt, validation): {sum(before) / len(before):.4f} before, "
          f"{sum(after) / len(after):.4f} after watershed")


if __name__ == "__main__":
    main()
