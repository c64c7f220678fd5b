"""The real Review panel (offscreen Qt) on large images: what the GUI thread spends on one
pointer move of a brush stroke and on the end of a stroke (the correction saved as PNG +
record, its area and objects counted, the view repainted), and the longest stall of a 5 ms
heartbeat timer while moving to the next case (read and clean-up in a worker, then shown), for
ISBI images 00–03 scaled to 512², 2048² and 4096².

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
from PySide6.QtCore import QElapsedTimer, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.core.imageio import read_image, write_image  # noqa: E402
from app.core.review import ReviewStore  # noqa: E402
from app.ui.review_panel import ReviewPanel  # noqa: E402

ISBI = Path(__file__).resolve().parents[2] / "shared" / "data" / "isbi2012"


CASES = 4


def source_pairs(folder: Path, size: int) -> tuple[Path, Path]:
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    for i in range(CASES):
        if ISBI.exists():
            image, mask = read_image(ISBI / "images" / f"{i:02d}.png"), read_image(ISBI / "masks" / f"{i:02d}.png")
        else:
            from app.core.demo_data import generate_sample
            image, mask = generate_sample("em", 0, i, 512)
        write_image(images / f"{i}.png", cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR))
        write_image(masks / f"{i}.png", cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST))
    return images, masks


def settle(app: QApplication, panel: ReviewPanel) -> None:
    """Run what the stroke queued (a pending redraw) and paint the canvas, as the screen would."""
    app.processEvents()
    panel.canvas.grab()


def measure(app: QApplication, size: int, repeats: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ReviewStore.create_from_folders(tmp / "review", *source_pairs(tmp / "src", size)).close()
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
        saved = read_image(tmp / "review" / "corrections" / "0.png")
        assert np.array_equal(saved > 0, panel.session.working > 0), "the saved correction differs from the screen"
        stalls = []
        for name in [str(i) for i in range(1, CASES)] + ["0"]:
            stalls.append(longest_stall(app, lambda n=name: panel.session.go_to(n),
                                        lambda n=name: panel.session.current == n and panel.session.data is not None))
        panel.shutdown()
        panel.close()
        panel.deleteLater()
        app.processEvents()
    ms = lambda values: 1000 * statistics.median(values[1:])  # noqa: E731 - the first includes warm-up
    return ms(moves), ms(ends), 1000 * max(ends[1:]), max(stalls)


def longest_stall(app: QApplication, action, done, settle_s: float = 0.5) -> float:
    """The longest gap beyond 5 ms between ticks of a 5 ms timer, from ``action`` until ``done()``
    and ``settle_s`` after (the next case is prefetched then)."""
    clock, gaps = QElapsedTimer(), []
    clock.start()
    last = [clock.elapsed()]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0] - 5)
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(5)
    action()
    deadline = time.time() + 60
    while not done() and time.time() < deadline:
        app.processEvents()
        time.sleep(0.001)
    end = time.time() + settle_s
    while time.time() < end:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    return max(gaps, default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 4096])
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    print(f"{'image':>8s} {'pointer move ms':>16s} {'stroke end ms':>14s} {'worst end ms':>13s} "
          f"{'next case: longest stall ms':>28s}")
    for size in args.sizes:
        move, end, worst, stall = measure(app, size, args.repeats)
        print(f"{size:>7d}² {move:16.1f} {end:14.1f} {worst:13.1f} {stall:28.0f}")


if __name__ == "__main__":
    main()
