"""Augmentation speed: SegStudio's pipeline against a straightforward NumPy/SciPy version.

Both run the same steps on 512×512 8-bit samples on one core: flip, Gaussian noise,
brightness, elastic deformation (Simard: uniform noise, Gaussian smoothing, bilinear image /
nearest mask resampling with ``scipy.ndimage.map_coordinates`` as the reference U-Net
repositories do), random crop to 388×388 and mirror padding by 92 back to 572×572.

    python benchmarks/bench_augmentation.py [--samples 200] [--data ../shared/data/isbi2012]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from scipy.ndimage import gaussian_filter, map_coordinates  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.core.augment import Pipeline  # noqa: E402
from app.core.dataset import load_dataset  # noqa: E402

ALPHA, SIGMA, NOISE_STD, SHIFT, CROP, MARGIN = 300.0, 10.0, 0.03, 0.1, 388, 92

PIPELINE = {"seed": 0, "transforms": [
    {"name": "flip"},
    {"name": "gaussian_noise", "params": {"std": NOISE_STD}},
    {"name": "brightness", "params": {"max_shift": SHIFT}},
    {"name": "elastic", "params": {"alpha": ALPHA, "sigma": SIGMA}},
    {"name": "crop", "params": {"size": [CROP, CROP]}},
    {"name": "pad", "params": {"margin": MARGIN}},
]}


def reference_elastic(image, mask, rng):
    h, w = image.shape
    dx = gaussian_filter(rng.uniform(-1, 1, (h, w)), SIGMA, mode="constant") * ALPHA
    dy = gaussian_filter(rng.uniform(-1, 1, (h, w)), SIGMA, mode="constant") * ALPHA
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    coords = np.reshape(y + dy, (-1, 1)), np.reshape(x + dx, (-1, 1))
    image = map_coordinates(image, coords, order=1, mode="reflect").reshape(h, w)
    mask = map_coordinates(mask, coords, order=0, mode="reflect").reshape(h, w)
    return image, mask


def reference_pipeline(image, mask, rng):
    axes = [(1,), (0,), (0, 1)][rng.integers(3)]
    image, mask = np.flip(image, axes), np.flip(mask, axes)
    noisy = image.astype(np.float64) + rng.normal(0.0, NOISE_STD * 255, image.shape)
    image = np.clip(noisy, 0, 255).astype(np.uint8)
    shifted = image.astype(np.float64) + rng.uniform(-SHIFT, SHIFT) * 255
    image = np.clip(shifted, 0, 255).astype(np.uint8)
    image, mask = reference_elastic(image, mask, rng)
    y, x = rng.integers(image.shape[0] - CROP + 1), rng.integers(image.shape[1] - CROP + 1)
    image, mask = image[y:y + CROP, x:x + CROP], mask[y:y + CROP, x:x + CROP]
    return np.pad(image, MARGIN, mode="reflect"), np.pad(mask, MARGIN, mode="reflect")


def per_sample_ms(fn, pairs, repeats, rounds=5):
    """Mean time per sample of the fastest of ``rounds`` rounds (timeit's convention)."""
    fn(*pairs[0], 0)  # warm-up (caches, lazy imports)
    best = float("inf")
    for r in range(rounds):
        start = time.perf_counter()
        for i in range(repeats):
            fn(*pairs[i % len(pairs)], r * repeats + i)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best * 1e3


def load_pairs(data: Path | None):
    if data is not None and data.exists():
        dataset = load_dataset(data)
        return [(s.image[:, :, 0], s.mask) for s in dataset.samples if s.shape == (512, 512)][:10], str(data)
    from app.core.demo_data import generate_sample
    return [generate_sample("em", 0, i, size=512) for i in range(10)], "synthetic demo data"


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100, help="samples per timing round (5 rounds)")
    parser.add_argument("--data", type=Path, default=here.parent / "shared" / "data" / "isbi2012")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    pairs, source = load_pairs(args.data)
    pairs = [(img, (mask > 0).astype(np.uint8)) for img, mask in pairs]

    ours = Pipeline.from_dict(PIPELINE)
    elastic_only = Pipeline.from_dict({"transforms": [{"name": "elastic", "params": {"alpha": ALPHA, "sigma": SIGMA}}]})
    rng = np.random.default_rng(0)
    rows = [
        ("full pipeline", per_sample_ms(lambda im, m, k: ours(im, m, key=k), pairs, args.samples),
         per_sample_ms(lambda im, m, k: reference_pipeline(im, m, rng), pairs, max(10, args.samples // 5))),
        ("elastic only", per_sample_ms(lambda im, m, k: elastic_only(im, m, key=k), pairs, args.samples),
         per_sample_ms(lambda im, m, k: reference_elastic(im, m, rng), pairs, max(10, args.samples // 5))),
    ]
    print(f"data: {source}; 512×512 uint8 image + mask, one core (cv2 threads = 1)")
    print(f"{'steps':<16}{'SegStudio ms':>14}{'NumPy/SciPy ms':>16}{'speed-up':>10}")
    for name, mine, ref in rows:
        print(f"{name:<16}{mine:>14.2f}{ref:>16.2f}{ref / mine:>9.1f}x")


if __name__ == "__main__":
    main()
