"""Tests for the augmentation engine (app.core.augment)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.augment import (TRANSFORMS, Augmented, Pipeline, Step, Transform, available_augmentations,
                              build_transform, default_pipeline)
from app.core.augment.elastic import displacement_field, displacement_std
from app.core.augment.intensity import standard_normal
from app.core.registry import RegistryError

H, W = 16, 20  # non-square on purpose


def image(h=H, w=W, c=3, dtype=np.uint8, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random((h, w, c), dtype=np.float32).astype(dtype)
    high = 256 if dtype == np.uint8 else 65536
    return rng.integers(0, high, (h, w, c)).astype(dtype)


def labels(h=H, w=W) -> np.ndarray:
    """A mask whose every pixel is distinct: locates exactly where each pixel went."""
    return np.arange(h * w, dtype=np.uint16).reshape(h, w)


def blobs(h=32, w=32, classes=2, seed=0) -> np.ndarray:
    """A blocky multi-class mask (4×4 blocks of labels 0..classes-1)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, classes, (h // 4, w // 4)).astype(np.uint8)
    return np.kron(small, np.ones((4, 4), np.uint8))


def t(name, p=1.0, enabled=True, **params) -> Transform:
    return build_transform({"name": name, "p": p, "enabled": enabled, "params": params})


def run(transform: Transform, img, mask=None, valid=None, seed=0) -> Augmented:
    return transform.apply(Augmented(img, mask, valid), np.random.default_rng(seed))


def is_window(window: np.ndarray, source: np.ndarray) -> tuple[int, int] | None:
    """(y, x) of ``window`` inside ``source`` if it is an exact sub-array, else None."""
    h, w = window.shape[:2]
    for y in range(source.shape[0] - h + 1):
        for x in range(source.shape[1] - w + 1):
            if np.array_equal(source[y:y + h, x:x + w], window):
                return y, x
    return None


def frame_valid(h, w, top, bottom, left, right) -> np.ndarray:
    valid = np.zeros((h + top + bottom, w + left + right), bool)
    valid[top:top + h, left:left + w] = True
    return valid


# ============================================================================ registry / listing


def test_all_transforms_registered():
    expected = {"flip", "rotate90", "rotate", "scale", "crop", "pad", "elastic",
                "gaussian_noise", "uniform_noise", "brightness", "contrast"}
    assert set(available_augmentations()) == expected
    assert set(TRANSFORMS.names()) == expected
    for name in expected:
        assert TRANSFORMS.get(name).meta["kind"] in ("geometric", "intensity")


# ============================================================================ flip


@pytest.mark.parametrize("direction, reference", [
    ("horizontal", np.fliplr),
    ("vertical", np.flipud),
    ("both", lambda a: np.flipud(np.fliplr(a))),
])
def test_flip_directions(direction, reference):
    img, mask = image(), labels()
    valid = np.zeros((H, W), bool)
    valid[:, :3] = True
    valid[:2, :] = True
    out = run(t("flip", direction=direction), img, mask, valid)
    assert np.array_equal(out.image, reference(img))
    assert np.array_equal(out.mask, reference(mask))
    assert np.array_equal(out.valid, reference(valid))


def test_flip_horizontal_mirrors_columns_explicitly():
    img = np.arange(H * W, dtype=np.uint16).reshape(H, W, 1)
    out = run(t("flip", direction="horizontal"), img)
    assert np.array_equal(out.image[:, 0, 0], img[:, W - 1, 0])
    assert np.array_equal(out.image[:, W - 1, 0], img[:, 0, 0])
    assert np.array_equal(out.image[0, :, 0], img[0, ::-1, 0])


def test_flip_random_picks_each_of_three():
    img, mask = image(), labels()
    refs = {"horizontal": np.fliplr(mask), "vertical": np.flipud(mask), "both": mask[::-1, ::-1]}
    seen = set()
    for seed in range(30):
        out = run(t("flip"), img, mask, seed=seed)
        found = [d for d, ref in refs.items() if np.array_equal(out.mask, ref)]
        assert len(found) == 1
        seen.add(found[0])
        # image moved exactly like the mask
        ref_img = {"horizontal": np.fliplr(img), "vertical": np.flipud(img), "both": img[::-1, ::-1]}[found[0]]
        assert np.array_equal(out.image, ref_img)
    assert seen == {"horizontal", "vertical", "both"}


# ============================================================================ rotate90


def test_rotate90_matches_np_rot90_and_mask_moves_identically():
    img, mask = image(), labels()
    seen = set()
    for seed in range(20):
        out = run(t("rotate90"), img, mask, seed=seed)
        ks = [k for k in range(4) if np.array_equal(out.mask, np.rot90(mask, k))]
        assert len(ks) == 1
        k = ks[0]
        seen.add(k)
        assert np.array_equal(out.image, np.rot90(img, k, axes=(0, 1)))
        expected_shape = (H, W) if k % 2 == 0 else (W, H)
        assert out.image.shape == expected_shape + (3,)
        assert out.valid is None
    assert seen == {0, 1, 2, 3}


def test_rotate90_moves_valid():
    img, mask = image(), labels()
    valid = np.zeros((H, W), bool)
    valid[0, :] = True
    for seed in range(8):
        out = run(t("rotate90"), img, mask, valid, seed=seed)
        k = next(k for k in range(4) if np.array_equal(out.mask, np.rot90(mask, k)))
        assert np.array_equal(out.valid, np.rot90(valid, k))


# ============================================================================ crop


@pytest.mark.parametrize("position, y, x", [
    ("top_left", 0, 0),
    ("top_right", 0, W - 8),
    ("bottom_left", H - 6, 0),
    ("bottom_right", H - 6, W - 8),
    ("center", (H - 6) // 2, (W - 8) // 2),
])
def test_crop_named_positions(position, y, x):
    img, mask = image(), labels()
    out = run(t("crop", size=[6, 8], position=position), img, mask)
    assert np.array_equal(out.image, img[y:y + 6, x:x + 8])
    assert np.array_equal(out.mask, mask[y:y + 6, x:x + 8])
    assert out.valid is None


def test_crop_keeps_valid_window():
    img, mask = image(), labels()
    valid = np.random.default_rng(3).random((H, W)) < 0.5
    out = run(t("crop", size=[6, 8], position="bottom_right"), img, mask, valid)
    assert np.array_equal(out.valid, valid[H - 6:, W - 8:])


def test_random_crop_is_window_of_source():
    img, mask = image(), labels()
    origins = set()
    for seed in range(12):
        out = run(t("crop", size=[5, 7]), img, mask, seed=seed)
        assert out.image.shape == (5, 7, 3) and out.mask.shape == (5, 7)
        y, x = divmod(int(out.mask[0, 0]), W)  # mask pixel = its source index
        assert 0 <= y <= H - 5 and 0 <= x <= W - 7
        assert np.array_equal(out.mask, mask[y:y + 5, x:x + 7])
        assert np.array_equal(out.image, img[y:y + 5, x:x + 7])
        origins.add((y, x))
    assert len(origins) > 1  # really random


def test_crop_of_full_size_is_identity():
    img, mask = image(), labels()
    out = run(t("crop", size=[H, W]), img, mask)
    assert np.array_equal(out.image, img) and np.array_equal(out.mask, mask)


def test_crop_larger_than_image_mirror_pads_and_marks_invalid():
    img, mask = image(), labels()
    out = run(t("crop", size=[H + 4, W + 6], position="top_left"), img, mask)
    pads = ((2, 2), (3, 3))
    assert np.array_equal(out.image, np.pad(img, pads + ((0, 0),), mode="reflect"))
    assert np.array_equal(out.mask, np.pad(mask, pads, mode="reflect"))
    assert np.array_equal(out.valid, frame_valid(H, W, 2, 2, 3, 3))


def test_crop_taller_than_image_pads_rows_only():
    img, mask = image(), labels()
    for seed in range(4):
        out = run(t("crop", size=[H + 3, 9]), img, mask, seed=seed)
        assert out.image.shape == (H + 3, 9, 3)
        padded = np.pad(mask, ((1, 2), (0, 0)), mode="reflect")
        origin = is_window(out.mask, padded)
        assert origin is not None and origin[0] == 0
        y, x = origin
        assert np.array_equal(out.image, np.pad(img, ((1, 2), (0, 0), (0, 0)), mode="reflect")[:, x:x + 9])
        expected_valid = np.ones((H + 3, 9), bool)
        expected_valid[0] = expected_valid[-2:] = False
        assert np.array_equal(out.valid, expected_valid)


# ============================================================================ pad


def test_pad_mirror_is_reflect_101():
    img, mask = image(), labels()
    out = run(t("pad", margin=3, border="mirror"), img, mask)
    assert np.array_equal(out.image, np.pad(img, ((3, 3), (3, 3), (0, 0)), mode="reflect"))
    assert np.array_equal(out.mask, np.pad(mask, 3, mode="reflect"))
    # no edge repeated: the pixel next to the edge is mirrored, not the edge itself
    assert np.array_equal(out.image[2, 3:-3], img[1])
    assert np.array_equal(out.valid, frame_valid(H, W, 3, 3, 3, 3))


def test_pad_constant_is_zeros():
    img, mask = image(), labels() + 1
    out = run(t("pad", margin=2, border="constant"), img, mask)
    assert np.array_equal(out.image, np.pad(img, ((2, 2), (2, 2), (0, 0)), mode="constant"))
    assert np.array_equal(out.mask, np.pad(mask, 2, mode="constant"))
    assert np.array_equal(out.valid, frame_valid(H, W, 2, 2, 2, 2))


def test_pad_to_size():
    img, mask = image(), labels()
    out = run(t("pad", margin=1, to_size=27), img, mask)
    # margin 1 -> 18×22, then up to 27: rows +9 (4 top, 5 bottom), cols +5 (2 left, 3 right)
    top, bottom, left, right = 1 + 4, 1 + 5, 1 + 2, 1 + 3
    assert out.image.shape == (27, 27, 3) and out.mask.shape == (27, 27)
    assert np.array_equal(out.image, np.pad(img, ((top, bottom), (left, right), (0, 0)), mode="reflect"))
    assert np.array_equal(out.valid, frame_valid(H, W, top, bottom, left, right))


def test_pad_to_size_smaller_than_image_only_adds_margin():
    img = image()
    out = run(t("pad", margin=0, to_size=18), img)
    assert out.image.shape == (18, W, 3)
    assert np.array_equal(out.image, np.pad(img, ((1, 1), (0, 0), (0, 0)), mode="reflect"))
    assert np.array_equal(out.valid, frame_valid(H, W, 1, 1, 0, 0))


def test_pad_zero_is_noop():
    img, mask = image(), labels()
    out = run(t("pad", margin=0, to_size=0), img, mask)
    assert np.array_equal(out.image, img) and np.array_equal(out.mask, mask) and out.valid is None


def test_pad_keeps_existing_invalid_pixels():
    img = image()
    valid = np.ones((H, W), bool)
    valid[5, 6] = False
    out = run(t("pad", margin=2), img, None, valid)
    expected = frame_valid(H, W, 2, 2, 2, 2)
    expected[7, 8] = False
    assert np.array_equal(out.valid, expected)
    assert out.mask is None


# ============================================================================ rotate / scale


@pytest.mark.parametrize("spec", [{"name": "rotate", "params": {"max_angle": 40.0}},
                                  {"name": "scale", "params": {"factor": [0.5, 2.0]}},
                                  {"name": "rotate", "params": {"max_angle": 30.0, "border": "constant"}}])
def test_rotate_scale_keep_size_and_label_values(spec):
    img, mask = image(), blobs(H, W, classes=4)
    mask[mask == 3] = 7  # non-consecutive labels
    labels_in = set(np.unique(mask))
    for seed in range(5):
        out = build_transform(spec).apply(Augmented(img, mask, None), np.random.default_rng(seed))
        assert out.image.shape == img.shape and out.image.dtype == img.dtype
        assert out.mask.shape == mask.shape and out.mask.dtype == mask.dtype
        assert set(np.unique(out.mask)) <= labels_in | ({0} if spec["params"].get("border") == "constant" else set())
        assert out.valid.shape == (H, W) and out.valid.dtype == bool


def test_rotate_zero_angle_and_unit_scale_are_identity():
    img, mask = image(), labels()
    for tr in (t("rotate", max_angle=0.0), t("scale", factor=[1.0, 1.0])):
        out = run(tr, img, mask)
        assert np.array_equal(out.image, img)
        assert np.array_equal(out.mask, mask)
        assert out.valid.all()


def test_rotate_changes_image_and_marks_corners_invalid():
    img, mask = image(32, 32), blobs()
    out = run(t("rotate", max_angle=180.0), img, mask, seed=0)
    angle = np.random.default_rng(0).uniform(-180.0, 180.0)
    assert abs(angle) > 10  # guard: this seed really rotates
    assert not np.array_equal(out.image, img)
    assert not out.valid[0, 0] or not out.valid[0, -1] or not out.valid[-1, 0] or not out.valid[-1, -1]
    assert out.valid[16, 16]


def test_scale_down_marks_border_invalid_scale_up_does_not():
    img, mask = image(), labels()
    down = run(t("scale", factor=[0.5, 0.5]), img, mask)
    assert not down.valid[0].any() and not down.valid[:, 0].any()
    assert down.valid[H // 2, W // 2]
    up = run(t("scale", factor=[2.0, 2.0]), img, mask)
    assert up.valid.all()
    # zoom ×2 about the centre: the output centre pixel comes from the input centre region
    assert set(np.unique(up.mask)) < set(np.unique(mask))


# ============================================================================ elastic


def test_elastic_binary_mask_stays_binary_and_image_changes():
    img, mask = image(32, 32), blobs(classes=2)
    out = run(t("elastic", alpha=300.0, sigma=6.0), img, mask)
    assert set(np.unique(out.mask)) <= {0, 1}
    assert out.image.shape == img.shape and out.image.dtype == img.dtype
    assert not np.array_equal(out.image, img)
    assert not np.array_equal(out.mask, mask)


def test_elastic_multiclass_mask_values_subset():
    img, mask = image(32, 32), blobs(classes=5)
    mask[mask == 4] = 200
    for border in ("mirror", "constant"):
        out = run(t("elastic", alpha=500.0, sigma=5.0, border=border), img, mask)
        allowed = set(np.unique(mask)) | ({0} if border == "constant" else set())
        assert set(np.unique(out.mask)) <= allowed


def test_elastic_alpha_zero_is_identity():
    img, mask = image(32, 24), blobs(32, 24, classes=3)
    out = run(t("elastic", alpha=0.0), img, mask)
    assert np.array_equal(out.image, img)
    assert np.array_equal(out.mask, mask)
    assert out.valid is None or out.valid.all()


def test_elastic_keeps_given_valid_shape():
    img, mask = image(32, 32), blobs()
    valid = np.ones((32, 32), bool)
    valid[:, :4] = False
    out = run(t("elastic", alpha=0.0), img, mask, valid)
    assert np.array_equal(out.valid, valid)


def test_displacement_field_shape_dtype():
    field = displacement_field((24, 40), 300.0, 10.0, np.random.default_rng(0))
    assert field.shape == (24, 40, 2) and field.dtype == np.float32


def test_displacement_std_formula():
    assert displacement_std(0.0, 10.0) == 0.0
    assert displacement_std(300.0, 10.0) == pytest.approx(300.0 / (20.0 * np.sqrt(3 * np.pi)))
    assert displacement_std(600.0, 10.0) == pytest.approx(2 * displacement_std(300.0, 10.0))


@pytest.mark.parametrize("alpha, sigma", [(300.0, 10.0), (100.0, 4.0)])
def test_displacement_field_std_matches_simard(alpha, sigma):
    stds = [displacement_field((256, 256), alpha, sigma, np.random.default_rng(s)).std() for s in range(4)]
    assert np.mean(stds) == pytest.approx(displacement_std(alpha, sigma), rel=0.15)


def test_displacement_field_seeded():
    a = displacement_field((32, 32), 300.0, 10.0, np.random.default_rng(5))
    b = displacement_field((32, 32), 300.0, 10.0, np.random.default_rng(5))
    c = displacement_field((32, 32), 300.0, 10.0, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# ============================================================================ intensity


INTENSITY = [("gaussian_noise", {"std": 0.2}), ("uniform_noise", {"intensity": 0.2}),
             ("brightness", {"max_shift": 0.3}), ("contrast", {"factor": [0.2, 3.0]})]


@pytest.mark.parametrize("name, params", INTENSITY)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_intensity_never_touches_mask_or_valid(name, params, dtype):
    img, mask = image(dtype=dtype), labels()
    valid = np.random.default_rng(1).random((H, W)) < 0.5
    out = run(t(name, **params), img, mask.copy(), valid.copy())
    assert np.array_equal(out.mask, mask) and np.array_equal(out.valid, valid)
    assert out.image.dtype == dtype and out.image.shape == img.shape
    assert not np.array_equal(out.image, img)
    none = run(t(name, **params), img, None, None)
    assert none.mask is None and none.valid is None


@pytest.mark.parametrize("channels", [1, 3, 5])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_brightness_clips_at_dtype_max(channels, dtype):
    top = np.iinfo(dtype).max
    img = np.full((H, W, channels), top - 5, dtype)
    tr = t("brightness", max_shift=1.0)
    saw_clip = False
    for seed in range(6):
        u = np.random.default_rng(seed).uniform(-1.0, 1.0)
        expected = np.clip(np.rint(top - 5 + u * float(top)), 0, top)
        out = run(tr, img, seed=seed)
        assert out.image.dtype == dtype
        assert len(np.unique(out.image)) == 1  # one shift for every pixel and channel
        # exact up to float32 rounding of the shift; exactly the maximum where clipped
        assert abs(int(out.image.flat[0]) - expected) <= 1
        if expected == top:
            assert np.all(out.image == top)
            saw_clip = True
    assert saw_clip


@pytest.mark.parametrize("name, params", INTENSITY[:3])
@pytest.mark.parametrize("channels", [1, 3, 5])
def test_noise_on_black_never_negative(name, params, channels):
    for dtype in (np.uint8, np.uint16):
        img = np.zeros((H, W, channels), dtype)
        out = run(t(name, **params), img, seed=2)
        assert out.image.dtype == dtype
        assert out.image.min() == 0  # clipped, no wrap-around to the top of the range
        assert out.image.max() <= np.iinfo(dtype).max
        if name != "brightness":
            assert out.image.max() > 0 and (out.image == 0).mean() > 0.3  # about half clipped


def test_uint8_noise_on_white_never_wraps():
    img = np.full((H, W, 3), 255, np.uint8)
    out = run(t("gaussian_noise", std=0.3), img)
    assert out.image.max() == 255 and out.image.min() < 255
    assert (out.image == 255).mean() > 0.3


@pytest.mark.parametrize("channels", [1, 3, 5])
def test_gaussian_noise_std_on_grey_uint16(channels):
    img = np.full((64, 64, channels), 32768, np.uint16)
    out = run(t("gaussian_noise", std=0.01), img, seed=3)
    diff = out.image.astype(np.float64) - 32768
    assert diff.std() == pytest.approx(0.01 * 65535, rel=0.05)
    assert abs(diff.mean()) < 0.01 * 65535 * 0.1


def test_gaussian_noise_std_uint8():
    img = np.full((64, 64, 3), 128, np.uint8)
    out = run(t("gaussian_noise", std=0.05), img)
    diff = out.image.astype(np.float64) - 128
    assert diff.std() == pytest.approx(0.05 * 255, rel=0.05)


def test_uniform_noise_bounds():
    img = np.full((64, 64, 3), 128, np.uint8)
    out = run(t("uniform_noise", intensity=0.1), img)
    diff = out.image.astype(np.int32) - 128
    assert np.abs(diff).max() <= 26  # 0.1 × 255 = 25.5, rounded
    assert diff.min() <= -20 and diff.max() >= 20
    assert diff.std() == pytest.approx(25.5 / np.sqrt(3), rel=0.1)


def test_standard_normal_helper():
    a = standard_normal(np.random.default_rng(0), (200, 200), 2.0)
    assert a.dtype == np.float32 and a.shape == (200, 200)
    assert a.std() == pytest.approx(2.0, rel=0.03) and abs(a.mean()) < 0.05
    b = standard_normal(np.random.default_rng(0), (200, 200), 2.0)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("name, params", INTENSITY)
def test_float32_stays_float32(name, params):
    img = image(dtype=np.float32)
    out = run(t(name, **params), img)
    assert out.image.dtype == np.float32 and out.image.shape == img.shape
    assert np.isfinite(out.image).all()


def test_brightness_exact_on_float32():
    img = image(dtype=np.float32)
    out = run(t("brightness", max_shift=0.2), img, seed=4)
    u = np.random.default_rng(4).uniform(-1.0, 1.0)
    np.testing.assert_allclose(out.image, img + np.float32(u * 0.2), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 5])
def test_contrast_factor_one_is_identity(dtype, channels):
    img = image(c=channels, dtype=dtype)
    out = run(t("contrast", factor=[1.0, 1.0]), img)
    assert out.image.dtype == dtype
    assert np.array_equal(out.image, img)


def test_contrast_factor_one_float32_identity():
    img = image(dtype=np.float32)
    out = run(t("contrast", factor=[1.0, 1.0]), img)
    assert out.image.dtype == np.float32
    np.testing.assert_allclose(out.image, img, rtol=0, atol=1e-6)


def test_contrast_factor_zero_gives_per_channel_mean():
    img = image(c=3)
    out = run(t("contrast", factor=[0.0, 0.0]), img)
    means = np.rint(img.reshape(-1, 3).mean(axis=0))
    for c in range(3):
        assert np.all(out.image[:, :, c] == means[c])


def test_contrast_stretch_clips_and_matches_formula():
    img = image(c=3)
    out = run(t("contrast", factor=[2.0, 2.0]), img)
    mean = img.reshape(-1, 3).mean(axis=0)
    expected = np.clip(np.rint((img - mean) * 2.0 + mean), 0, 255)
    assert np.abs(out.image.astype(np.int32) - expected).max() <= 1
    assert out.image.min() == 0 and out.image.max() == 255


# ============================================================================ any channel count


ALL_SPECS = [
    {"name": "flip"}, {"name": "rotate90"}, {"name": "rotate", "params": {"max_angle": 30.0}},
    {"name": "scale", "params": {"factor": [0.7, 1.4]}}, {"name": "crop", "params": {"size": [8, 12]}},
    {"name": "pad", "params": {"margin": 2}}, {"name": "elastic", "params": {"alpha": 200.0, "sigma": 5.0}},
    {"name": "gaussian_noise"}, {"name": "uniform_noise"}, {"name": "brightness"}, {"name": "contrast"},
]


def _expected_hw(spec, out_mask_shape):
    name = spec["name"]
    if name == "crop":
        return (8, 12)
    if name == "pad":
        return (H + 4, W + 4)
    if name == "rotate90":
        assert out_mask_shape in ((H, W), (W, H))
        return out_mask_shape
    return (H, W)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=[s["name"] for s in ALL_SPECS])
@pytest.mark.parametrize("channels", [1, 3, 5])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_every_transform_any_channel_count(spec, channels, dtype):
    img, mask = image(c=channels, dtype=dtype), labels()
    out = build_transform(spec).apply(Augmented(img, mask, None), np.random.default_rng(1))
    hw = _expected_hw(spec, out.mask.shape)
    assert out.image.shape == hw + (channels,)
    assert out.image.dtype == dtype
    assert out.mask.shape == hw and out.mask.dtype == mask.dtype
    assert out.valid is None or (out.valid.shape == hw and out.valid.dtype == bool)


def test_grayscale_2d_input_becomes_hw1():
    img2d = image(c=1)[:, :, 0]
    out = Pipeline([t("flip", direction="vertical"), t("gaussian_noise")])(img2d, labels())
    assert out.image.shape == (H, W, 1)
    out = Pipeline([])(img2d)
    assert out.image.shape == (H, W, 1) and np.array_equal(out.image[:, :, 0], img2d)
    assert out.mask is None and out.valid is None


# ============================================================================ pipeline seeding


def mixed_pipeline(std=0.05, seed=7) -> Pipeline:
    return Pipeline([t("flip"), t("gaussian_noise", std=std), t("crop", size=[8, 10]), t("rotate90"),
                     t("brightness", p=0.5)], seed=seed)


def same(a: Augmented, b: Augmented) -> bool:
    def eq(x, y):
        return (x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))
    return eq(a.image, b.image) and eq(a.mask, b.mask) and eq(a.valid, b.valid)


def test_same_key_same_output():
    img, mask = image(), labels()
    a = mixed_pipeline()(img, mask, key=(3, 11))
    b = mixed_pipeline()(img, mask, key=(3, 11))
    assert same(a, b)


def test_int_key_equals_one_tuple_key():
    img, mask = image(), labels()
    p = mixed_pipeline()
    assert same(p(img, mask, key=5), p(img, mask, key=(5,)))


def test_different_key_or_seed_differs():
    img, mask = image(), labels()
    p = mixed_pipeline()
    base = p(img, mask, key=(0, 0))
    assert not same(base, p(img, mask, key=(0, 1)))
    assert not same(base, p(img, mask, key=(1, 0)))
    assert not same(base, mixed_pipeline(seed=8)(img, mask, key=(0, 0)))


def test_input_arrays_not_modified():
    img, mask = image(), labels()
    img0, mask0 = img.copy(), mask.copy()
    default_pipeline()(img, mask, key=1)
    mixed_pipeline()(img, mask, key=1)
    assert np.array_equal(img, img0) and np.array_equal(mask, mask0)


@pytest.mark.parametrize("via", ["json", "dict"])
def test_rebuilt_pipeline_gives_identical_output(via):
    img, mask = image(), labels()
    p = mixed_pipeline()
    q = Pipeline.from_json(p.to_json()) if via == "json" else Pipeline.from_dict(p.to_dict())
    for key in [(0,), (1, 2), (9, 9)]:
        assert same(p(img, mask, key=key), q(img, mask, key=key))


def test_changing_one_param_leaves_other_draws_unchanged():
    img, mask = image(), labels()
    for key in range(6):
        a = mixed_pipeline(std=0.01)(img, mask, key=key)
        b = mixed_pipeline(std=0.3)(img, mask, key=key)
        # mask is untouched by noise, so it records flip direction, crop window and rotation
        assert np.array_equal(a.mask, b.mask)
        assert not np.array_equal(a.image, b.image)


def test_removing_an_intensity_transform_leaves_geometry_unchanged():
    img, mask = image(), labels()
    full = mixed_pipeline()
    reduced = Pipeline([tr for tr in full.transforms if tr.name != "gaussian_noise"], seed=full.seed)
    for key in range(4):
        assert np.array_equal(full(img, mask, key=key).mask, reduced(img, mask, key=key).mask)


def test_repeated_transform_gets_own_draws():
    img, mask = image(), labels()
    p = Pipeline([t("crop", size=[12, 12]), t("crop", size=[6, 6])])
    steps = p.trace(img, mask, key=0)
    first = Pipeline([t("crop", size=[12, 12])]).trace(img, mask, key=0)
    assert np.array_equal(steps[0].result.mask, first[0].result.mask)
    assert steps[1].result.mask.shape == (6, 6)


def test_disabled_and_p0_skipped_p1_applied():
    img, mask = image(), labels()
    for key in range(10):
        steps = Pipeline([t("flip", enabled=False), t("rotate90", p=0.0), t("pad", p=1.0, margin=1)]).trace(
            img, mask, key=key)
        assert [s.applied for s in steps] == [False, False, True]
        assert np.array_equal(steps[0].result.image, img) and np.array_equal(steps[1].result.mask, mask)
        assert steps[2].result.image.shape == (H + 2, W + 2, 3)


def test_disabled_pipeline_output_equals_input():
    img, mask = image(), labels()
    p = Pipeline([t("flip", enabled=False), t("gaussian_noise", p=0.0), t("crop", size=[4, 4], enabled=False)])
    out = p(img, mask, key=3)
    assert np.array_equal(out.image, img) and np.array_equal(out.mask, mask) and out.valid is None


def test_probability_half_applies_sometimes():
    img = image()
    applied = [Pipeline([t("flip", p=0.5)]).trace(img, key=k)[0].applied for k in range(60)]
    assert 10 < sum(applied) < 50


def test_trace_one_step_per_transform_last_equals_call():
    img, mask = image(), labels()
    p = mixed_pipeline()
    for key in range(3):
        steps = p.trace(img, mask, key=key)
        assert len(steps) == len(p.transforms)
        assert all(isinstance(s, Step) for s in steps)
        assert [s.name for s in steps] == [tr.name for tr in p.transforms]
        assert same(steps[-1].result, p(img, mask, key=key))


def test_outputs_are_c_contiguous():
    img, mask = image(), labels()
    p = Pipeline([t("crop", size=[H + 2, W]), t("flip", direction="both"), t("rotate90")])
    for key in range(4):
        out = p(img, mask, key=key)
        assert out.image.flags.c_contiguous and out.mask.flags.c_contiguous and out.valid.flags.c_contiguous
    # a pure crop/flip without padding still returns contiguous views' copies
    out = Pipeline([t("flip", direction="horizontal"), t("crop", size=[5, 5])])(img, mask)
    assert out.image.flags.c_contiguous and out.mask.flags.c_contiguous


def test_non_integer_seed_rejected():
    for bad in ("1", 1.5, True):
        with pytest.raises(RegistryError, match="seed must be an integer"):
            Pipeline([], seed=bad)


def test_empty_pipeline_is_identity():
    img, mask = image(), labels()
    out = Pipeline()(img, mask)
    assert np.array_equal(out.image, img) and np.array_equal(out.mask, mask) and out.valid is None
    assert Pipeline().trace(img, mask) == []


# ============================================================================ JSON round trip / errors


def test_to_dict_shape_and_round_trip():
    p = Pipeline([t("scale", p=0.25, factor=(0.5, 1.5), border="constant"),
                  t("flip", enabled=False, direction="vertical"), t("crop", size=(32, 48), position="center")],
                 seed=42)
    d = p.to_dict()
    assert d["version"] == 1 and d["seed"] == 42
    assert d["transforms"][0] == {"name": "scale", "enabled": True, "p": 0.25,
                                  "params": {"factor": [0.5, 1.5], "border": "constant"}}
    assert d["transforms"][1]["enabled"] is False
    assert d["transforms"][2]["params"] == {"size": [32, 48], "position": "center"}
    assert json.loads(p.to_json()) == d

    for q in (Pipeline.from_json(p.to_json()), Pipeline.from_dict(d)):
        assert q.seed == 42
        assert [tr.name for tr in q.transforms] == ["scale", "flip", "crop"]
        assert [tr.p for tr in q.transforms] == [0.25, 1.0, 1.0]
        assert [tr.enabled for tr in q.transforms] == [True, False, True]
        assert q.transforms[0].params == {"factor": (0.5, 1.5), "border": "constant"}
        assert q.transforms[2].params == {"size": (32, 48), "position": "center"}
        assert [tr.params for tr in q.transforms] == [tr.params for tr in p.transforms]
        assert q.to_dict() == d


def test_build_transform_fills_defaults():
    tr = build_transform({"name": "elastic"})
    assert tr.p == 1.0 and tr.enabled is True
    assert tr.params == {"alpha": 300.0, "sigma": 10.0, "border": "mirror"}
    assert "Elastic" in repr(tr) and "alpha=300.0" in repr(tr)


def test_from_dict_defaults():
    p = Pipeline.from_dict({})
    assert p.seed == 0 and p.transforms == []


def test_unknown_transform_lists_valid_names():
    with pytest.raises(RegistryError) as info:
        Pipeline.from_dict({"transforms": [{"name": "sharpen"}]})
    msg = str(info.value)
    assert "sharpen" in msg
    for name in available_augmentations():
        assert name in msg


def test_unknown_param_named_and_valid_listed():
    with pytest.raises(RegistryError, match="'rotate' has no parameter angle; valid: max_angle, border"):
        build_transform({"name": "rotate", "params": {"angle": 10}})


@pytest.mark.parametrize("spec, param", [
    ({"name": "gaussian_noise", "params": {"std": 1.5}}, "std"),
    ({"name": "gaussian_noise", "params": {"std": -0.1}}, "std"),
    ({"name": "crop", "params": {"size": [0, 10]}}, "size"),
    ({"name": "scale", "params": {"factor": [1.5, 0.5]}}, "factor"),
    ({"name": "pad", "params": {"margin": 2.5}}, "margin"),
    ({"name": "flip", "p": 1.5}, "p"),
    ({"name": "flip", "p": -0.1}, "p"),
])
def test_out_of_range_rejected_with_param_name(spec, param):
    with pytest.raises(RegistryError, match=rf"'{spec['name']}': {param}\b"):
        build_transform(spec)


@pytest.mark.parametrize("spec, param", [
    ({"name": "gaussian_noise", "params": {"std": "0.1"}}, "std"),
    ({"name": "pad", "params": {"margin": True}}, "margin"),
    ({"name": "flip", "params": {"direction": 1}}, "direction"),
    ({"name": "crop", "params": {"size": 64}}, "size"),
    ({"name": "contrast", "params": {"factor": "wide"}}, "factor"),
    ({"name": "flip", "p": "often"}, "p"),
    ({"name": "flip", "p": True}, "p"),
])
def test_wrong_type_rejected_with_param_name(spec, param):
    with pytest.raises(RegistryError, match=rf"'{spec['name']}': {param}\b"):
        build_transform(spec)


def test_unknown_choice_lists_choices():
    with pytest.raises(RegistryError, match="border = 'wrap' is not one of: mirror, constant"):
        build_transform({"name": "pad", "params": {"border": "wrap"}})


def test_nan_from_json_rejected_with_registry_error():
    # json.loads accepts NaN; it must not slip through as a float parameter
    with pytest.raises(RegistryError, match="std"):
        Pipeline.from_json('{"transforms": [{"name": "gaussian_noise", "params": {"std": NaN}}]}')


@pytest.mark.parametrize("literal", ["NaN", "Infinity"])
def test_non_finite_int_param_from_json_rejected_with_registry_error(literal):
    # json.loads accepts NaN / Infinity; an int parameter must reject them as a RegistryError
    with pytest.raises(RegistryError, match="margin"):
        Pipeline.from_json('{"transforms": [{"name": "pad", "params": {"margin": %s}}]}' % literal)


def test_unknown_transform_key_rejected():
    with pytest.raises(RegistryError, match="unknown key prob; valid: name, p, enabled, params"):
        build_transform({"name": "flip", "prob": 0.5})


@pytest.mark.parametrize("spec", [{}, {"p": 0.5}, "flip", None])
def test_transform_without_name_rejected(spec):
    with pytest.raises(RegistryError, match="needs a name"):
        build_transform(spec)


def test_unknown_top_level_key_rejected():
    with pytest.raises(RegistryError, match="pipeline: unknown key steps; valid: version, seed, transforms"):
        Pipeline.from_dict({"version": 1, "steps": []})


@pytest.mark.parametrize("version", [0, 2, "1"])
def test_unsupported_version_rejected(version):
    with pytest.raises(RegistryError, match=f"pipeline version {version!r} is not supported"):
        Pipeline.from_dict({"version": version, "transforms": []})


def test_non_object_pipeline_rejected():
    with pytest.raises(RegistryError, match="a pipeline is a JSON object, got list"):
        Pipeline.from_json("[]")


def test_default_pipeline_builds_and_runs():
    p = default_pipeline(seed=3)
    assert p.seed == 3
    assert [tr.name for tr in p.transforms] == ["flip", "rotate90", "elastic", "brightness", "contrast",
                                                "gaussian_noise"]
    img, mask = image(32, 32), blobs(classes=2)
    outputs = [p(img, mask, key=k) for k in range(4)]
    for out in outputs:
        assert out.image.dtype == np.uint8 and out.image.shape == (32, 32, 3)
        assert out.mask.shape == (32, 32) and set(np.unique(out.mask)) <= {0, 1}
    assert not all(np.array_equal(o.image, img) for o in outputs)
    assert same(Pipeline.from_json(p.to_json())(img, mask, key=2), outputs[2])


def test_malformed_specs_are_registry_errors():
    for bad in ({"name": "flip", "enabled": "false"}, {"name": "flip", "params": None}):
        with pytest.raises(RegistryError):
            Pipeline.from_dict({"transforms": [bad]})
    with pytest.raises(RegistryError, match="transforms must be a list"):
        Pipeline.from_dict({"transforms": None})


def test_large_seeds_do_not_collide():
    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    spec = {"transforms": [{"name": "gaussian_noise", "params": {"std": 0.2}}]}
    one = Pipeline.from_dict({**spec, "seed": 1})(image, key=0).image
    big = Pipeline.from_dict({**spec, "seed": 2**32 + 1})(image, key=0).image
    assert not np.array_equal(one, big)


def test_intensity_amounts_follow_the_training_images_range():
    """12-bit camera data in 16-bit files: brightness ±0.1 of 65,535 moved patches past any real pixel."""
    from app.core.augment.intensity import data_range
    from app.core.config import ExperimentConfig
    from app.core.dataset import Sample
    from app.core.patch_plan import training_pipeline

    twelve = np.linspace(0, 4000, 64 * 64).reshape(64, 64, 1).astype(np.uint16)
    assert data_range([twelve, twelve // 2]) == 4095
    assert data_range([np.full((4, 4, 1), 70000, np.uint32)]) == 2 ** 17 - 1
    assert data_range([np.linspace(-2, 6, 16, dtype=np.float32).reshape(4, 4, 1)]) == 8.0
    assert data_range([image(dtype=np.uint8)]) is None and data_range([]) is None
    assert data_range([np.zeros((4, 4, 1), np.uint16)]) is None

    config = ExperimentConfig()
    config.data.patch_size = 64
    config.augmentation = {"seed": 0, "transforms": [{"name": "brightness", "p": 1.0, "params": {"max_shift": 0.1}}]}
    samples = [Sample("a", twelve, np.zeros((64, 64), np.uint8), None, None)]
    for key in range(20):
        shifted = training_pipeline(config, samples)(twelve, samples[0].mask, key=(0, key)).image
        assert abs(float(shifted.astype(np.float64).mean() - twelve.mean())) <= 0.1 * 4095 + 1
    unscaled = [training_pipeline(config)(twelve, samples[0].mask, key=(0, key)).image for key in range(20)]
    assert max(abs(float(u.astype(np.float64).mean() - twelve.mean())) for u in unscaled) > 0.1 * 4095
