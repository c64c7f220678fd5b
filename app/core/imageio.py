"""Reading and writing images: PNG, TIFF (also multi-page), JPEG, BMP and GIF.

Source files are only ever opened for reading. Decoding is strict: a truncated or corrupt
file raises :class:`ImageReadError` naming the file, rather than returning a partial image.
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from .atomic import atomic_write_bytes

# tifffile logs each damaged tag it skips ("<tifffile.TiffTag 262 @58> raised ValueError(...)"), with no
# file name, on the terminal; what matters reaches the user as an ImageReadError naming the file.
logging.getLogger("tifffile").setLevel(logging.ERROR)

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".gif")
TIFF_SUFFIXES = (".tif", ".tiff")

# Strictness: a truncated file must fail, not load half-grey.
Image.LOAD_TRUNCATED_IMAGES = False


class ImageReadError(Exception):
    """An image file could not be read; ``str()`` names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def is_image_file(path: Path) -> bool:
    """True for a visible file with a suffix SegStudio reads."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def _drop_alpha(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] in (2, 4):
        array = array[:, :, :-1]
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return np.ascontiguousarray(array)


def _from_pil(img: Image.Image, *, keep_palette: bool) -> np.ndarray:
    mode = img.mode
    if mode == "P":
        if keep_palette:
            indices = np.asarray(img, dtype=np.uint8)
            if _palette_orders_labels(img, indices):
                return indices  # palette indices: label maps are stored so
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode == "1":
        return np.asarray(img, dtype=np.uint8)
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16, copy=False)
    return _drop_alpha(np.asarray(img))


def _palette_orders_labels(img: Image.Image, indices: np.ndarray) -> bool:
    """True when a palette mask's indices can be its labels: the lowest index used is no brighter
    than the highest (background first). A palette with white at 0 and black at 1 shows the
    foreground white; read by index it would be inverted, so it is read by colour instead."""
    palette = img.getpalette() or []
    used = np.flatnonzero(np.bincount(indices.ravel(), minlength=256))
    if len(used) < 2 or len(palette) < 3 * (int(used[-1]) + 1):
        return True

    def brightness(index: int) -> int:
        return sum(palette[3 * index:3 * index + 3])

    return brightness(int(used[0])) <= brightness(int(used[-1]))


def _read_pil(path: Path, *, keep_palette: bool) -> np.ndarray:
    try:
        with warnings.catch_warnings():  # 90–180 megapixels: large microscopy images are real
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                if getattr(img, "n_frames", 1) > 1 and path.suffix.lower() != ".gif":
                    raise ImageReadError(path, f"has {img.n_frames} frames; expected a single image")
                return _from_pil(img, keep_palette=keep_palette)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(path, "not a readable image (unknown or corrupt format)") from None
    except Image.DecompressionBombError as exc:  # neither an OSError nor a ValueError
        sizes = [f"{int(n):,}" for n in re.findall(r"\d+", str(exc))[:2]]
        said = f" ({sizes[0]} pixels; at most {sizes[1]} are read)" if len(sizes) == 2 else ""
        raise ImageReadError(path, f"too large to read safely{said}: a damaged file, or save it as a TIFF "
                                   "(read without that limit)") from None
    except PermissionError:
        raise ImageReadError(path, "cannot be read (permission denied)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = "file is truncated"
        raise ImageReadError(path, f"corrupt image ({reason})") from None


class _UnusablePixels(ValueError):
    """Pixel values no image has (complex numbers): said as they are, not as a damaged file."""


TIFF_ALPHA = (1, 2)  # ExtraSamples: associated and unassociated alpha; 0 is "unspecified data"


def _tiff_page_to_array(array: np.ndarray, axes: str, extrasamples: tuple = ()) -> np.ndarray:
    """Bring one TIFF page (or a single-image series) to H×W or H×W×C; a 2nd or 4th channel
    is dropped only when the file marks it as alpha (otherwise it is data SegStudio cannot take)."""
    axes = axes.upper()
    if array.ndim == 3 and axes[0] == "S":  # planar RGB: samples first
        array = np.moveaxis(array, 0, -1)
    elif "C" in axes and "S" not in axes and array.ndim == 3:  # channels first
        array = np.moveaxis(array, axes.index("C"), -1)
    if array.dtype.kind == "c":
        raise _UnusablePixels("complex-valued pixels; an image needs real values")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if array.dtype.kind == "i" and array.size and array.min() >= 0:
        array = array.astype(np.uint16 if array.dtype.itemsize <= 2 else np.uint32)
    if array.ndim == 3 and array.shape[2] in (2, 4) and not any(v in TIFF_ALPHA for v in extrasamples):
        raise _UnusablePixels(f"has {array.shape[2]} channels and the last is not alpha; SegStudio reads "
                              "grayscale or RGB images: save the channels to use as one of those")
    return _drop_alpha(array)


def read_tiff_pages(path: str | os.PathLike) -> tuple[list[np.ndarray | ImageReadError], int]:
    """Read every page of a (multi-page) TIFF.

    Returns ``(pages, count)`` where each entry is an array or the :class:`ImageReadError`
    for that page, so one corrupt page does not lose the others.
    """
    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0] if tif.series else None
            pages = list(tif.pages)
            if series is not None and len(pages) == 1:
                try:
                    return [_tiff_page_to_array(series.asarray(), series.axes[-3:], pages[0].extrasamples)], 1
                except _UnusablePixels as exc:
                    raise ImageReadError(path, str(exc)) from None
            out: list[np.ndarray | ImageReadError] = []
            for index, page in enumerate(pages):
                try:
                    out.append(_tiff_page_to_array(page.asarray(), page.axes, page.extrasamples))
                except _UnusablePixels as exc:
                    out.append(ImageReadError(path, f"page {index}: {exc}"))
                except Exception as exc:  # noqa: BLE001 - any decoder failure is a per-page problem
                    out.append(ImageReadError(path, f"page {index}: corrupt ({exc})"))
            return out, len(pages)
    except ImageReadError:
        raise
    except PermissionError:
        raise ImageReadError(path, "cannot be read (permission denied)") from None
    except Exception as exc:  # noqa: BLE001 - tifffile raises many exception types
        raise ImageReadError(path, f"not a readable TIFF ({exc or type(exc).__name__})") from None


def _channel_pages(path: Path) -> bool:
    """True when a multi-page TIFF's pages are the channels of one image (ImageJ's ``CYX``)."""
    try:
        with tifffile.TiffFile(path) as tif:
            axes = tif.series[0].axes.upper() if tif.series else ""
    except Exception:  # noqa: BLE001 - it was just read; any failure here only loses the better message
        return False
    return "C" in axes and not set(axes) & set("ZTQI")


def tiff_page_count(path: str | os.PathLike) -> int:
    """Number of pages in a TIFF file (0 if it cannot be opened)."""
    try:
        with tifffile.TiffFile(path) as tif:
            return len(tif.pages)
    except Exception:  # noqa: BLE001
        return 0


def read_image(path: str | os.PathLike, *, keep_palette: bool = False) -> np.ndarray:
    """Read a single image as H×W (grayscale) or H×W×3 (colour), alpha dropped.

    The dtype is the file's own (uint8, uint16, float32, ...). ``keep_palette`` returns the
    palette indices of a palette image instead of its colours (for label maps).
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "file does not exist")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "file is empty")
    if path.suffix.lower() in TIFF_SUFFIXES:
        pages, count = read_tiff_pages(path)
        if count != 1:
            if _channel_pages(path):
                raise ImageReadError(path, f"is a {count}-channel image (one page per channel); SegStudio reads "
                                           "grayscale or RGB images: save the channels to use as one of those")
            raise ImageReadError(path, f"has {count} pages; open it as a TIFF stack instead")
        page = pages[0]
        if isinstance(page, ImageReadError):
            raise page
        return page
    return _read_pil(path, keep_palette=keep_palette)


def encode_png(array: np.ndarray) -> bytes:
    """Encode an 8- or 16-bit grayscale, RGB or RGBA array as PNG bytes."""
    array = np.ascontiguousarray(array)
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG needs uint8 or uint16 data, got {array.dtype}")
    if array.dtype == np.uint16 and array.ndim == 3:
        raise ValueError("16-bit PNG is written for grayscale only; use .tif for 16-bit colour")
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def write_binary_png(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write a 2-D mask (non-zero = foreground) atomically as a 1-bit PNG: 0 and 255 to other
    programs, 0/1 from :func:`read_image`. Three to four times faster to encode than 8-bit
    (about 50 ms for 4096²), which matters for a correction saved after every brush stroke."""
    import cv2  # the engine's image library; imported here so reading images does not need it

    array = np.asarray(mask)
    array = np.ascontiguousarray(array.view(np.uint8) if array.dtype == np.bool_ else array)
    if array.ndim != 2 or array.dtype != np.uint8:
        raise ValueError(f"a binary PNG needs a 2-D uint8 or boolean mask, got {array.dtype} {array.shape}")
    ok, encoded = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_BILEVEL, 1])
    if not ok:
        raise ValueError(f"could not encode {Path(path).name} as PNG")
    return atomic_write_bytes(path, encoded.tobytes())


def write_image(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write an image atomically; the format follows the suffix (PNG or TIFF)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        data = encode_png(array)
    elif suffix in TIFF_SUFFIXES:
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, np.ascontiguousarray(array), compression="zlib")
        data = buffer.getvalue()
    else:
        raise ValueError(f"cannot write {path.name}: use .png or .tif")
    return atomic_write_bytes(path, data)
