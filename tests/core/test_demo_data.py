"""Synthetic demo data: determinism, value ranges, image/mask agreement and the safe writer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from app.core import demo_data
from app.core.demo_data import (FLAVOURS, generate_em_sample, generate_lesion_sample,
                                generate_sample, write_demo_dataset)
from app.core.imageio import read_image


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_same_seed_and_index_give_identical_samples(flavour):
    image, mask = generate_sample(flavour, seed=3, index=1, size=64)
    again_image, again_mask = generate_sample(flavour, seed=3, index=1, size=64)
    np.testing.assert_array_equal(image, again_image)
    np.testing.assert_array_equal(mask, again_mask)
    other_index, _ = generate_sample(flavour, seed=3, index=2, size=64)
    other_seed, _ = generate_sample(flavour, seed=4, index=1, size=64)
    assert not np.array_equal(image, other_index)
    assert not np.array_equal(image, other_seed)


def test_generators_use_only_the_given_rng():
    a = generate_em_sample(np.random.default_rng(7), 64)
    np.random.seed(123)  # the global numpy state must not matter
    b = generate_em_sample(np.random.default_rng(7), 64)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("size", [32, 80, 128])
def test_em_shapes_dtypes_and_mask_values(size):
    image, mask = generate_em_sample(np.random.default_rng(0), size)
    assert image.shape == mask.shape == (size, size)
    assert image.dtype == mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) == {0, 255}


@pytest.mark.parametrize("size", [32, 80, 128])
def test_lesion_shapes_dtypes_and_mask_values(size):
    image, mask = generate_lesion_sample(np.random.default_rng(0), size)
    assert image.shape == (size, size, 3)
    assert mask.shape == (size, size)
    assert image.dtype == mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) == {0, 255}


def test_em_membrane_fraction_is_in_range():
    fractions = [(generate_sample("em", 0, i, 128)[1] == 0).mean() for i in range(6)]
    assert all(0.15 <= f <= 0.30 for f in fractions), fractions
    assert len(set(fractions)) > 1  # the samples really differ


def test_lesion_fraction_is_in_range():
    fractions = [(generate_sample("lesion", 0, i, 96)[1] == 255).mean() for i in range(8)]
    assert all(0.05 <= f <= 0.40 for f in fractions), fractions


def test_em_membranes_partition_the_image_into_cells():
    _, mask = generate_sample("em", 0, 0, 128)
    _, n_cells = ndi.label(mask == 255)
    assert n_cells >= 8


def test_lesion_mask_is_a_single_blob():
    for index in range(4):
        _, mask = generate_sample("lesion", 1, index, 96)
        _, n_blobs = ndi.label(mask == 255)
        assert n_blobs == 1


@pytest.mark.parametrize("index", range(4))
def test_em_membranes_are_drawn_dark_where_the_mask_says(index):
    image, mask = generate_sample("em", 2, index, 128)
    membrane = image[mask == 0].astype(float).mean()
    interior = image[mask == 255].astype(float).mean()
    assert interior - membrane > 40, (membrane, interior)


@pytest.mark.parametrize("index", range(4))
def test_lesion_is_darker_than_skin(index):
    image, mask = generate_sample("lesion", 2, index, 96)
    lum = _luminance(image)
    assert lum[mask == 0].mean() - lum[mask == 255].mean() > 30


def test_lesion_hairs_are_dark_but_not_lesion():
    # Hairs are thin lines much darker than their surroundings, on skin that the mask calls 0.
    # (Without hairs this count is 0 for these samples.)
    found = 0
    for index in range(4):
        image, mask = generate_sample("lesion", 0, index, 128)
        lum = _luminance(image)
        thin_and_dark = lum < ndi.median_filter(lum, 7) - 30
        found += int(np.sum(thin_and_dark & (mask == 0)))
    assert found > 100


def test_unknown_flavour_lists_the_choices():
    with pytest.raises(ValueError) as excinfo:
        generate_sample("ct", 0, 0)
    message = str(excinfo.value)
    assert "'ct'" in message
    assert all(name in message for name in FLAVOURS)


def test_write_demo_dataset_layout(tmp_path):
    target = tmp_path / "demo"
    result = write_demo_dataset(target, count=5, size=48, val_fraction=0.2, seed=9)
    assert result == target.absolute()
    assert sorted(p.name for p in target.iterdir()) == ["README.txt", "train", "val"]
    for split, expected in (("train", [0, 1, 2, 3]), ("val", [4])):
        names = [f"em_{i:03d}.png" for i in expected]
        assert sorted(p.name for p in (target / split / "images").iterdir()) == names
        assert sorted(p.name for p in (target / split / "masks").iterdir()) == names
    # The files hold exactly what the generator makes for that seed and index.
    image, mask = generate_sample("em", 9, 4, 48)
    np.testing.assert_array_equal(read_image(target / "val" / "images" / "em_004.png"), image)
    np.testing.assert_array_equal(read_image(target / "val" / "masks" / "em_004.png"), mask)
    readme = (target / "README.txt").read_text()
    assert "synthetic" in readme.lower()
    for text in ("flavour: em", "seed: 9", "count: 5", "48x48", "255 = cell interior",
                 "0 = membrane"):
        assert text in readme


def test_write_lesion_dataset_is_rgb_with_lesion_masks(tmp_path):
    target = write_demo_dataset(tmp_path / "skin", flavour="lesion", count=2, size=40)
    image = read_image(target / "train" / "images" / "lesion_000.png")
    mask = read_image(target / "val" / "masks" / "lesion_001.png")
    assert image.shape == (40, 40, 3)
    assert set(np.unique(mask).tolist()) <= {0, 255}
    assert "255 = lesion" in (target / "README.txt").read_text()


@pytest.mark.parametrize("count, fraction, n_val", [(24, 0.2, 5), (2, 0.1, 1), (3, 0.9, 2),
                                                    (1, 0.5, 0), (4, 0.0, 0)])
def test_validation_split_size(tmp_path, count, fraction, n_val):
    target = write_demo_dataset(tmp_path / "d", count=count, size=32, val_fraction=fraction)
    n_train = len(list((target / "train" / "images").glob("*.png")))
    found_val = len(list((target / "val" / "images").glob("*.png")))
    assert (n_train, found_val) == (count - n_val, n_val)


def test_refuses_a_non_empty_directory_and_leaves_it_alone(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("my work")
    with pytest.raises(FileExistsError, match="mine"):
        write_demo_dataset(target, count=2, size=32)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "my work"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temporary folder left


def test_refuses_an_existing_file(tmp_path):
    target = tmp_path / "file.png"
    target.write_bytes(b"user data")
    with pytest.raises(FileExistsError):
        write_demo_dataset(target, count=2, size=32)
    assert target.read_bytes() == b"user data"


def test_fills_an_empty_directory_and_creates_parents(tmp_path):
    (tmp_path / "empty").mkdir()
    write_demo_dataset(tmp_path / "empty", count=2, size=32)
    assert (tmp_path / "empty" / "train" / "masks" / "em_000.png").is_file()
    deep = write_demo_dataset(tmp_path / "a" / "b" / "c", count=2, size=32)
    assert (deep / "val" / "images" / "em_001.png").is_file()
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["c"]


def test_failure_midway_leaves_nothing_behind(tmp_path, monkeypatch):
    real = demo_data.generate_sample

    def failing(flavour, seed, index, size=256):
        if index == 2:
            raise RuntimeError("disk on fire")
        return real(flavour, seed, index, size)

    monkeypatch.setattr(demo_data, "generate_sample", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_demo_dataset(tmp_path / "demo", count=4, size=32)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, words", [
    ({"count": 0}, "count"),
    ({"count": 2.5}, "count"),
    ({"size": 31}, "size"),
    ({"size": 4097}, "size"),
    ({"val_fraction": -0.1}, "val_fraction"),
    ({"val_fraction": 1.0}, "val_fraction"),
    ({"flavour": "ct"}, "em, lesion"),
    ({"seed": -1}, "seed"),
])
def test_argument_validation(tmp_path, kwargs, words):
    with pytest.raises(ValueError, match=words):
        write_demo_dataset(tmp_path / "demo", **kwargs)
    assert list(tmp_path.iterdir()) == []  # nothing created, not even the target
