"""The sweep's background work: running it (a worker ``QObject`` on its own ``QThread``, followed
by a :class:`SweepTracker`), checking a grid and listing the registries' names (plain functions
for a :class:`~app.ui.tasks.TaskRunner`).

:func:`app.core.sweep_run.run_sweep` runs in the worker thread and reports plain data; the worker
forwards it as signals (per-batch progress at most every ``PROGRESS_INTERVAL`` seconds). Stop
asks the current run to stop after its step (it saves ``last.pt``); "stop after this run" lets
the run finish and stops before the next. Torch is imported only inside the worker thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.core.training.control import TrainingControl

from .training_progress import format_duration
from .worker_session import WorkerSession

PROGRESS_INTERVAL = 0.1  # seconds between two per-batch progress signals
ENDED = ("completed", "failed", "stopped")  # a run that trained has ended with one of these


# -- jobs for a TaskRunner -----------------------------------------------------------------------
@dataclass(frozen=True)
class GridCheck:
    """What the core says about a spec: how many runs and their names, or why it is not valid."""

    runs: int = 0
    names: tuple[str, ...] = ()
    combinations: int = 0
    error: str = ""

    def text(self) -> str:
        """``4 runs: unet__dice, ...`` or the error."""
        if self.error:
            return self.error
        shown = ", ".join(self.names[:4]) + (", …" if self.runs > 4 else "")
        left_out = (f" ({self.combinations} combinations; parameters that do not apply to a run's model, loss "
                    f"or optimizer are left out)" if self.combinations != self.runs else "")
        return f"<b>{self.runs} run{'s' if self.runs != 1 else ''}</b>{left_out}: {shown}"


def check_job(spec_data: dict, base_dir: str | None, ctx) -> GridCheck:
    """Validate and expand the spec (imports the registries, so torch: background only)."""
    from app.core.config import ConfigError
    from app.core.registry import RegistryError
    from app.core.sweep import SweepError, SweepSpec, expand

    ctx.check()
    combinations = 1
    for values in (spec_data.get("grid") or {}).values():
        combinations *= len(values) if isinstance(values, list) else 1
    try:
        spec = SweepSpec.from_dict(spec_data, base_dir)
        points = expand(spec)
    except (SweepError, ConfigError, RegistryError) as exc:
        return GridCheck(combinations=combinations, error=str(exc))
    return GridCheck(len(points), tuple(p.name for p in points), combinations)


def registry_names_job(ctx) -> dict[str, list[str]]:
    """The valid names of each name field (``model.name`` -> ``["unet", ...]``)."""
    from app.core.losses import LOSSES
    from app.core.models import MODELS
    from app.core.optim import OPTIMIZERS, SCHEDULES

    ctx.check()
    return {"model.name": MODELS.names(), "loss.name": LOSSES.names(), "optimizer.name": OPTIMIZERS.names(),
            "optimizer.schedule": SCHEDULES.names()}


# -- following a running sweep --------------------------------------------------------------------
class SweepTracker:
    """Where a running sweep stands: each run's status, the current run's share done and the
    time left, estimated from the progress made since the first run of this call started."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.statuses: dict[int, str] = {}
        self.started: tuple[float, float] | None = None  # (clock, sweep fraction) at the first run

    def update(self, report) -> float:
        """Take a :class:`~app.core.sweep_run.SweepProgress`; returns the current run's fraction done."""
        self.statuses[report.index] = "done" if report.status == "skipped" else report.status
        done = sum(s in ("completed", "failed", "done") for j, s in self.statuses.items() if j != report.index)
        if report.status in ("started", "running") and self.started is None:
            self.started = (self.clock(), report.fraction)
        if report.status == "completed":
            return 1.0
        return max(0.0, min(1.0, report.fraction * report.total - done))

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started[0]

    def timing_text(self, fraction: float) -> str:
        """``Elapsed 1m 05s · about 3m 10s left``; empty before the first run starts."""
        if self.started is None:
            return ""
        elapsed, at = self.elapsed(), self.started[1]
        text = f"Elapsed {format_duration(elapsed)}"
        if fraction > at and elapsed > 1.0:
            text += f" · about {format_duration(elapsed * (1.0 - fraction) / (fraction - at))} left"
        return text


def epoch_line(name: str, event) -> str:
    """The log line of a run's finished epoch."""
    dice = "" if event.val_dice is None else f", val Dice {event.val_dice:.4f}"
    return f"    {name} epoch {event.epoch}: train loss {event.train_loss:.4f}{dice} ({event.seconds:.1f}s)"


# -- the running sweep ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepOutcome:
    """How a sweep call ended: each run's status and message, and whether runs are left to do."""

    out_dir: Path
    statuses: tuple[str, ...]
    errors: tuple[str | None, ...]
    stopped: bool

    def count(self, status: str) -> int:
        return self.statuses.count(status)

    def summary(self) -> tuple[str, str]:
        """The banner's text and kind ("success", "warning" or "info")."""
        total, completed, failed = len(self.statuses), self.count("completed"), self.count("failed")
        if self.stopped:
            return (f"Sweep stopped: {completed} of {total} runs finished. Press Resume to continue (finished "
                    f"runs are skipped, a stopped run continues from its checkpoint)."), "info"
        if failed:
            return f"Sweep finished: {completed} of {total} runs completed, {failed} failed (see the table).", "warning"
        return f"Sweep finished: all {total} runs completed in {self.out_dir}.", "success"


class SweepWorker(QObject):
    """Runs :func:`~app.core.sweep_run.run_sweep` when :meth:`run` is called."""

    progress = Signal(object)  # app.core.sweep_run.SweepProgress
    epochFinished = Signal(str, object)  # run name, EpochFinished
    warning = Signal(str, str)  # run name, message
    finished = Signal(object)  # SweepOutcome
    failed = Signal(str)  # the sweep could not start (invalid spec, folder trained with other settings)
    over = Signal()  # always last

    def __init__(self, spec_data: dict, base_dir: str | None, out_dir: Path, retry_failed: bool = False):
        super().__init__()
        self.spec_data, self.base_dir, self.out_dir, self.retry_failed = spec_data, base_dir, Path(out_dir), retry_failed
        self.control = TrainingControl()
        self._stop_after_run = threading.Event()
        self._between_runs = threading.Event()  # set once a run has ended, cleared when the next starts
        self._last_sent = 0.0

    def stop_after_run(self) -> None:
        """Let the run in progress (or the next one) finish, then stop."""
        self._stop_after_run.set()

    def _should_stop(self) -> bool:
        return self._stop_after_run.is_set() and self._between_runs.is_set()

    def _on_progress(self, report) -> None:
        if report.status == "started":
            self._between_runs.clear()
        elif report.status in ENDED:
            self._between_runs.set()
        if report.status == "running":
            now = time.perf_counter()
            if now - self._last_sent < PROGRESS_INTERVAL:
                return
            self._last_sent = now
        self.progress.emit(report)

    def _on_event(self, name: str, event) -> None:
        from app.core.training.events import EpochFinished, TrainingWarning

        if isinstance(event, EpochFinished):
            self.epochFinished.emit(name, event)
        elif isinstance(event, TrainingWarning):
            self.warning.emit(name, event.message)

    @Slot()
    def run(self) -> None:
        from app.core.config import ConfigError
        from app.core.sweep import SweepError, SweepSpec
        from app.core.sweep_run import run_sweep

        try:
            spec = SweepSpec.from_dict(self.spec_data, self.base_dir)
            result = run_sweep(spec, self.out_dir, progress=self._on_progress, should_stop=self._should_stop,
                               on_event=self._on_event, control=self.control, retry_failed=self.retry_failed)
        except (SweepError, ConfigError, OSError) as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - every failure reaches the user as a message
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.finished.emit(SweepOutcome(result.out_dir, tuple(p.status for p in result.points),
                                            tuple(p.error for p in result.points), result.stopped))
        finally:
            self.over.emit()


class SweepSession(WorkerSession):
    """Owns the worker thread of the running sweep; the sweep panel talks to this."""

    progress = Signal(object)
    epochFinished = Signal(str, object)
    warning = Signal(str, str)
    finished = Signal(object)
    failed = Signal(str)

    @property
    def stop_requested(self) -> bool:
        return self._worker is not None and self._worker.control.stop_requested

    def start(self, spec_data: dict, base_dir: str | None, out_dir: Path, retry_failed: bool = False) -> None:
        if self.running:
            raise RuntimeError("a sweep is already running")
        self._launch(SweepWorker(spec_data, base_dir, out_dir, retry_failed), "segstudio-sweep",
                     ("progress", "epochFinished", "warning", "finished", "failed"))

    def stop(self) -> None:
        """Stop the current run after its step (it saves last.pt), then the sweep."""
        if self._worker is not None:
            self._worker.control.stop()

    def stop_after_run(self) -> None:
        if self._worker is not None:
            self._worker.stop_after_run()
