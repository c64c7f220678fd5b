"""``segstudio runs``: the table of training runs in a runs folder, as text or CSV."""

from __future__ import annotations

import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("runs", help="list the training runs in a runs folder (or write them as CSV)")
    p.add_argument("folder", nargs="?", type=Path, metavar="FOLDER",
                   help="runs folder (default: the one in the user data folder)")
    p.add_argument("--csv", type=Path, metavar="FILE", help="write the table as CSV to FILE instead of printing it")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.add_argument("--sort", default="date", metavar="KEY",
                   help="column to sort by (default date): name, date, status, dataset, model, loss, optimizer, "
                        "lr, epochs, lowest_loss, highest_accuracy, best_iou, best_dice, rand_error, "
                        "wall_seconds, device, ...")
    p.add_argument("--reverse", action="store_true", help="sort in descending order")
    p.set_defaults(func=cmd_runs)


def format_table(runs, columns) -> str:
    """Aligned text: numbers right-aligned, text left-aligned, '-' for values not recorded."""
    from app.core.runs import NUMERIC_KEYS, format_value
    from . import aligned_table

    cells = [[header for _, header in columns]]
    cells += [[format_value(run, key, missing="-") for key, _ in columns] for run in runs]
    return aligned_table(cells, {i for i, (key, _) in enumerate(columns) if key in NUMERIC_KEYS})


def cmd_runs(args) -> int:
    from app.core.runs import COLUMNS, CSV_COLUMNS, scan_runs, sort_runs, write_runs_csv
    from app.core.training.run_folder import default_runs_dir

    from . import check_table_target

    if args.csv is not None:
        check_table_target(args.csv, args.force)
    keys = [key for key, _ in CSV_COLUMNS]
    if args.sort not in keys:
        raise ValueError(f"--sort {args.sort!r} is not a column; valid: {', '.join(keys)}")
    folder = args.folder if args.folder is not None else default_runs_dir()
    if args.folder is None and not folder.exists():
        runs, problems = [], []
    else:
        runs, problems = scan_runs(folder)
    runs = sort_runs(runs, args.sort, descending=args.reverse)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if args.csv is not None:
        path = write_runs_csv(args.csv, runs)
        print(f"wrote {len(runs)} run{'s' if len(runs) != 1 else ''} to {path}")
        return 0
    if not runs:
        print(f"no runs in {folder}")
        return 0
    print(format_table(runs, COLUMNS))
    return 0
