"""``segstudio run-rename``, ``run-delete`` and ``compare``: what the Runs panel does to runs,
without the window."""

from __future__ import annotations

import sys
from pathlib import Path


def register(subparsers) -> None:
    r = subparsers.add_parser("run-rename", help="rename a run folder (not while it trains)")
    r.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    r.add_argument("new_name", metavar="NEW_NAME")
    r.set_defaults(func=cmd_run_rename)

    d = subparsers.add_parser("run-delete", help="delete run folders; refuses any folder that holds more than "
                                                 "SegStudio wrote into it")
    d.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    d.add_argument("--yes", action="store_true", help="really delete (required: there is no undo)")
    d.set_defaults(func=cmd_run_delete)

    c = subparsers.add_parser("compare", help="score runs image by image on the validation images they share")
    c.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    c.add_argument("--data", type=Path, help="dataset folder (default: each run's own; needed for runs trained "
                                             "on different folders)")
    c.add_argument("--split", default="val", help="train, val or test (default val)")
    c.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    c.add_argument("--csv", type=Path, metavar="FILE", help="also write the table as CSV to FILE")
    c.add_argument("--force", action="store_true", help="replace FILE if it exists")
    c.set_defaults(func=cmd_compare)


def cmd_run_rename(args) -> int:
    from app.core.runs.manage import rename_run

    target = rename_run(args.run_dir, args.new_name)  # checks the folder first, whatever the name
    if target == args.run_dir:
        print(f"{args.run_dir} is already named {args.new_name}; nothing changed")
    else:
        print(f"renamed {args.run_dir} to {target}")
    return 0


def cmd_run_delete(args) -> int:
    from app.core.runs.manage import delete_run
    from . import CommandError

    if not args.yes:
        raise CommandError(f"deleting {len(args.run_dirs)} run folder{'s' if len(args.run_dirs) != 1 else ''} "
                           "cannot be undone; add --yes to delete")
    failed = 0
    for path in args.run_dirs:
        try:
            delete_run(path)
        except (OSError, ValueError, RuntimeError) as error:  # the others are still deleted
            print(f"segstudio run-delete: {error}", file=sys.stderr)
            failed += 1
        else:
            print(f"deleted {path}")
    return 2 if failed else 0


def _progress(done: int, total: int) -> None:
    if done == total or done % 10 == 0:
        print(f"  {done}/{total} predictions", file=sys.stderr, flush=True)


def cmd_compare(args) -> int:
    from app.core.atomic import atomic_write_text
    from app.core.runs.compare import compare_per_image
    from . import aligned_table, check_table_target

    if args.csv is not None:
        check_table_target(args.csv, args.force)
    result = compare_per_image(args.run_dirs, args.data, args.split, args.device, progress=_progress)
    for problem in result.problems:
        print(f"warning: {problem}", file=sys.stderr)
    headers = ["image", "mean Dice"] + [f"{name} Dice" for name in result.names]
    rows = [[image, f"{result.mean_dice[i]:.4f}"] + [f"{v:.4f}" for v in result.dice[i]]
            for i, image in enumerate(result.images)]
    means = result.dice.mean(axis=0)
    rows.append([f"mean of {len(result.images)}", f"{means.mean():.4f}"] + [f"{v:.4f}" for v in means])
    print(aligned_table([headers, *rows], set(range(1, len(headers)))))
    if args.csv is not None:
        atomic_write_text(args.csv, result.to_csv())
        print(f"wrote {args.csv}")
    return 0
