"""One-off background jobs (load a dataset, predict an image) on their own ``QThread``.

The job is a plain function ``fn(task_context)``; it reports progress with
``context.progress(done, total)`` and checks ``context.cancelled``. Results and errors come
back to the GUI thread by queued signals, so callbacks may touch widgets.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot


class TaskCancelled(Exception):
    """Raised inside a job (by :meth:`TaskContext.check`) once it has been cancelled."""


class TaskContext:
    """What a job sees: a progress callback and a cancellation flag."""

    def __init__(self, worker: "_Worker"):
        self._worker = worker
        self._cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise TaskCancelled()

    def progress(self, done: int, total: int) -> None:
        self._worker.progress.emit(int(done), int(total))


class _Worker(QObject):
    progress = Signal(int, int)
    done = Signal(object)
    failed = Signal(str)
    over = Signal()

    def __init__(self, fn: Callable[[TaskContext], Any]):
        super().__init__()
        self.fn = fn
        self.context = TaskContext(self)

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn(self.context)
        except TaskCancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            detail = str(exc) or type(exc).__name__
            if not isinstance(exc, (OSError, ValueError, RuntimeError)) and type(exc).__module__ == "builtins":
                traceback.print_exc()
            if not self.context.cancelled:
                self.failed.emit(detail)
        else:
            if not self.context.cancelled:
                self.done.emit(result)
            del result
        finally:
            self.fn = None  # let go of whatever the job captured (images, models)
            self.over.emit()


class Task(QObject):
    """A running job. Its signals are delivered on the GUI thread."""

    progress = Signal(int, int)
    done = Signal(object)
    failed = Signal(str)
    ended = Signal(object)  # always, last; carries the task itself

    def __init__(self, fn: Callable[[TaskContext], Any], name: str = "task", parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self._thread = QThread()
        self._thread.setObjectName(f"segstudio-{name}")
        self._worker = _Worker(fn)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.progress.connect(self._on_progress)
        self._worker.done.connect(self._on_done)
        self._worker.failed.connect(self._on_failed)
        # quit() is thread-safe; calling it directly lets wait() return while the GUI thread blocks
        self._worker.over.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)
        self._running = False

    def start(self) -> "Task":
        self._running = True
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._running

    def cancel(self) -> None:
        """Ask the job to stop; its result (if any) is dropped."""
        self._worker.context._cancel.set()

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the thread has ended (for shutdown and tests)."""
        return self._thread.wait(msecs) if self._thread.isRunning() else True

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if not self._worker.context.cancelled:
            self.progress.emit(done, total)

    @Slot(object)
    def _on_done(self, result: object) -> None:
        if not self._worker.context.cancelled:  # cancelled after the worker checked: drop it here
            self.done.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if not self._worker.context.cancelled:
            self.failed.emit(message)

    @Slot()
    def _on_thread_finished(self) -> None:
        self._running = False
        self.ended.emit(self)


class TaskRunner(QObject):
    """Runs jobs of one kind, newest wins: starting one cancels the one still running.

    Every started task is kept (owned by Python, not by a Qt parent) until its thread has
    ended, so no ``QThread`` is destroyed while running; :meth:`shutdown` cancels and waits
    for all of them.
    """

    busyChanged = Signal(bool)

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self._tasks: list[Task] = []
        self._finished: list[Task] = []  # ended tasks, freed from the event loop (never inside their own signal)
        self.current: Task | None = None
        self.closed = False

    def start(self, fn: Callable[[TaskContext], Any], on_done: Callable[[Any], None] | None = None,
              on_failed: Callable[[str], None] | None = None,
              on_progress: Callable[[int, int], None] | None = None) -> Task | None:
        """Run ``fn`` on a new thread; returns None (and runs nothing) after :meth:`shutdown`."""
        if self.closed:
            return None
        if self.current is not None:
            self.current.cancel()
        task = Task(fn, self.name)
        if on_done is not None:
            task.done.connect(on_done)
        if on_failed is not None:
            task.failed.connect(on_failed)
        if on_progress is not None:
            task.progress.connect(on_progress)
        task.ended.connect(self._forget)  # a bound method, not a lambda holding the task: no cycle
        was_busy = self.busy
        self._tasks.append(task)
        self.current = task
        task.start()
        if not was_busy:
            self.busyChanged.emit(True)
        return task

    @property
    def busy(self) -> bool:
        return any(t.running for t in self._tasks)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    def _forget(self, task: Task) -> None:
        task.wait()
        if task not in self._tasks:
            return
        self._tasks.remove(task)
        self._finished.append(task)
        QTimer.singleShot(0, self._release_finished)
        if self.current is task:
            self.current = None
        if not self.busy:
            self.busyChanged.emit(False)

    def _release_finished(self) -> None:
        """Drop ended tasks (their threads are over), freeing what their callbacks captured."""
        self._finished.clear()

    def shutdown(self, msecs: int = 30000) -> bool:
        """Refuse new jobs, cancel the running ones and wait for their threads; True when all
        have ended. A job that cannot be interrupted and outlives ``msecs`` is kept referenced
        for the rest of the process, so its thread is never destroyed while running."""
        self.closed = True
        self.cancel()
        ended = all(task.wait(msecs) for task in list(self._tasks))
        for task in list(self._tasks):
            if task._thread.isRunning():
                _STILL_RUNNING.append(task)
                continue
            task._running = False
            self._forget(task)
        return ended


_STILL_RUNNING: list[Task] = []  # jobs that outlived a shutdown; never freed while their thread runs


def leave_if_jobs_outlived(code: int) -> int:
    """``code``, after the event loop. A job that outlived its shutdown still runs in a QThread
    that Qt would destroy at exit, aborting the process: end it here instead (the window has
    saved everything; the job's writes are atomic, so nothing is left half-written)."""
    if any(task._thread.isRunning() for task in _STILL_RUNNING):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
