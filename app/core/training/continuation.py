"""Continuing a stopped (or finished) run in its own folder: what it was, and what continuing it
needs, read without torch so the window can ask before anything starts.

A run continues with its own settings from ``checkpoints/last.pt``; only the number of epochs,
the time limit and the learning rate can change (the time limit counts the run's whole training
time, so a run that used its budget needs a larger one; a lower learning rate is the way on
for a run whose loss became NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

from ..config import ConfigError, ExperimentConfig
from .events import EpochFinished
from .run_folder import RunFolder, is_training


@dataclass
class Continuation:
    """A run ready to continue: its config (with the new epochs and time limit), the epochs it
    has trained, their events (to draw its curves so far) and the training time they took."""

    run_dir: Path
    config: ExperimentConfig
    history: list[EpochFinished]
    summary_seconds: float = 0.0  # the training time summary.json recorded when it last ended
    failure: str | None = None  # the message of the failure that ended it, if one did

    @property
    def diverged(self) -> bool:
        """It ended because its loss became NaN or infinite (the same rate would likely again)."""
        return bool(self.failure) and "diverged" in self.failure

    @property
    def epochs_done(self) -> int:
        return self.history[-1].epoch if self.history else 0

    @property
    def seconds_done(self) -> float:
        """Training time used so far: the epochs' seconds, or the last summary's (which also
        counts a part of an epoch before a stop), whichever is more."""
        epochs = sum(e.seconds for e in self.history if e.seconds is not None and math.isfinite(e.seconds))
        return max(epochs, self.summary_seconds)

    @property
    def time_left(self) -> float:
        """Seconds of the time limit still to use (0: no limit)."""
        limit = self.config.training.time_limit
        return max(1.0, limit - self.seconds_done) if limit else 0.0


def read_epoch_events(run_dir: str | Path) -> list[EpochFinished]:
    """The run's history.csv as epoch events (as the Training panel received them); [] without
    one; ValueError naming the file and line for a damaged one."""
    names = [f.name for f in fields(EpochFinished)]
    rows = RunFolder(Path(run_dir), writable=False).read_history()
    missing = [name for name in ("epoch", "train_loss") if rows and name not in rows[0]]
    if missing:
        raise ValueError(f"{Path(run_dir) / 'history.csv'} has no {' or '.join(missing)} column")
    return [EpochFinished(**{name: row.get(name) for name in names}) for row in rows]


def load_run(run_dir: str | Path) -> Continuation:
    """The run in ``run_dir`` as it is now; ValueError saying why it cannot continue."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{run_dir} is not a run folder (it has no config.json)")
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        raise ValueError(f"{run_dir} has no checkpoints/last.pt to continue from (it stopped before its first "
                         "checkpoint)")
    if is_training(run_dir):
        raise ValueError(f"{run_dir} is training now")
    try:
        config = ExperimentConfig.load(config_path)
        summary = RunFolder(run_dir, writable=False).read_summary()
    except (ValueError, OSError) as exc:  # ConfigError is a ValueError
        raise ValueError(str(exc)) from None
    for key in ("path", "label_stack"):
        data = getattr(config.data, key)
        if data and not Path(data).exists():
            raise ValueError(f"its data {data} is not there any more (config.json, data.{key})")
    seconds = summary.get("wall_seconds") if isinstance(summary, dict) else None
    seconds = float(seconds) if isinstance(seconds, (int, float)) and math.isfinite(seconds) else 0.0
    try:
        history = read_epoch_events(run_dir)
    except OSError as exc:
        raise ValueError(str(exc)) from None
    from ..runs.info import FAILED
    from ..runs.reading import read_run

    info = read_run(run_dir)
    failure = (info.message or "failed") if info.status == FAILED else None
    return Continuation(run_dir, config, history, seconds, failure)


def plan_continuation(run_dir: str | Path, epochs: int | None = None,
                      time_limit: float | None = None, lr: float | None = None) -> Continuation:
    """The run in ``run_dir`` set to train until epoch ``epochs`` (default: its own plan) within
    ``time_limit`` seconds of training in all (default: its own; 0: none), at base learning rate
    ``lr`` (default: its own). ValueError when that leaves nothing to train."""
    plan = load_run(run_dir)
    training = plan.config.training
    if epochs is not None:
        training.epochs = int(epochs)
    if time_limit is not None:
        training.time_limit = float(time_limit)
    if lr is not None:
        plan.config.optimizer.lr = float(lr)
    try:
        plan.config.validate()
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    if training.epochs <= plan.epochs_done:
        raise ValueError(f"it has trained {plan.epochs_done} of {training.epochs} epochs; ask for more epochs to "
                         "continue it")
    if training.time_limit and plan.seconds_done >= training.time_limit:
        raise ValueError(f"it has used its time limit ({plan.seconds_done:.0f} of {training.time_limit:.0f} s); "
                         "give a larger one (or none) to continue it")
    return plan
