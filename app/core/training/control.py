"""Stop / pause / resume flags shared by the GUI thread and the training loop (no torch here)."""

from __future__ import annotations

import threading


class TrainingControl:
    """Thread-safe flags the GUI thread sets and the loop checks every step."""

    def __init__(self):
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._held = threading.Event()  # the loop is waiting in wait_while_paused

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def held(self) -> bool:
        """The loop has finished its step and is waiting for resume (pause has taken effect)."""
        return self._held.is_set()

    def wait_while_paused(self) -> None:
        self._held.set()
        try:
            while not self._running.wait(0.1):
                pass
        finally:
            self._held.clear()
