"""``segstudio loss-curves``: how each loss weighs one pixel as its predicted probability varies
(the Loss landscape panel's "Loss vs prediction" plot, as CSV)."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("loss-curves", help="loss and its gradient versus one pixel's predicted probability, "
                                                  "per loss (CSV)")
    p.add_argument("--losses", help="comma-separated losses, parameters as name:key=value, e.g. "
                                    "dice,bce,focal:gamma=2 (default: the --config experiment's loss)")
    p.add_argument("--config", type=Path, metavar="EXP.json", help="an experiment: its loss and that loss's "
                                                                   "parameters")
    p.add_argument("--region", type=int, default=64, help="pixels in the image a region loss (Dice, Jaccard, "
                                                          "Tversky) spreads over (default 64)")
    p.add_argument("--points", type=int, default=101, help="probabilities from 0.001 to 0.999 (default 101)")
    p.add_argument("--out", type=Path, metavar="FILE", help="write the CSV to FILE instead of printing it")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=cmd_loss_curves)


def curves_csv(curves) -> str:
    """One row per probability: ``p``, then per loss its value and d/dp for a foreground pixel
    (truth 1) and a background pixel (truth 0)."""
    from app.core.landscape import CASES

    header = ["p"] + [f"{loss} {case} {what}" for loss in curves.losses for case in CASES
                      for what in ("loss", "d/dp")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for i, p in enumerate(curves.p):
        row = [f"{p:.6g}"]
        for k in range(len(curves.losses)):
            for c in range(len(CASES)):
                row += [f"{curves.value[k, c, i]:.6g}", f"{curves.gradient[k, c, i]:.6g}"]
        writer.writerow(row)
    return buffer.getvalue()


def cmd_loss_curves(args) -> int:
    from app.core.atomic import atomic_write_text
    from app.core.config import ExperimentConfig
    from app.core.landscape import build_losses, loss_vs_prediction
    from . import CommandError, check_table_target

    if args.losses is None and args.config is None:
        raise CommandError("give --losses (e.g. dice,bce) or --config EXP.json")
    if args.out is not None:
        check_table_target(args.out, args.force)
    config = ExperimentConfig.load(args.config) if args.config is not None else None
    curves = loss_vs_prediction(build_losses(args.losses, config), args.points, context=args.region)
    text = curves_csv(curves)
    if args.out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(args.out, text)
        print(f"wrote {len(curves.p)} rows for {', '.join(curves.losses)} to {args.out}")
    return 0
