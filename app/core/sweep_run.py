"""Running a sweep (:mod:`app.core.sweep` defines and expands it): one point after another,
each a normal run folder under ``out_dir``, with ``out_dir/sweep.json`` holding the spec and every
point's status (rewritten atomically). Finished points are skipped, stopped or interrupted ones
resume from ``last.pt``, failed ones stay failed unless ``retry_failed``. Imports torch only in
:func:`run_sweep`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json
from .config import CONTINUABLE, ExperimentConfig, settings_difference
from .sweep import FINISHED_REASONS, SWEEP_FILE, SweepError, SweepSpec, _plain, expand

@dataclass(frozen=True)
class SweepProgress:
    """Sent to ``progress``: the point it is about, its status and the whole sweep's fraction done."""

    index: int  # 0-based point index
    total: int
    name: str
    status: str  # "started", "running" (after each batch), "completed", "stopped", "failed", "skipped"
    fraction: float  # of the whole sweep, 0..1
    message: str = ""


@dataclass
class PointResult:
    name: str
    values: dict[str, Any]
    status: str  # "pending", "running" (in memory only), "completed", "stopped", "failed"
    run_dir: str  # relative to the sweep folder: the point's name
    reason: str | None = None  # the summary's reason: completed, stopped, time limit
    error: str | None = None
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return _plain({"name": self.name, "values": self.values, "status": self.status, "run_dir": self.run_dir,
                       "reason": self.reason, "error": self.error, "summary": self.summary})


@dataclass
class SweepResult:
    out_dir: Path
    points: list[PointResult]
    stopped: bool

    def count(self, status: str) -> int:
        return sum(p.status == status for p in self.points)


def _write_state(out_dir: Path, spec: dict, results: list[PointResult]) -> None:
    atomic_write_json(out_dir / SWEEP_FILE, {"spec": spec,
                                             "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
                                             "points": [r.to_dict() for r in results]})


def read_state(out_dir: str | os.PathLike) -> dict:
    """The sweep.json of ``out_dir``; :class:`SweepError` if there is none."""
    path = Path(out_dir) / SWEEP_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepError(f"{out_dir} has no {SWEEP_FILE}: not a sweep folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SweepError(f"{path} is not readable: {exc}") from None


def _same_settings(run_dir: Path, config: ExperimentConfig, ignore: tuple[str, ...] = ()) -> str | None:
    """None if ``run_dir`` was trained with ``config`` (the device may differ, and the dotted
    keys in ``ignore``), else the first difference."""
    try:
        theirs = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    # the sweep's name and device may change between calls
    return settings_difference(theirs, config.to_dict(), ("name", "training.device", *ignore))


def _continued_config(run_dir: Path, config: ExperimentConfig) -> ExperimentConfig | None:
    """The run's own settings when the point in ``run_dir`` was continued past the sweep's plan
    (more epochs, another time limit or learning rate, and a resume in its log); else None."""
    try:
        continued = "resumed at epoch" in (run_dir / "train.log").read_text(encoding="utf-8", errors="replace")
        if not continued or _same_settings(run_dir, config, ignore=CONTINUABLE):
            return None
        theirs = ExperimentConfig.load(run_dir / "config.json")
    except (OSError, ValueError):  # ConfigError is a ValueError
        return None
    if theirs.training.epochs < config.training.epochs:
        return None  # fewer epochs than the sweep asks: the sweep was changed, not the run continued
    theirs.training.device = config.training.device
    return theirs


def run_sweep(spec: SweepSpec, out_dir: str | os.PathLike, progress: Callable[[SweepProgress], None] | None = None,
              should_stop: Callable[[], bool] | None = None, on_event: Callable[[str, object], None] | None = None,
              *, control=None, retry_failed: bool = False) -> SweepResult:
    """Run every point of ``spec`` into ``out_dir`` one after another; see the module docstring.

    ``progress(SweepProgress)`` on each point's start, batch and end; ``on_event(point_name, event)``
    with every Trainer event; ``should_stop()`` is polled between points and after every batch, and
    ``control`` (a shared :class:`TrainingControl`) can stop or pause the sweep from another thread.
    A point that fails (NaN loss, out of memory, ...) is recorded as failed and the sweep goes on.
    """
    from .experiment_data import load_experiment_data
    from .training.control import TrainingControl
    from .pairing import DatasetError
    from .training.engine import Trainer, TrainingError
    from .training.events import BatchFinished
    from .training.run_folder import RunFolder

    points = expand(spec)
    out_dir = Path(out_dir)
    if out_dir.is_dir() and not (out_dir / SWEEP_FILE).exists() and any(out_dir.iterdir()):
        raise SweepError(f"{out_dir} is not empty and not a sweep folder (no {SWEEP_FILE}); choose a new or empty "
                         "folder so nothing in it is overwritten")
    out_dir.mkdir(parents=True, exist_ok=True)
    control = control or TrainingControl()
    previous = {}
    if (out_dir / SWEEP_FILE).exists():
        state = read_state(out_dir)
        state = state if isinstance(state, dict) else {}
        earlier = (state.get("spec") or {}).get("name") if isinstance(state.get("spec"), dict) else None
        if isinstance(earlier, str) and earlier != spec.name:  # its record and results table would be replaced
            raise SweepError(f"{out_dir} holds the sweep {earlier!r}, not {spec.name!r}; choose another folder, or "
                             f"name this sweep {earlier!r} to add its runs to that one")
        previous = {p["name"]: p for p in state.get("points", [])}
    results = []
    for point in points:
        run_dir = out_dir / point.name
        difference = _same_settings(run_dir, point.config) if run_dir.exists() else None
        continued = _continued_config(run_dir, point.config) if difference else None
        if continued is not None:  # trained on in its folder: the sweep keeps it as it is now
            point.config, difference = continued, None
        if difference:
            raise SweepError(f"{run_dir} was trained with other settings ({difference}); "
                             f"choose another output folder or remove it")
        try:
            summary = RunFolder(run_dir, writable=False).read_summary() if run_dir.exists() else {}
        except ValueError:  # damaged: the point resumes from its checkpoint and writes it again
            summary = {}
        old = previous.get(point.name, {})
        result = PointResult(point.name, point.values, "pending", point.name)
        if summary.get("reason") in FINISHED_REASONS:
            result.status, result.reason, result.summary = "completed", summary["reason"], summary
        elif old.get("status") == "failed" and not retry_failed:
            result.status, result.error = "failed", old.get("error")
        elif summary:
            result.status, result.reason, result.summary = "stopped", summary.get("reason"), summary
        results.append(result)
    spec_data = spec.to_dict(resolve_base=True)
    _write_state(out_dir, spec_data, results)

    datasets: dict[str, Any] = {}
    stop = (lambda: control.stop_requested or bool(should_stop and should_stop()))
    total = len(points)

    def report(i: int, status: str, within: float = 0.0, message: str = "") -> None:
        if progress:
            done = sum(r.status in ("completed", "failed") for j, r in enumerate(results) if j != i)
            progress(SweepProgress(i, total, points[i].name, status, min(1.0, (done + within) / total), message))

    for i, (point, result) in enumerate(zip(points, results)):
        if result.status in ("completed", "failed"):
            report(i, "skipped", 1.0, result.status)
            continue
        if stop():
            break
        run_dir = out_dir / point.name
        folder = RunFolder(run_dir, writable=False)
        resume = folder.last.exists()
        if not resume and run_dir.exists():  # died before its first checkpoint: start again
            for stale in (run_dir / "summary.json", run_dir / "history.csv"):
                stale.unlink(missing_ok=True)
        data_cfg = point.config.data
        data_key = json.dumps(_plain([data_cfg.path, data_cfg.label_stack, data_cfg.val_fraction,
                                      data_cfg.split_seed, data_cfg.mask_mode, data_cfg.splits]))
        if data_key not in datasets:
            datasets[data_key] = load_experiment_data(point.config)
        epochs = point.config.training.epochs

        def listen(event, _i=i, _name=point.name):
            if on_event:
                on_event(_name, event)
            if isinstance(event, BatchFinished):
                report(_i, "running", ((event.epoch - 1) * event.steps + event.step) / (epochs * event.steps))
                if should_stop and should_stop():
                    control.stop()

        result.status, result.error = "running", None
        report(i, "started", 0.0, "resuming" if resume else "")
        try:
            trainer = Trainer(point.config, run_dir, dataset=datasets[data_key], listeners=[listen],
                              control=control, resume=resume)
            summary = trainer.run()
        except Exception as exc:  # noqa: BLE001 - a failing point is recorded and the sweep goes on
            message = str(exc) if isinstance(exc, (TrainingError, DatasetError)) else f"{type(exc).__name__}: {exc}"
            result.status, result.error, result.reason = "failed", message, None
            _write_state(out_dir, spec_data, results)
            report(i, "failed", 1.0, message)
            continue
        result.summary, result.reason = summary, summary["reason"]
        result.status = "completed" if summary["reason"] in FINISHED_REASONS else "stopped"
        _write_state(out_dir, spec_data, results)
        report(i, result.status, 1.0 if result.status == "completed" else 0.0)
        if result.status == "stopped":
            break
    return SweepResult(out_dir, results, stopped=any(r.status in ("pending", "stopped") for r in results))
