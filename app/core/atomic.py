"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A reader (or a crash) never sees a half-written file: either the old content or the new.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, through_links: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; the parent folder must exist. A new file gets the
    usual permissions (0666 less the umask), not the private ones of a temporary file; a file
    replaced keeps its own permissions, and a symbolic link keeps pointing where it did (the
    file it points to is the one replaced), unless ``through_links`` is False: then the link
    itself is replaced (for files SegStudio installs, never someone else's file)."""
    given = Path(path)
    path = given.resolve() if through_links and given.is_symlink() else given
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = _MODE
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, given) from None
    try:
        if hasattr(os, "fchmod"):  # not on Windows
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _sync_folder(path.parent)
    except BaseException as exc:  # (said of the path as given, not of where a link led)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise _naming(exc, given) from None
        raise
    return given


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error about ``path`` (not the temporary file's made-up name)."""
    return type(exc)(exc.errno, exc.strerror, str(path)) if exc.errno is not None else exc


def _sync_folder(folder: Path) -> None:
    """Flush the folder entry of a rename to disk (POSIX), so the new file survives a power cut
    and not only a crash; a file system that cannot sync a folder is left as it is."""
    if os.name != "posix":
        return  # Windows makes the rename durable itself and cannot open a folder this way
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str, *, through_links: bool = True) -> Path:
    """Write UTF-8 text atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"), through_links=through_links)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
