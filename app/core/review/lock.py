"""One writer per review: an operating-system lock on ``review.lock`` in the review folder.

The lock is held for as long as the review is open for editing and is released by the
operating system if the process dies, so a crash never leaves a review locked. Who holds it
(user, host, process, since when) is written beside it, for the message the next opener sees.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from pathlib import Path

from filelock import FileLock, Timeout

from ..atomic import atomic_write_json
from .record import now_iso

LOCK_NAME = "review.lock"
OWNER_NAME = "review.owner.json"


class ReviewLock:
    """An exclusive, non-blocking lock on a review folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._lock = FileLock(str(self.folder / LOCK_NAME), timeout=0, thread_local=False, is_singleton=False)

    def acquire(self) -> bool:
        """Take the lock; False when another window or process holds it."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        try:
            atomic_write_json(self.folder / OWNER_NAME, {"user": _user(), "host": socket.gethostname(),
                                                         "pid": os.getpid(), "since": now_iso()})
        except OSError:
            pass  # the lock itself is what counts; the owner note is a courtesy
        return True

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)

    def owner(self) -> str:
        """Who holds the lock, in words (from the owner note)."""
        return describe_owner(self.folder)


def describe_owner(folder: Path) -> str:
    try:
        info = json.loads((Path(folder) / OWNER_NAME).read_text(encoding="utf-8"))
        return f"{info.get('user', '?')} on {info.get('host', '?')} (process {info.get('pid', '?')}, " \
               f"since {info.get('since', '?')})"
    except (OSError, ValueError, AttributeError):
        return "another SegStudio window"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some sandboxes
        return "unknown user"
