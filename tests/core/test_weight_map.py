import numpy as np
import pytest
from scipy import ndimage

from app.core.weight_map import class_balance_weights, unet_weight_map


def naive_weight_map(mask, w0=10.0, sigma=5.0):
    """Straight from the paper: a full distance transform per object."""
    wc = class_balance_weights(mask)
    objects, count = ndimage.label(mask > 0)
    if count < 2:
        return wc
    dists = np.stack([ndimage.distance_transform_edt(objects != k) for k in range(1, count + 1)])
    dists.sort(axis=0)
    border = w0 * np.exp(-((dists[0] + dists[1]) ** 2) / (2 * sigma**2))
    return wc + np.where(mask == 0, border, 0.0)


def random_cells(seed, size=48):
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(6):
        y, x = rng.integers(4, size - 4, 2)
        r = rng.integers(3, 7)
        yy, xx = np.ogrid[:size, :size]
        mask[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = 1
    return mask


@pytest.mark.parametrize("seed", range(5))
def test_matches_the_papers_formula(seed):
    mask = random_cells(seed)
    fast = unet_weight_map(mask)
    assert fast.dtype == np.float32
    assert np.allclose(fast, naive_weight_map(mask), atol=2e-4)


def test_gap_between_two_objects_weighs_most():
    mask = np.zeros((20, 30), np.uint8)
    mask[5:15, 2:13] = 1
    mask[5:15, 15:28] = 1  # two-pixel gap at columns 13, 14
    w = unet_weight_map(mask)
    assert w[10, 13] > 8 and w[10, 13] == w.max()
    assert w[0, 0] < w[10, 13] / 3


def test_class_balance_only():
    mask = np.zeros((4, 4), np.uint8)
    mask[0, :] = 1  # 4 foreground, 12 background
    wc = class_balance_weights(mask)
    assert wc[0, 0] == pytest.approx(16 / (2 * 4)) and wc[3, 3] == pytest.approx(16 / (2 * 12))
    assert wc.mean() == pytest.approx(1.0)
    assert np.array_equal(unet_weight_map(mask), wc)  # one object: no border term
    assert np.array_equal(unet_weight_map(mask, balance=False, w0=0), np.ones((4, 4), np.float32))


def test_empty_mask():
    assert np.array_equal(unet_weight_map(np.zeros((5, 5), np.uint8)), np.ones((5, 5), np.float32))


def test_threaded_split_gives_the_same_map():
    mask = np.zeros((64, 64), np.uint8)
    for i in range(5):
        for j in range(5):
            mask[2 + 12 * i:11 + 12 * i, 2 + 12 * j:11 + 12 * j] = 1  # 25 objects, 3-pixel gaps
    assert np.allclose(unet_weight_map(mask, workers=3), unet_weight_map(mask), atol=1e-6)
    assert np.allclose(unet_weight_map(mask), naive_weight_map(mask), atol=2e-4)
