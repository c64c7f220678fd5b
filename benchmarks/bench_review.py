"""Review workspace speed on the ISBI 2012 set (30 images, 512×512; the labels stand in for
predicted masks): what a clinician waits for at each step.

- creating a review (pairing, reading and checking every image and mask),
- opening a case (image, mask and its watershed clean-up, done in a worker in the app),
- one pointer move of a brush stroke (paint + redraw the overlay, on the GUI thread),
- saving a correction (PNG + record, each written atomically with fsync),
- saving a decision in a 1,000-case review,
- exporting 30 accepted masks with the CSV report and HTML summary.

    python benchmarks/bench_review.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.core.review import ReviewStore  # noqa: E402
from app.core.review.edit import paint_stroke  # noqa: E402
from app.core.review.export import export_review  # noqa: E402
from app.ui.render import mask_overlay  # noqa: E402  (NumPy only; no Qt)

ISBI = Path(__file__).resolve().parents[2] / "shared" / "data" / "isbi2012"


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median, max) milliseconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        store = ReviewStore.create_from_folders(tmp / "review", ISBI / "images", ISBI / "masks")
        rows.append(("create a 30-case review", (time.perf_counter() - start) * 1000, None, "ms total"))
        names = [c.name for c in store.cases]
        params = store.watershed_params
        counter = iter(range(10 ** 9))

        def open_case():
            data = store.load_case(names[next(counter) % len(names)])
            data.watershed(params)

        rows.append(("open a case (read + watershed)", *timed(open_case, args.repeats), "ms"))
        mask = store.load_case(names[0]).prediction.copy()
        xs = iter(range(10 ** 9))

        def brush_move(region: bool):
            i = next(xs) % 400
            paint_stroke(mask, [(50 + i, 100), (51 + i, 101)], 6, 1)
            if region:  # what the panel redraws during a stroke: the stroke's box and a margin
                mask_overlay(mask[91:112, 41 + i:63 + i], 1.0, "both", (64, 200, 255))
            else:
                mask_overlay(mask, 1.0, "both", (64, 200, 255))

        rows.append(("brush move, whole overlay redrawn", *timed(lambda: brush_move(False), args.repeats * 5), "ms"))
        rows.append(("brush move, stroke's box redrawn (the app)", *timed(lambda: brush_move(True), args.repeats * 5),
                     "ms"))
        rows.append(("save a correction (PNG + record)",
                     *timed(lambda: store.save_correction(names[1], mask, "bench"), args.repeats), "ms"))
        rows.append(("save a decision (30 cases)",
                     *timed(lambda: store.decide(names[2], "accepted", "bench"), args.repeats), "ms"))
        big = store.record
        template = big.cases[3]
        import dataclasses

        big.cases = big.cases + [dataclasses.replace(template, name=f"extra_{i}", history=[])
                                 for i in range(1000 - len(big.cases))]
        rows.append(("save a decision (1,000 cases)",
                     *timed(lambda: store.decide("extra_5", "rejected", "bench"), args.repeats), "ms"))
        big.cases = big.cases[:30]
        for name in names:
            store.decide(name, "accepted", "bench")
        start = time.perf_counter()
        result = export_review(store, tmp / "export")
        rows.append((f"export {len(result.masks)} masks + CSV + HTML", (time.perf_counter() - start) * 1000, None,
                     "ms total"))
        store.close()
    print(f"{'step':45s} {'median':>10s} {'max':>10s}")
    for name, median, worst, unit in rows:
        print(f"{name:45s} {median:10.1f} {'' if worst is None else f'{worst:10.1f}':>10s} {unit}")


if __name__ == "__main__":
    main()
