"""The bridge between the GUI and the training engine: a worker ``QObject`` on its own ``QThread``.

The engine runs in the worker thread and reports plain events; the worker forwards them as
signals carrying plain data (dataclasses, floats, NumPy arrays). Per-step losses are batched
and sent at most every ``step_interval`` seconds so a fast model cannot flood the GUI. Stop,
pause and resume set thread-safe flags the engine checks every step. Torch is imported only
inside the worker thread, when a run starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from app.core.config import ExperimentConfig
from app.core.training.control import TrainingControl

from .worker_session import WorkerSession


@dataclass(frozen=True)
class StepBatch:
    """Steps finished since the last batch: global step numbers and their losses, plus where
    the run stands (for the progress bar)."""

    steps: np.ndarray
    losses: np.ndarray
    epoch: int
    step: int
    steps_in_epoch: int
    images_per_second: float
    lr: float


class TrainingWorker(QObject):
    """Runs one :class:`~app.core.training.engine.Trainer` when :meth:`run` is called."""

    runStarted = Signal(str)  # the run folder
    stepsReady = Signal(object)  # StepBatch
    epochFinished = Signal(object)  # EpochFinished
    checkpointSaved = Signal(object)  # CheckpointSaved
    warning = Signal(str)
    finished = Signal(object)  # Finished
    failed = Signal(object)  # Failed
    over = Signal()  # always last

    def __init__(self, config: ExperimentConfig, dataset=None, run_dir: str | Path | None = None,
                 resume: bool = False, step_interval: float = 0.1):
        super().__init__()
        self.config, self.dataset, self.run_dir, self.resume = config, dataset, run_dir, resume
        self.control = TrainingControl()
        self.step_interval = step_interval
        self._steps: list[int] = []
        self._losses: list[float] = []
        self._last_sent = 0.0

    @Slot()
    def run(self) -> None:
        try:
            from app.core.training.engine import Trainer, TrainingError
            from app.core.training.events import (BatchFinished, CheckpointSaved, EpochFinished, Failed, Finished,
                                                  TrainingWarning)
        except Exception as exc:  # noqa: BLE001 - a broken install or bundle: say so, never hang
            self.failed.emit(SimpleNamespace(message=f"the training engine could not be loaded "
                                                     f"({type(exc).__name__}: {exc})", kind="error"))
            self.over.emit()
            return

        def listen(event) -> None:
            if isinstance(event, BatchFinished):
                self._steps.append(event.global_step)
                self._losses.append(event.loss)
                now = time.perf_counter()
                if now - self._last_sent >= self.step_interval or event.step == event.steps:
                    self._flush(event)
                    self._last_sent = now
            elif isinstance(event, EpochFinished):
                self.epochFinished.emit(event)
            elif isinstance(event, CheckpointSaved):
                self.checkpointSaved.emit(event)
            elif isinstance(event, TrainingWarning):
                self.warning.emit(event.message)
            elif isinstance(event, Finished):
                self.finished.emit(event)
            elif isinstance(event, Failed):
                reported.append(event)
                self.failed.emit(event)

        reported: list = []
        try:
            trainer = Trainer(self.config, self.run_dir, dataset=self.dataset, listeners=[listen],
                              control=self.control, resume=self.resume)
            self.runStarted.emit(str(trainer.folder.path))
            trainer.run()
        except Exception as exc:  # noqa: BLE001 - every failure reaches the user, once
            if not reported:
                message = str(exc) if isinstance(exc, (TrainingError, OSError, ValueError)) else f"{type(exc).__name__}: {exc}"
                self.failed.emit(Failed(message, getattr(exc, "kind", "error")))
        finally:
            self.over.emit()

    def _flush(self, event) -> None:
        batch = StepBatch(np.asarray(self._steps, dtype=np.int64), np.asarray(self._losses, dtype=np.float64),
                          event.epoch, event.step, event.steps, event.images_per_second, event.lr)
        self._steps, self._losses = [], []
        self.stepsReady.emit(batch)


class TrainingSession(WorkerSession):
    """Owns the worker thread of the current run; the training panel talks to this."""

    runStarted = Signal(str)
    stepsReady = Signal(object)
    epochFinished = Signal(object)
    checkpointSaved = Signal(object)
    warning = Signal(str)
    finished = Signal(object)
    failed = Signal(object)
    pausedChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def start(self, config: ExperimentConfig, dataset=None, run_dir: str | Path | None = None,
              resume: bool = False) -> None:
        if self.running:
            raise RuntimeError("a training run is already in progress")
        self._paused = False
        self._launch(TrainingWorker(config, dataset, run_dir, resume), "segstudio-training",
                     ("runStarted", "stepsReady", "epochFinished", "checkpointSaved", "warning", "finished", "failed"))

    def stop(self) -> None:
        """Ask the run to stop after the current step; it saves its checkpoint and ends."""
        if self._worker is not None:
            self._worker.control.stop()
            self._set_paused(False)

    def pause(self) -> None:
        if self._worker is not None:
            self._worker.control.pause()
            self._set_paused(True)

    def resume(self) -> None:
        if self._worker is not None:
            self._worker.control.resume()
            self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        if paused != self._paused:
            self._paused = paused
            self.pausedChanged.emit(paused)

    def _ended(self) -> None:
        self._paused = False
