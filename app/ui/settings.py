"""Per-user window settings: geometry, dock layout and recently used files (an INI file in the
user's SegStudio folder, so tests and portable installs never touch the system registry)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from app.core.paths import user_data_dir

RECENT_LIMIT = 8
STACK_SEPARATOR = "\n"  # between an image stack and its label stack in a recent-datasets entry


def dataset_entry(entry: str) -> tuple[str, str]:
    """(image folder or stack, label stack or "") of a recent-datasets entry. Older versions
    joined a stack pair with "|", which a folder name may contain: read so only when the whole
    entry is not a path."""
    if STACK_SEPARATOR in entry:
        image, _, labels = entry.partition(STACK_SEPARATOR)
        return image, labels
    if "|" in entry and not Path(entry).exists():
        image, _, labels = entry.partition("|")
        return image, labels
    return entry, ""


class AppSettings:
    """Typed access to the settings file; every read tolerates missing or damaged values."""

    def __init__(self, path: Path | None = None):
        self.path = path or user_data_dir() / "settings.ini"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    # -- window ------------------------------------------------------------------------------
    def window_state(self) -> tuple[QByteArray | None, QByteArray | None]:
        geometry, state = self._qs.value("window/geometry"), self._qs.value("window/state")
        return (geometry if isinstance(geometry, QByteArray) else None,
                state if isinstance(state, QByteArray) else None)

    def save_window_state(self, geometry: QByteArray, state: QByteArray) -> None:
        self._qs.setValue("window/geometry", geometry)
        self._qs.setValue("window/state", state)
        self._qs.sync()

    # -- recent files ------------------------------------------------------------------------
    def recent(self, kind: str) -> list[str]:
        """Recently used paths of ``kind`` ("experiments", "datasets", "checkpoints"), newest first,
        keeping only those that still exist."""
        value = self._qs.value(f"recent/{kind}", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [p for p in items if isinstance(p, str) and p and Path(dataset_entry(p)[0]).exists()]

    def add_recent(self, kind: str, path: str | Path) -> list[str]:
        path = str(path)
        items = [path] + [p for p in self.recent(kind) if p != path]
        self._qs.setValue(f"recent/{kind}", items[:RECENT_LIMIT])
        self._qs.sync()
        return items[:RECENT_LIMIT]

    def clear_recent(self, kind: str) -> None:
        self._qs.remove(f"recent/{kind}")
        self._qs.sync()

    # -- anything else -----------------------------------------------------------------------
    def value(self, key: str, default=None):
        return self._qs.value(key, default)

    def set_value(self, key: str, value) -> None:
        self._qs.setValue(key, value)
        self._qs.sync()
