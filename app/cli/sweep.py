"""``segstudio sweep``: train every point of a model × loss (× optimizer × ...) grid, one after
another, each into its own run folder; running the same command again continues the sweep."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

EXAMPLE = '{"name": "models-x-losses", "base": "experiment.json", "grid": {"model.name": ["unet", "segnet"], ' \
          '"loss.name": ["bce", "dice", "tversky"], "loss.params.alpha": [0.3, 0.7]}}'


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="train a grid of experiments (models × losses × ...) one after another",
        description=f"Train every combination of a sweep file's grid, e.g. {EXAMPLE}. Finished points are "
                    "skipped and stopped ones resumed when the same command runs again. Exit status 0 when every "
                    "point finished (or the sweep was stopped), 1 when some failed, 2 for a bad sweep file.")
    p.add_argument("sweep", type=Path, metavar="SWEEP.json", help="the sweep: base experiment and grid")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="sweep folder (default: the sweep's \"out\", else <runs folder>/sweeps/<sweep name>)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (overrides the sweep's device)")
    p.add_argument("--dry-run", action="store_true", help="list the points and their state; train nothing")
    p.add_argument("--retry-failed", action="store_true", help="train points that failed before again")
    p.add_argument("--rank-by", default="best_dice", help="metric of the final ranking (default best_dice)")
    p.set_defaults(func=cmd_sweep)


def sweep_dir(spec, out: Path | None) -> Path:
    """Where the sweep's run folders go: --out, the sweep's "out", or the runs folder's sweeps/."""
    from app.core.training.run_folder import default_runs_dir

    if out is not None:
        return out
    if spec.output_dir() is not None:
        return spec.output_dir()
    return default_runs_dir() / "sweeps" / (re.sub(r"[^A-Za-z0-9_.-]+", "-", spec.name).strip("-.") or "sweep")


def _status(out_dir: Path, name: str) -> str:
    import json

    try:
        summary = json.loads((out_dir / name / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "started" if (out_dir / name).exists() else "to do"
    return "done" if summary.get("reason") in ("completed", "time limit") else summary.get("reason", "started")


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def cmd_sweep(args) -> int:
    from app.core.sweep import SweepSpec, expand
    from app.core.sweep_run import run_sweep
    from app.core.sweep_results import METRICS, results_csv, results_table
    from app.core.training.control import TrainingControl
    from app.core.training.events import EpochFinished, TrainingWarning

    from . import CommandError

    if args.rank_by not in METRICS:
        raise CommandError(f"--rank-by {args.rank_by!r} is not known; valid: {', '.join(METRICS)}")
    spec = SweepSpec.load(args.sweep)
    if args.device is not None:
        spec = SweepSpec.from_dict({**spec.to_dict(), "device": args.device}, spec.base_dir)
    points = expand(spec)
    out_dir = sweep_dir(spec, args.out)
    if args.dry_run:
        print(f"{len(points)} points in {out_dir}:")
        width = len(str(len(points)))
        for point in points:
            shown = " ".join(f"{k}={v}" for k, v in point.values.items())
            print(f"{point.index + 1:>{width}}. {point.name}  [{_status(out_dir, point.name)}]  {shown}")
        return 0

    total = len(points)
    print(f"sweep {spec.name}: {total} points into {out_dir}", flush=True)

    def progress(p) -> None:
        if p.status != "running":  # not after every batch
            print(f"[{p.index + 1}/{total}] {p.name}: {p.status}{f' ({p.message})' if p.message else ''}"
                  f" | sweep {100 * p.fraction:.0f}%", flush=True)

    def on_event(name: str, event) -> None:
        if isinstance(event, EpochFinished):
            val = "" if event.val_dice is None else f", val Dice {event.val_dice:.4f} IoU {event.val_iou:.4f}"
            print(f"    {name} epoch {event.epoch}: train loss {event.train_loss:.4f}{val} ({event.seconds:.1f}s)",
                  flush=True)
        elif isinstance(event, TrainingWarning):
            print(f"    warning: {event.message}", file=sys.stderr)

    control = TrainingControl()

    def on_interrupt(signum, frame):  # first Ctrl-C: finish the step, save, stop; second: abort
        print("\nstopping after this step; run the same command again to continue (Ctrl-C again to abort)...",
              file=sys.stderr)
        control.stop()
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = run_sweep(spec, out_dir, progress=progress, on_event=on_event, control=control,
                           retry_failed=args.retry_failed)
    finally:
        signal.signal(signal.SIGINT, previous)
    csv_path = results_csv(out_dir, rank_by=args.rank_by)
    counts = {s: result.count(s) for s in ("completed", "failed", "stopped", "pending")}
    print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {total}; results: {csv_path}")
    for row in results_table(out_dir, args.rank_by)[:5]:
        if row["rank"] is not None:
            print(f"  {row['rank']}. {row['name']}: {args.rank_by} {_number(row[args.rank_by])}, "
                  f"lowest loss {_number(row['lowest_loss'])}, wall {row['wall_seconds']}s")
    if result.stopped:
        print("stopped; run the same command again to continue")
    return 1 if counts["failed"] else 0
