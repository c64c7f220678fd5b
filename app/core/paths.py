"""Per-user folders (platformdirs) and the built-in demo dataset's location.

``SEGSTUDIO_DATA_DIR`` overrides the data folder (tests, portable installs).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "SegStudio"


def user_data_dir() -> Path:
    """Where runs, reviews and the demo data live for this user."""
    override = os.environ.get("SEGSTUDIO_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, APP_NAME))


def demo_dataset_dir(flavour: str = "em") -> Path:
    return user_data_dir() / "demo" / flavour


def ensure_demo_dataset(flavour: str = "em") -> Path:
    """The demo dataset's folder, generated on first use."""
    from .demo_data import write_demo_dataset

    folder = demo_dataset_dir(flavour)
    if not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_demo_dataset(folder, flavour=flavour)
        except FileExistsError:  # another process generated it meanwhile
            pass
    return folder
