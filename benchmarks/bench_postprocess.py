"""Watershed post-processing and U-Net weight-map speed on 512×512 ISBI 2012 maps.

The reference is the straightforward OpenCV recipe the reference EM project runs: read the
map from disk (cv2.imread, colour), then the nine steps with the same default parameters.
SegStudio's ``watershed_postprocess`` works on the in-memory map and also returns every step.
Inputs: the ISBI label mask, and a probability-like map (blurred mask plus noise).

    python benchmarks/bench_postprocess.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.core.imageio import read_image  # noqa: E402
from app.core.postprocess import watershed_postprocess  # noqa: E402
from app.core.weight_map import unet_weight_map  # noqa: E402

ISBI = Path(__file__).resolve().parents[2] / "shared" / "data" / "isbi2012"


def reference(path: str, fraction: float = 0.7) -> np.ndarray:
    img = cv2.imread(path)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    _, thresh = cv2.threshold(gray, 127, 255, cv2.THRESH_BINARY)
    kernel = np.ones((3, 3), np.uint8)
    closing = cv2.morphologyEx(thresh, cv2.MORPH_CLOSE, kernel, iterations=2)
    sure_bg = cv2.dilate(closing, kernel, iterations=3)
    dist = cv2.distanceTransform(closing, cv2.DIST_L2, 5)
    _, sure_fg = cv2.threshold(dist, fraction * dist.max(), 255, 0)
    sure_fg = np.uint8(sure_fg)
    unknown = cv2.subtract(sure_bg, sure_fg)
    _, markers = cv2.connectedComponents(sure_fg)
    markers = markers + 1
    markers[unknown == 255] = 0
    return cv2.watershed(img, markers)


def best_ms(fn, repeats: int, rounds: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if ISBI.exists():
        masks = [read_image(ISBI / "masks" / f"{i:02d}.png") for i in (0, 10, 29)]
        source = str(ISBI)
    else:
        from app.core.demo_data import generate_sample
        masks = [generate_sample("em", 0, i, 512)[1] for i in range(3)]
        source = "synthetic demo data"
    rng = np.random.default_rng(0)
    prob = np.clip(cv2.GaussianBlur(masks[0].astype(np.float32) / 255, (0, 0), 2)
                   + rng.normal(0, 0.05, masks[0].shape).astype(np.float32), 0, 1)

    print(f"data: {source}; 512×512; one core (cv2 threads = 1)")
    print(f"{'input':<22}{'reference ms':>14}{'SegStudio ms':>14}{'no steps ms':>13}{'speed-up':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, array in (("ISBI mask 00", masks[0]), ("probability map", prob)):
            path = str(Path(tmp) / "map.png")
            gray8 = array if array.dtype == np.uint8 else (array * 255 + 0.5).astype(np.uint8)
            cv2.imwrite(path, cv2.cvtColor(gray8, cv2.COLOR_GRAY2BGR))
            ref = best_ms(lambda: reference(path), args.repeats)
            ours = best_ms(lambda: watershed_postprocess(array), args.repeats)
            lean = best_ms(lambda: watershed_postprocess(array, keep_steps=False), args.repeats)
            print(f"{name:<22}{ref:>14.2f}{ours:>14.2f}{lean:>13.2f}{ref / ours:>9.2f}x")

    print()
    print(f"{'U-Net weight map':<22}{'1 thread ms':>12}{'2 threads ms':>14}{'objects':>10}")
    for index, mask in zip((0, 10, 29), masks):
        binary = (mask > 0).astype(np.uint8)
        one = best_ms(lambda: unet_weight_map(binary), args.repeats)
        two = best_ms(lambda: unet_weight_map(binary, workers=2), args.repeats)
        count = cv2.connectedComponents(binary, connectivity=4)[0] - 1
        print(f"{'ISBI mask %02d' % index:<22}{one:>12.2f}{two:>14.2f}{count:>10d}")


if __name__ == "__main__":
    main()
