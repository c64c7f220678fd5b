"""Qt-free bookkeeping of a training run for the training panel.

:class:`StepSeries` keeps the per-step losses and their smoothed curve memory-bounded (past
:data:`MAX_STEP_POINTS` points every second one is dropped and later steps are kept at the same
stride); :class:`RunProgress` tracks where the run stands and estimates the time left (paused
time excluded); :func:`format_duration`, :func:`epoch_text` and :func:`summary_text` turn
durations, epochs and a run's summary into the short texts of the progress bar, log and banner.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .training_worker import StepBatch

MAX_STEP_POINTS = 20_000  # per-step points kept before decimating
EMA_WEIGHT = 0.9  # smoothing of the per-step loss (bias-corrected exponential moving average)


def format_duration(seconds: float) -> str:
    """``45s``, ``1m 20s``, ``2h 05m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def finite(value) -> bool:
    """A real, finite number (not None, NaN or infinite)."""
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


class StepSeries:
    """Per-step losses and their smoothed curve, bounded to :attr:`max_points` points.

    The moving average is updated with every loss received, so it stays exact even when raw
    points are dropped; once the buffer is full every second point is dropped and later steps
    are kept at the new stride, so the kept points stay evenly spaced.
    """

    def __init__(self, weight: float = EMA_WEIGHT):
        self.weight = weight
        self.clear()

    @property
    def max_points(self) -> int:
        """The most points kept (read on every append)."""
        return MAX_STEP_POINTS

    def clear(self) -> None:
        self.steps = np.empty(0, dtype=np.int64)
        self.losses = np.empty(0, dtype=np.float64)
        self.smooth = np.empty(0, dtype=np.float64)
        self.stride = 1
        self.received = 0
        self._ema = 0.0
        self._ema_count = 0

    def __len__(self) -> int:
        return len(self.steps)

    def append(self, steps: np.ndarray, losses: np.ndarray) -> None:
        smooth = np.empty(len(losses), dtype=np.float64)
        for i, loss in enumerate(losses):
            if math.isfinite(loss):
                self._ema = self.weight * self._ema + (1.0 - self.weight) * loss
                self._ema_count += 1
            smooth[i] = self._ema / (1.0 - self.weight ** self._ema_count) if self._ema_count else np.nan
        index = self.received + np.arange(len(steps))
        keep = index % self.stride == 0
        self.received += len(steps)
        self.steps = np.concatenate([self.steps, np.asarray(steps, dtype=np.int64)[keep]])
        self.losses = np.concatenate([self.losses, np.asarray(losses, dtype=np.float64)[keep]])
        self.smooth = np.concatenate([self.smooth, smooth[keep]])
        while len(self.steps) > self.max_points:
            self._decimate()

    def _decimate(self) -> None:
        self.steps, self.losses, self.smooth = self.steps[::2], self.losses[::2], self.smooth[::2]
        self.stride *= 2


class RunProgress:
    """Where the run stands and how long it will still take (paused time excluded)."""

    def __init__(self, epochs: int, time_limit: float, clock=time.monotonic):
        self.epochs, self.time_limit = max(1, epochs), time_limit
        self.clock = clock
        self.epoch = self.step = self.steps_in_epoch = 0
        self.images_per_second = 0.0
        self._first: tuple[float, int] | None = None  # (clock, steps done) at the first batch
        self._paused_total = 0.0
        self._paused_since: float | None = None

    @property
    def total(self) -> int:
        return self.epochs * self.steps_in_epoch

    @property
    def done(self) -> int:
        return max(0, (self.epoch - 1) * self.steps_in_epoch + self.step)

    def update(self, batch: StepBatch) -> None:
        self.epoch, self.step, self.steps_in_epoch = batch.epoch, batch.step, batch.steps_in_epoch
        self.images_per_second = batch.images_per_second
        if self._first is None:
            self._first = (self._active_clock(), self.done)

    def set_paused(self, paused: bool) -> None:
        now = self.clock()
        if paused and self._paused_since is None:
            self._paused_since = now
        elif not paused and self._paused_since is not None:
            self._paused_total += now - self._paused_since
            self._paused_since = None

    def _active_clock(self) -> float:
        now = self._paused_since if self._paused_since is not None else self.clock()
        return now - self._paused_total

    def seconds_left(self) -> float | None:
        """Estimated from the rate since the first batch (start-up excluded) and the time limit."""
        if self._first is None or not self.total:
            return None
        clock, first_done = self._first
        elapsed = self._active_clock() - clock
        progressed = self.done - first_done
        estimate = (self.total - self.done) * elapsed / progressed if progressed > 0 and elapsed > 0 else None
        if self.time_limit > 0:
            by_limit = max(0.0, self.time_limit - elapsed)
            estimate = by_limit if estimate is None else min(estimate, by_limit)
        return estimate

    def text(self) -> str:
        left = self.seconds_left()
        parts = [f"Epoch {self.epoch}/{self.epochs}", f"step {self.step}/{self.steps_in_epoch}",
                 f"{self.images_per_second:.1f} img/s",
                 f"{format_duration(left)} left" if left is not None else "estimating time left"]
        return " · ".join(parts)


def epoch_text(event, epochs) -> str:
    """The log line of a finished epoch (its ``EpochFinished`` event) out of ``epochs``."""
    text = f"epoch {event.epoch}/{epochs}: train loss {event.train_loss:.4g}"
    if finite(event.val_loss):
        text += (f", val loss {event.val_loss:.4g}, accuracy {event.val_pixel_accuracy:.4f}, "
                 f"IoU {event.val_iou:.4f}, Dice {event.val_dice:.4f}")
    return text + f" ({format_duration(event.seconds)})"


def summary_text(event) -> str:
    """The one-line result of a finished run (its ``Finished`` event): best metric, lowest loss,
    highest accuracy and wall time."""
    s = event.summary or {}
    parts = []
    if finite(s.get("best_value")):
        from .runs_curves import METRIC_NAMES

        key = str(s.get("best_metric", "metric"))
        label = METRIC_NAMES.get(key, key)
        label = label[:1].lower() + label[1:]  # "validation Dice", not the key val_dice
        parts.append(f"best {label} {s['best_value']:.4g} @ epoch {s.get('best_epoch')}")
    if finite(s.get("lowest_loss")):
        parts.append(f"lowest loss {s['lowest_loss']:.4g} @ {s.get('lowest_loss_epoch')}")
    if finite(s.get("highest_accuracy")):
        parts.append(f"highest accuracy {s['highest_accuracy']:.4f} @ {s.get('highest_accuracy_epoch')}")
    if not parts:
        parts.append("no epoch finished")
    if finite(s.get("wall_seconds")):
        parts.append(format_duration(s["wall_seconds"]))
    return f"Finished ({event.reason}): " + " · ".join(parts)
