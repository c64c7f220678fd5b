import re

import numpy as np
import pytest
import tifffile
from PIL import Image

from app.core.imageio import ImageReadError, read_image, read_tiff_pages, write_binary_png, write_image

from .helpers import pattern, save


@pytest.mark.parametrize("ext", [".png", ".tif", ".bmp"])
def test_lossless_gray_rgb_roundtrip(tmp_path, ext):
    gray = pattern(10, 14)
    rgb = pattern(10, 14, 3)
    assert np.array_equal(read_image(save(tmp_path / f"g{ext}", gray)), gray)
    assert np.array_equal(read_image(save(tmp_path / f"c{ext}", rgb)), rgb)


def test_sixteen_bit_png_and_tiff(tmp_path):
    img = pattern(9, 11, dtype=np.uint16)
    for ext in (".png", ".tif"):
        out = read_image(save(tmp_path / f"a{ext}", img))
        assert out.dtype == np.uint16
        assert np.array_equal(out, img)


def test_rgba_alpha_dropped(tmp_path):
    rgba = pattern(8, 8, 4)
    out = read_image(save(tmp_path / "a.png", rgba))
    assert out.shape == (8, 8, 3)
    assert np.array_equal(out, rgba[:, :, :3])


def test_jpeg_and_gif(tmp_path):
    flat = np.full((16, 16), 128, np.uint8)
    assert abs(int(read_image(save(tmp_path / "a.jpg", flat)).mean()) - 128) <= 1
    gif = read_image(save(tmp_path / "b.gif", flat))
    assert gif.shape[:2] == (16, 16)


def test_palette_mask_keeps_indices(tmp_path):
    labels = np.array([[0, 1], [2, 1]], np.uint8)
    img = Image.fromarray(labels, mode="P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    img.save(tmp_path / "p.png")
    assert np.array_equal(read_image(tmp_path / "p.png", keep_palette=True), labels)
    assert read_image(tmp_path / "p.png").shape == (2, 2, 3)


def test_truncated_png_is_an_error(tmp_path):
    path = save(tmp_path / "a.png", pattern(64, 64, seed=3))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert "a.png" in str(info.value)


def test_truncated_jpeg_is_an_error(tmp_path):
    path = save(tmp_path / "a.jpg", pattern(64, 64, seed=3))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated|corrupt"):
        read_image(path)


def test_garbage_and_empty_files(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not an image at all")
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="x.png"):
        read_image(tmp_path / "x.png")
    with pytest.raises(ImageReadError, match="empty"):
        read_image(tmp_path / "e.png")
    with pytest.raises(ImageReadError, match="does not exist"):
        read_image(tmp_path / "missing.png")


def test_multipage_tiff(tmp_path):
    stack = np.stack([pattern(6, 7, seed=i) for i in range(3)])
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    pages, count = read_tiff_pages(tmp_path / "s.tif")
    assert count == 3
    assert all(np.array_equal(p, stack[i]) for i, p in enumerate(pages))
    with pytest.raises(ImageReadError, match="3 pages"):
        read_image(tmp_path / "s.tif")


def test_write_image_is_atomic_and_readable(tmp_path):
    img = pattern(5, 6)
    write_image(tmp_path / "out.png", img)
    assert np.array_equal(read_image(tmp_path / "out.png"), img)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_binary_png_is_one_bit_and_reads_back(tmp_path):
    mask = np.zeros((5, 11), np.uint8)
    mask[1:4, 2:9] = 255
    mask[0, 0] = 1  # any non-zero value is foreground
    for given in (mask, mask > 0):
        path = write_binary_png(tmp_path / "m.png", given)
        assert Image.open(path).mode == "1"  # other programs see 0/255
        assert np.asarray(Image.open(path).convert("L")).tolist() == np.where(mask > 0, 255, 0).tolist()
        assert read_image(path).tolist() == (mask > 0).astype(np.uint8).tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]  # atomic: no temporary file left
    with pytest.raises(ValueError, match="2-D uint8 or boolean"):
        write_binary_png(tmp_path / "x.png", np.zeros((4, 4), np.float32))


def test_planar_rgb_tiff_is_one_colour_image(tmp_path):
    planar = np.stack([pattern(6, 7, seed=i) for i in range(3)])
    tifffile.imwrite(tmp_path / "rgb.tif", planar, photometric="rgb", planarconfig="separate")
    out = read_image(tmp_path / "rgb.tif")
    assert out.shape == (6, 7, 3)
    assert np.array_equal(out[:, :, 1], planar[1])


def test_an_image_over_pillows_safety_limit_is_an_error_naming_it(tmp_path, monkeypatch):
    """Pillow's DecompressionBombError is neither an OSError nor a ValueError: a huge (or damaged)
    PNG ended `predict` with a traceback, leaving the rest of the folder unpredicted."""
    save(tmp_path / "big.png", pattern(20, 30))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 250)  # 600 pixels are over twice that
    with pytest.raises(ImageReadError, match=r"big.png: too large to read safely \(600 pixels; at most 500"):
        read_image(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # over the limit but under twice it: read, silently
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(tmp_path / "big.png").shape == (20, 30)


def test_an_unreadable_file_is_not_called_corrupt(tmp_path, monkeypatch):
    save(tmp_path / "a.png", pattern(4, 4))
    tifffile.imwrite(tmp_path / "a.tif", pattern(4, 4))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", refuse)
    monkeypatch.setattr(tifffile, "TiffFile", refuse)
    for name in ("a.png", "a.tif"):
        with pytest.raises(ImageReadError, match=rf"{name}: cannot be read \(permission denied\)$"):
            read_image(tmp_path / name)


def test_complex_tiffs_are_refused_and_tifffile_does_not_log_to_the_terminal(tmp_path):
    import logging

    tifffile.imwrite(tmp_path / "c.tif", np.ones((4, 4), np.complex64))
    with pytest.raises(ImageReadError, match="c.tif: complex-valued pixels"):
        read_image(tmp_path / "c.tif")
    tifffile.imwrite(tmp_path / "stack.tif", np.ones((2, 4, 4), np.complex64), photometric="minisblack")
    pages, count = read_tiff_pages(tmp_path / "stack.tif")
    assert count == 2 and all(isinstance(p, ImageReadError) and "complex" in p.reason for p in pages)
    assert logging.getLogger("tifffile").getEffectiveLevel() >= logging.ERROR


def test_a_palette_mask_with_white_first_is_read_by_colour_not_inverted(tmp_path):
    """Index 0 white, 1 black: the disc an image viewer shows white became class 0."""
    labels = np.ones((6, 6), np.uint8)  # the black background: index 1
    labels[2:4, 2:4] = 0  # the white foreground: index 0
    img = Image.fromarray(labels, mode="P")
    img.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    img.save(tmp_path / "p.png")
    read = read_image(tmp_path / "p.png", keep_palette=True)
    assert np.array_equal(read[:, :, 0] > 0, labels == 0)  # white where the viewer shows white


def test_channels_beyond_grayscale_and_rgb_are_refused_unless_marked_as_alpha(tmp_path):
    """A second fluorescence channel (ExtraSamples 'unspecified', or ImageJ's channel pages) was
    dropped as if it were alpha, and the model trained on one channel without a word."""
    a, b = np.full((6, 6), 10, np.uint8), np.full((6, 6), 200, np.uint8)
    tifffile.imwrite(tmp_path / "two.tif", np.dstack([a, b]), photometric="minisblack", extrasamples=["unspecified"])
    tifffile.imwrite(tmp_path / "four.tif", np.dstack([a, b, a, b]), photometric="rgb", extrasamples=["unspecified"])
    tifffile.imwrite(tmp_path / "imagej.tif", np.stack([a, b]), imagej=True, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "rgba.tif", np.dstack([a, b, a, b]), photometric="rgb", extrasamples=["unassalpha"])
    for name, message in (("two", "has 2 channels and the last is not alpha"),
                          ("four", "has 4 channels and the last is not alpha"),
                          ("imagej", "is a 2-channel image (one page per channel)")):
        with pytest.raises(ImageReadError, match=re.escape(message)):
            read_image(tmp_path / f"{name}.tif")
    assert np.array_equal(read_image(tmp_path / "rgba.tif"), np.dstack([a, b, a]))
