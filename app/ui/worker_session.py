"""One long job at a time on its own ``QThread``: the lifetime shared by the training run and
the sweep sessions.

A subclass builds its worker (a ``QObject`` with a ``run`` slot and an ``over`` signal sent
last) and hands it to :meth:`WorkerSession._launch` with the names of the worker signals to
forward as its own. The thread quits when the worker says ``over``, so :meth:`wait` works from
the GUI thread; ``runningChanged`` fires when the job starts and once its thread has ended.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot


class WorkerSession(QObject):
    runningChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: QObject | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _launch(self, worker: QObject, thread_name: str, forwarded: tuple[str, ...]) -> None:
        thread = QThread()
        thread.setObjectName(thread_name)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        for name in forwarded:
            getattr(worker, name).connect(getattr(self, name))
        worker.over.connect(thread.quit, Qt.ConnectionType.DirectConnection)  # wait() works from the GUI thread
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._worker = thread, worker
        thread.start()
        self.runningChanged.emit(True)

    def stop(self) -> None:  # pragma: no cover - every session defines how its job stops
        raise NotImplementedError

    def wait(self, msecs: int = 60000) -> bool:
        """Block until the worker thread has ended (shutdown and tests); True if it has."""
        return self._thread.wait(msecs) if self._thread is not None else True

    def stop_and_wait(self, msecs: int = 60000) -> bool:
        self.stop()
        ended = self.wait(msecs)
        if ended:
            self._on_thread_finished()
        return ended

    def _ended(self) -> None:
        """Reset the subclass's own state once the job's thread has ended."""

    @Slot()
    def _on_thread_finished(self) -> None:
        if self._thread is None:
            return
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        self._ended()
        worker.deleteLater()
        thread.deleteLater()
        self.runningChanged.emit(False)
