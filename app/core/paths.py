"""Per-user folders (platformdirs), the built-in demo dataset's location, and where the
program's read-only resources (icons, style, desktop entry) are.

``SEGSTUDIO_DATA_DIR`` overrides the data folder (tests, portable installs). Nothing is ever
written next to the program: runs, reviews, settings and demo data go to the user data folder.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

import platformdirs

APP_NAME = "SegStudio"
#: Where a non-editable install puts ``resources/`` (pyproject's data-files), under the prefix.
INSTALLED_RESOURCES = Path("share") / "segstudio"
_MARKER = "style.qss"


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


def is_frozen() -> bool:
    """True inside the PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False) and getattr(sys, "_MEIPASS", None))


def resource_candidates() -> list[Path]:
    """Where ``resources/`` may be, most specific first: inside the frozen bundle
    (``sys._MEIPASS``), beside the package in a source checkout or editable install, and under
    the install prefix of a wheel install (``share/segstudio``)."""
    candidates = []
    if getattr(sys, "_MEIPASS", None):
        candidates.append(Path(sys._MEIPASS) / "resources")
    candidates.append(Path(__file__).resolve().parents[2] / "resources")
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, _user_base())):
        if prefix:
            candidates.append(Path(prefix) / INSTALLED_RESOURCES)
    return candidates


def _user_base() -> str | None:
    import site

    return getattr(site, "USER_BASE", None)


def _recorded_resources() -> Path | None:
    """The data-files folder as the installed distribution's RECORD places it (any scheme)."""
    from importlib import metadata

    try:
        files = metadata.distribution("segstudio").files or []
    except metadata.PackageNotFoundError:
        return None
    for entry in files:
        if entry.name == _MARKER and "segstudio" in entry.parts[:-1]:
            return Path(str(entry.locate())).resolve().parent
    return None


@lru_cache(maxsize=1)
def resources_dir() -> Path:
    """The folder holding ``style.qss``, ``icons/`` and ``segstudio.desktop``."""
    candidates = resource_candidates()
    for candidate in candidates:
        if (candidate / _MARKER).is_file():
            return candidate
    recorded = _recorded_resources()
    return recorded if recorded is not None else candidates[0]
