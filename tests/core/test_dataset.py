import stat

import numpy as np
import pytest
import tifffile

from app.core.dataset import DatasetError, load_dataset, random_split

from .helpers import ISBI, binary_mask, make_folder, pattern, save


def reasons(dataset):
    return {p.path.name: p.reason for p in dataset.problems}


def test_images_masks_folder_pairs_by_stem(tmp_path):
    make_folder(tmp_path, ["a", "b", "c", "d", "e"])
    ds = load_dataset(tmp_path, val_fraction=0.4, seed=1)
    assert ds.layout == "folder"
    assert sorted(s.name for s in ds.samples) == ["a", "b", "c", "d", "e"]
    assert ds.problems == []
    assert ds.num_classes == 2 and ds.labels.mode == "binary"
    a = next(s for s in ds.samples if s.name == "a")
    assert a.image.shape == (12, 16, 1) and a.image.dtype == np.uint8
    assert np.array_equal(a.image[:, :, 0], pattern(12, 16, seed=0))
    assert np.array_equal(a.mask, (binary_mask(12, 16, seed=0) == 255).astype(np.uint8))
    assert ds.split_counts() == {"train": 3, "val": 2, "test": 0}


@pytest.mark.parametrize("suffix", ["_mask", "_label", "_lesion", "_manual1", "_segmentation", "-mask"])
def test_mask_suffixes(tmp_path, suffix):
    make_folder(tmp_path, ["img1", "img2"], mask_suffix=suffix, mask_ext=".gif" if suffix == "_manual1" else ".png")
    ds = load_dataset(tmp_path)
    assert sorted(s.name for s in ds.samples) == ["img1", "img2"]
    assert ds.problems == []


def test_drive_style_names(tmp_path):
    save(tmp_path / "images" / "21_training.tif", pattern(8, 8))
    save(tmp_path / "masks" / "21_manual1.gif", binary_mask(8, 8))
    ds = load_dataset(tmp_path)
    assert [s.name for s in ds.samples] == ["21_training"]


def test_split_folders_keep_their_split(tmp_path):
    make_folder(tmp_path / "train", ["t1", "t2", "t3"])
    make_folder(tmp_path / "val", ["v1"])
    make_folder(tmp_path / "test", ["x1", "x2"])
    ds = load_dataset(tmp_path, val_fraction=0.5)
    assert ds.layout == "split-folders"
    assert {s.name: s.split for s in ds.samples} == {
        "t1": "train", "t2": "train", "t3": "train", "v1": "val", "x1": "test", "x2": "test"}


def test_train_only_folder_gets_val_from_train(tmp_path):
    make_folder(tmp_path / "train", ["a", "b", "c", "d"])
    make_folder(tmp_path / "test", ["z"])
    ds = load_dataset(tmp_path, val_fraction=0.25)
    assert ds.split_counts() == {"train": 3, "val": 1, "test": 1}
    assert next(s for s in ds.samples if s.name == "z").split == "test"


def test_same_stem_in_two_splits_gets_unique_names(tmp_path):
    make_folder(tmp_path / "train", ["a"])
    make_folder(tmp_path / "val", ["a"])
    ds = load_dataset(tmp_path)
    assert sorted(s.name for s in ds.samples) == ["train/a", "val/a"]


def test_split_is_seeded_and_deterministic():
    names = [f"s{i:02d}" for i in range(30)]
    first = random_split(names, 0.2, seed=7)
    assert first == random_split(list(reversed(names)), 0.2, seed=7)
    assert sum(v == "val" for v in first.values()) == 6
    assert first != random_split(names, 0.2, seed=8)
    assert sum(v == "val" for v in random_split(["a", "b"], 0.1, 0).values()) == 1
    assert all(v == "train" for v in random_split(names, 0.0, 0).values())
    with pytest.raises(ValueError):
        random_split(names, 1.0, 0)


def test_load_twice_gives_same_split(tmp_path):
    make_folder(tmp_path, [f"n{i}" for i in range(10)])
    one = {s.name: s.split for s in load_dataset(tmp_path, seed=3).samples}
    two = {s.name: s.split for s in load_dataset(tmp_path, seed=3).samples}
    assert one == two


def test_assign_splits(tmp_path):
    make_folder(tmp_path, ["a", "b", "c"])
    ds = load_dataset(tmp_path)
    ds.assign_splits({"a": "test", "b": "val", "c": "train"})
    assert [s.split for s in sorted(ds.samples, key=lambda s: s.name)] == ["test", "val", "train"]
    with pytest.raises(ValueError, match="valid: train, val, test"):
        ds.assign_splits({"a": "holdout"})
    with pytest.raises(KeyError):
        ds.assign_splits({"nope": "val"})


def test_tiff_stack_pair(tmp_path):
    images = np.stack([pattern(10, 12, seed=i) for i in range(4)])
    labels = np.stack([binary_mask(10, 12, seed=i) for i in range(4)])
    tifffile.imwrite(tmp_path / "train-volume.tif", images, photometric="minisblack")
    tifffile.imwrite(tmp_path / "train-labels.tif", labels, photometric="minisblack")
    for source in (tmp_path, (tmp_path / "train-volume.tif", tmp_path / "train-labels.tif")):
        ds = load_dataset(source, val_fraction=0.25)
        assert ds.layout == "tiff-stack"
        assert [s.page for s in sorted(ds.samples, key=lambda s: s.name)] == [0, 1, 2, 3]
        third = next(s for s in ds.samples if s.page == 2)
        assert np.array_equal(third.image[:, :, 0], images[2])
        assert np.array_equal(third.mask, (labels[2] == 255).astype(np.uint8))
        assert ds.problems == [] and ds.split_counts()["val"] == 1


def test_tiff_stacks_of_different_length(tmp_path):
    tifffile.imwrite(tmp_path / "v.tif", np.stack([pattern(6, 6, seed=i) for i in range(3)]), photometric="minisblack")
    tifffile.imwrite(tmp_path / "l.tif", np.stack([binary_mask(6, 6, seed=i) for i in range(2)]), photometric="minisblack")
    ds = load_dataset((tmp_path / "v.tif", tmp_path / "l.tif"))
    assert len(ds.samples) == 2
    assert "2 pages" in reasons(ds)["l.tif"] and "3" in reasons(ds)["l.tif"]


def test_a_stack_pair_given_labels_first_is_ordered_and_one_stack_twice_is_refused(tmp_path):
    images = np.stack([pattern(10, 12, seed=i) for i in range(3)])
    tifffile.imwrite(tmp_path / "train-volume.tif", images, photometric="minisblack")
    tifffile.imwrite(tmp_path / "train-labels.tif", np.stack([binary_mask(10, 12, seed=i) for i in range(3)]),
                     photometric="minisblack")
    swapped = load_dataset((tmp_path / "train-labels.tif", tmp_path / "train-volume.tif"))
    assert len(swapped.samples) == 3 and np.array_equal(swapped.samples[0].image[:, :, 0], images[0])
    with pytest.raises(DatasetError, match="the image stack and the label stack are the same file"):
        load_dataset((tmp_path / "train-volume.tif", tmp_path / "train-volume.tif"))


def test_file_manager_files_are_passed_over_and_a_broken_link_is_named_as_one(tmp_path):
    make_folder(tmp_path, ["a", "b"])
    for folder in ("images", "masks"):
        (tmp_path / folder / "Thumbs.db").write_bytes(b"\0" * 8)
        (tmp_path / folder / "desktop.ini").write_text("[.ShellClassInfo]")
    (tmp_path / "images" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    ds = load_dataset(tmp_path)
    assert len(ds.samples) == 2
    assert [(p.path.name, p.reason) for p in ds.problems] == [
        ("gone.png", "a broken link: the file it points to does not exist")]


def test_the_size_range_gives_real_image_sizes(tmp_path):
    """The least width was paired with the least height: 6×5 for images of 8×8, 200×5 and 6×200."""
    for name, (h, w) in {"a": (8, 8), "b": (5, 200), "c": (200, 6), "d": (48, 48)}.items():
        save(tmp_path / "images" / f"{name}.png", pattern(h, w))
        save(tmp_path / "masks" / f"{name}.png", binary_mask(h, w))
    st = load_dataset(tmp_path).stats
    assert (st.min_size, st.max_size) == ((8, 8), (48, 48))
    assert not st.float_data


def test_images_of_another_channel_count_are_made_alike_or_left_out_by_name(tmp_path):
    """Grayscale saved as RGB beside grayscale loaded fine, then training refused "images mix [1, 3]
    channels" naming no file (and left a failed run behind)."""
    gray = pattern(8, 8)
    for name in ("a", "b"):
        save(tmp_path / "grey" / "images" / f"{name}.png", gray)
        save(tmp_path / "grey" / "images" / f"{name}_rgb.png", np.dstack([gray] * 3))
    save(tmp_path / "grey" / "images" / "colour.png", pattern(8, 8, 3))
    for name in ("a", "b", "a_rgb", "b_rgb", "colour"):
        save(tmp_path / "grey" / "masks" / f"{name}.png", binary_mask(8, 8))
    ds = load_dataset(tmp_path / "grey")
    assert {s.name: s.channels for s in ds.samples} == {"a": 1, "b": 1, "a_rgb": 1, "b_rgb": 1}
    assert np.array_equal(next(s for s in ds.samples if s.name == "a_rgb").image[:, :, 0], gray)
    assert sorted(str(p) for p in ds.problems) == sorted([
        f"{tmp_path / 'grey'}: 2 image(s) of 5: grayscale saved as RGB read as grayscale, like the others",
        f"{tmp_path / 'grey' / 'images' / 'colour.png'}: has 3 channels but most images have 1; a model takes one "
        "kind; left out"])

    for name in ("a", "b", "c"):
        save(tmp_path / "colour" / "images" / f"{name}.png", pattern(8, 8, 3, seed=ord(name)))
        save(tmp_path / "colour" / "masks" / f"{name}.png", binary_mask(8, 8))
    save(tmp_path / "colour" / "images" / "d.png", gray)
    save(tmp_path / "colour" / "masks" / "d.png", binary_mask(8, 8))
    ds = load_dataset(tmp_path / "colour")
    d = next(s for s in ds.samples if s.name == "d")
    assert d.channels == 3 and all(np.array_equal(d.image[:, :, c], gray) for c in range(3))


def test_formats_depths_and_channels(tmp_path):
    save(tmp_path / "images" / "gray16.png", pattern(8, 8, dtype=np.uint16))
    save(tmp_path / "images" / "rgb.jpg", pattern(8, 8, 3))
    save(tmp_path / "images" / "rgba.png", pattern(8, 8, 4))
    save(tmp_path / "images" / "bmp.bmp", pattern(8, 8))
    save(tmp_path / "images" / "tif.tiff", pattern(8, 8, 3))
    for name in ("gray16", "rgb", "rgba", "bmp", "tif"):
        save(tmp_path / "masks" / f"{name}.png", binary_mask(8, 8))
    ds = load_dataset(tmp_path)
    assert [p.reason for p in ds.problems] == ["2 image(s) of 5: grayscale read as RGB, like the others"]
    shapes = {s.name: (s.image.shape, s.image.dtype) for s in ds.samples}
    assert shapes["gray16"] == ((8, 8, 3), np.uint16)  # most images are colour: the grayscale ones join them
    assert shapes["rgba"] == ((8, 8, 3), np.uint8)
    assert shapes["rgb"][0] == (8, 8, 3) and shapes["tif"][0] == (8, 8, 3)
    assert set(ds.stats.channels) == {3}


def test_bad_inputs_are_reported_and_skipped(tmp_path):
    make_folder(tmp_path, ["good1", "good2", "trunc", "wrongsize", "manyvalues"])
    trunc = tmp_path / "images" / "trunc.png"
    trunc.write_bytes(trunc.read_bytes()[:40])
    save(tmp_path / "masks" / "wrongsize.png", binary_mask(5, 5))
    save(tmp_path / "masks" / "manyvalues.png", np.arange(12 * 16, dtype=np.uint8).reshape(12, 16))
    save(tmp_path / "images" / "nomask.png", pattern())
    save(tmp_path / "masks" / "orphan.png", binary_mask())
    (tmp_path / "images" / "notes.txt").write_text("hello")
    (tmp_path / "images" / ".DS_Store").write_bytes(b"\0")

    ds = load_dataset(tmp_path)
    assert sorted(s.name for s in ds.samples) == ["good1", "good2"]
    found = reasons(ds)
    assert "corrupt" in found["trunc.png"] or "truncated" in found["trunc.png"]
    assert "5×5" in found["wrongsize.png"] and "16×12" in found["wrongsize.png"]
    assert "distinct values" in found["manyvalues.png"]
    assert "without a mask" in found["nomask.png"]
    assert "without a matching image" in found["orphan.png"]
    assert "not an image" in found["notes.txt"]
    assert ".DS_Store" not in found
    assert len(ds.problems) == 6


def test_float_images_with_nan_pixels_are_left_out_by_name(tmp_path):
    make_folder(tmp_path, ["good", "holes"], image_ext=".tif")
    image = pattern().astype(np.float32)
    tifffile.imwrite(tmp_path / "images" / "good.tif", image)
    image[2, 3], image[4, 5] = np.nan, np.inf
    tifffile.imwrite(tmp_path / "images" / "holes.tif", image)
    ds = load_dataset(tmp_path)
    assert [s.name for s in ds.samples] == ["good"]
    assert "2 pixel(s) are NaN or infinite" in reasons(ds)["holes.tif"]


def test_duplicate_stems_reported(tmp_path):
    make_folder(tmp_path, ["a"])
    save(tmp_path / "images" / "a.tif", pattern())
    save(tmp_path / "masks" / "a_mask.png", binary_mask())
    ds = load_dataset(tmp_path)
    assert len(ds.samples) == 1
    assert any("same name" in p.reason for p in ds.problems)
    assert any("second mask" in p.reason for p in ds.problems)


def test_missing_empty_and_unrecognised_folders(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "other" / "stuff").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no dataset found"):
        load_dataset(tmp_path / "other")
    (tmp_path / "noimg" / "images").mkdir(parents=True)
    (tmp_path / "noimg" / "masks").mkdir()
    with pytest.raises(DatasetError, match="contains no images"):
        load_dataset(tmp_path / "noimg")


def test_sources_are_opened_read_only_and_untouched(tmp_path):
    make_folder(tmp_path, ["a", "b"])
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    for p in files:
        p.chmod(stat.S_IRUSR)
    for d in (tmp_path / "images", tmp_path / "masks"):
        d.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        ds = load_dataset(tmp_path)
        assert len(ds.samples) == 2
    finally:
        for d in (tmp_path / "images", tmp_path / "masks"):
            d.chmod(stat.S_IRWXU)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == files


def test_multiclass_indexed_masks(tmp_path):
    for i in range(3):
        save(tmp_path / "images" / f"m{i}.png", pattern(6, 6, seed=i))
        save(tmp_path / "masks" / f"m{i}.png", (np.arange(36).reshape(6, 6) % 4).astype(np.uint8))
    ds = load_dataset(tmp_path)
    assert ds.num_classes == 4 and ds.labels.mode == "indexed"
    assert ds.stats.class_fractions == pytest.approx((9 / 36,) * 4)


def test_progress_callback(tmp_path):
    make_folder(tmp_path, ["a", "b", "c"])
    calls = []
    load_dataset(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_progress_is_reported_at_most_once_a_percent(tmp_path):
    """Each report is a progress-bar update on the GUI thread: 2,000 files froze the window 0.8 s."""
    make_folder(tmp_path, [f"s{i:03d}" for i in range(250)], size=(4, 4))
    calls = []
    load_dataset(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) == 100 and calls[-1] == (250, 250) and calls[:2] == [(3, 250), (5, 250)]


def test_statistics(tmp_path):
    save(tmp_path / "images" / "a.png", np.full((4, 5), 100, np.uint8))
    save(tmp_path / "images" / "b.png", np.full((4, 5), 200, np.uint8))
    mask = np.zeros((4, 5), np.uint8)
    mask[:1] = 255  # 5 of 20 pixels foreground
    save(tmp_path / "masks" / "a.png", mask)
    save(tmp_path / "masks" / "b.png", np.zeros((4, 5), np.uint8))
    ds = load_dataset(tmp_path, val_fraction=0.0)
    st = ds.stats
    assert st.count == 2 and st.min_size == (4, 5) and st.channels == (1,)
    per = {s.name: s for s in st.samples}
    assert per["a"].foreground_fraction == pytest.approx(0.25)
    assert per["b"].foreground_fraction == 0.0
    assert st.class_fractions == pytest.approx((0.875, 0.125))
    assert st.intensity_mean == pytest.approx((150.0,))
    assert st.intensity_std == pytest.approx((50.0,))
    assert st.normalised_mean == pytest.approx((150 / 255,))
    assert st.to_dict()["samples"][0]["name"] in ("a", "b")


@pytest.mark.skipif(not ISBI.exists(), reason="../shared/data/isbi2012 is not beside the project")
def test_isbi_2012_folder_and_as_tiff_stack(tmp_path):
    ds = load_dataset(ISBI, val_fraction=0.1, seed=0)
    assert len(ds.samples) == 30 and ds.problems == []
    assert ds.stats.class_fractions[0] == pytest.approx(0.22, abs=0.01)  # membrane share, SOURCE.md
    ordered = sorted(ds.samples, key=lambda s: s.name)
    tifffile.imwrite(tmp_path / "train-volume.tif", np.stack([s.image[:, :, 0] for s in ordered]),
                     photometric="minisblack")
    tifffile.imwrite(tmp_path / "train-labels.tif", np.stack([s.mask * 255 for s in ordered]),
                     photometric="minisblack")
    stack = load_dataset(tmp_path)
    assert len(stack.samples) == 30
    assert np.array_equal(next(s for s in stack.samples if s.page == 27).mask, ordered[27].mask)
    conventional = {s.name: ("val" if int(s.name) >= 27 else "train") for s in ds.samples}
    ds.assign_splits(conventional)
    assert [s.name for s in ds.split("val")] == ["27", "28", "29"]


def test_empty_val_folder_takes_val_from_train(tmp_path):
    make_folder(tmp_path / "train", ["a", "b", "c", "d"])
    (tmp_path / "val" / "images").mkdir(parents=True)
    (tmp_path / "val" / "masks").mkdir()
    ds = load_dataset(tmp_path, val_fraction=0.25)
    assert ds.split_counts()["val"] == 1
    assert any("no images" in p.reason for p in ds.problems)
