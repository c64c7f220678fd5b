"""Finding the icon and style sheet, from a source checkout or a PyInstaller bundle."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from PySide6.QtGui import QIcon


@lru_cache(maxsize=1)
def resources_dir() -> Path:
    """``resources/`` beside the package, or inside the frozen bundle."""
    candidates = [Path(__file__).resolve().parents[2] / "resources"]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.insert(0, Path(bundle) / "resources")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[-1]


def app_icon() -> QIcon:
    path = resources_dir() / "icons" / "segstudio.svg"
    return QIcon(str(path)) if path.exists() else QIcon()


def load_style() -> str:
    path = resources_dir() / "style.qss"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""
