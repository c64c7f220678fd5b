"""Tiny image files for tests, written with Pillow/tifffile directly (not the code under test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

ISBI = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "isbi2012"


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".tif", ".tiff"):
        tifffile.imwrite(path, array, **kwargs)
    else:
        Image.fromarray(array).save(path, **kwargs)
    return path


def pattern(h: int = 12, w: int = 16, channels: int = 0, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    high = 255 if dtype == np.uint8 else 4095
    shape = (h, w) if channels == 0 else (h, w, channels)
    return rng.integers(0, high, shape).astype(dtype)


def binary_mask(h: int = 12, w: int = 16, values=(0, 255), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    return np.where(rng.random((h, w)) < 0.3, values[1], values[0]).astype(np.uint8)


def make_folder(root: Path, names, *, image_ext=".png", mask_ext=".png", mask_suffix="", size=(12, 16)) -> Path:
    for i, name in enumerate(names):
        save(root / "images" / f"{name}{image_ext}", pattern(*size, seed=i))
        save(root / "masks" / f"{name}{mask_suffix}{mask_ext}", binary_mask(*size, seed=i))
    return root


def one_line_error(capsys, command: str) -> str:
    """The command's error output, checked to be one ``segstudio COMMAND: ...`` line with no traceback."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"segstudio {command}: "), err
    return err


def train_tiny_run(data: Path, out: Path, seed: int = 0) -> Path:
    """A one-epoch run of a 2-level, width-4 U-Net on CPU through ``segstudio train``."""
    import json

    from app.cli import main

    config = out.parent / f"{out.name}-experiment.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"model": {"name": "unet", "params": {"depth": 2, "base_width": 4}},
                                  "training": {"device": "cpu"}}))
    assert main(["train", "--config", str(config), "--data", str(data), "--epochs", "1", "--patch-size", "32",
                 "--batch-size", "2", "--seed", str(seed), "--out", str(out), "--quiet"]) == 0
    return out
