"""The Dataset panel's sample table with many samples (offscreen Qt): GUI-thread time of a
header click (sort by name, foreground, split, size; the visible rows' thumbnails included)
and of one thumbnail, for 512² to 4096² samples.

    python benchmarks/bench_dataset_table.py [--samples 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QTableView  # noqa: E402

from app.core.imageio import read_image  # noqa: E402
from app.ui.sample_table import SampleFilterProxy, SampleTableModel, sample_thumbnail  # noqa: E402

ISBI = Path(__file__).resolve().parents[2] / "shared" / "data" / "isbi2012"


def pair(size: int) -> tuple[np.ndarray, np.ndarray]:
    if ISBI.exists():
        image, mask = read_image(ISBI / "images" / "00.png"), read_image(ISBI / "masks" / "00.png")
    else:
        from app.core.demo_data import generate_sample
        image, mask = generate_sample("em", 0, 0, 512)
    return (cv2.resize(image, (size, size)),
            cv2.resize((mask > 0).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    image, mask = pair(512)
    samples = [SimpleNamespace(name=f"img_{rng.integers(10**6):06d}_{i}", split=("train", "val", "test")[i % 3],
                               shape=(512, 512 + i % 7), image_path=Path("i.png"), mask_path=Path("m.png"),
                               page=None, image=image, mask=mask) for i in range(args.samples)]
    model, proxy, view = SampleTableModel(), SampleFilterProxy(), QTableView()
    proxy.setSourceModel(model)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.resize(700, 900)
    view.show()
    model.set_dataset(SimpleNamespace(samples=samples))
    model.set_fractions({s.name: float(rng.random()) for s in samples})
    app.processEvents()
    print(f"{args.samples} samples; a header click (sort + repaint of the visible rows, thumbnails included):")
    for column, label in ((SampleTableModel.NAME, "name"), (SampleTableModel.FOREGROUND, "foreground"),
                          (SampleTableModel.SPLIT, "split"), (SampleTableModel.SIZE, "size")):
        times = []
        for order in (Qt.SortOrder.DescendingOrder, Qt.SortOrder.AscendingOrder) * 2:
            start = time.perf_counter()
            view.sortByColumn(column, order)
            app.processEvents()
            view.viewport().grab()
            times.append(1000 * (time.perf_counter() - start))
        print(f"  by {label:<11s} median {statistics.median(times):6.1f} ms, max {max(times):6.1f} ms")
    print("one thumbnail (64 px):")
    for size in (512, 2048, 4096):
        big_image, big_mask = pair(size)
        sample = SimpleNamespace(image=big_image, mask=big_mask, shape=big_image.shape[:2])
        sample_thumbnail(sample)
        start = time.perf_counter()
        for _ in range(20):
            sample_thumbnail(sample)
        print(f"  {size}² {1000 * (time.perf_counter() - start) / 20:6.2f} ms")


if __name__ == "__main__":
    main()
