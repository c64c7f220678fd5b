"""Brush correction on large images in the real Review panel (offscreen Qt): what the GUI
thread spends on one pointer move of a stroke and on the end of a stroke (the correction saved
as PNG + record, its area and objects counted, the view repainted), for ISBI image 00 scaled to
512², 2048² and 4096².

    python benchmarks/bench_review_large.py [--repeats 10] [--sizes 512 2048 4096]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
SCRATCH = tempfile.TemporaryDirectory(prefix="segstudio-bench-")
os.environ["SEGSTUDIO_DATA_DIR"] = SCRATCH.name  # the reviewer name and settings never reach the user's
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.core.imageio import read_image, write_image  # noqa: E402
from app.core.review import ReviewStore  # noqa: E402
from app.ui.review_panel import ReviewPanel  # noqa: E402

ISBI = Path(__file__).resolve().parents[2] / "shared" / "data" / "isbi2012"


def source_pair(folder: Path, size: int) -> tuple[Path, Path]:
    if ISBI.exists():
        image, mask = read_image(ISBI / "images" / "00.png"), read_image(ISBI / "masks" / "00.png")
    else:
        from app.core.demo_data import generate_sample
        image, mask = generate_sample("em", 0, 0, 512)
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    write_image(images / "a.png", cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR))
    write_image(masks / "a.png", cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST))
    return images, masks


def settle(app: QApplication, panel: ReviewPanel) -> None:
    """Run what the stroke queued (a pending redraw) and paint the canvas, as the screen would."""
    app.processEvents()
    panel.canvas.grab()


def measure(app: QApplication, size: int, repeats: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ReviewStore.create_from_folders(tmp / "review", *source_pair(tmp / "src", size)).close()
        panel = ReviewPanel(None)
        panel.resize(1400, 900)
        panel.show()
        panel.set_reviewer("bench")
        panel.set_store(ReviewStore.open(tmp / "review"))
        deadline = time.time() + 60
        while panel.session.data is None and time.time() < deadline:
            app.processEvents()
            time.sleep(0.005)
        settle(app, panel)
        tools, radius = panel.editing, 12
        panel.tools.radius.setValue(radius)
        panel.canvas.set_tool("brush")
        moves, ends = [], []
        for i in range(repeats + 1):
            x, y = 40.0 + 37 * i % (size - 80), 40.0 + 53 * i % (size - 80)
            tools._stroke_started(x, y)
            settle(app, panel)
            start = time.perf_counter()
            tools._stroke_moved(x + 20, y + 10)
            settle(app, panel)
            moves.append(time.perf_counter() - start)
            start = time.perf_counter()
            tools.end_stroke()
            settle(app, panel)
            ends.append(time.perf_counter() - start)
        saved = read_image(tmp / "review" / "corrections" / "a.png")
        assert np.array_equal(saved > 0, panel.session.working > 0), "the saved correction differs from the screen"
        panel.shutdown()
        panel.close()
        panel.deleteLater()
        app.processEvents()
    ms = lambda values: 1000 * statistics.median(values[1:])  # noqa: E731 - the first includes warm-up
    return ms(moves), ms(ends), 1000 * max(ends[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 4096])
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    print(f"{'image':>8s} {'pointer move ms':>16s} {'stroke end ms':>14s} {'worst end ms':>13s}")
    for size in args.sizes:
        move, end, worst = measure(app, size, args.repeats)
        print(f"{size:>7d}² {move:16.1f} {end:14.1f} {worst:13.1f}")


if __name__ == "__main__":
    main()
