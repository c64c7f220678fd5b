"""The ``segstudio`` command: no arguments opens the window, a file opens the window with it
(``segstudio experiment.json``: what a file manager's "Open with" runs); subcommands work without it.

Each subcommand module has ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. Expected failures (bad data, bad settings, files in the way) reach
the terminal as one line on stderr and exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app import __version__

from . import (data, desktop, landscape, loss_curves, plots, predict, review, review_decide, review_settings,
               run_manage, runs, sweep, train)

COMMAND_MODULES = (data, train, predict, review, review_decide, review_settings, runs, run_manage, plots, sweep,
                   landscape, loss_curves, desktop)


class CommandError(Exception):
    """A failure to report as one line."""


def refuse_writing_inside(out: Path, source: str | Path, what: str) -> None:
    """CommandError when ``out`` is ``source``'s folder (a file's parent) or inside it: SegStudio
    never writes into the folders it reads images from."""
    source = Path(source).resolve()
    if not source.exists():  # nothing to write into; reading it will say it is missing
        return
    folder = source if source.is_dir() else source.parent
    target = Path(out).resolve()
    if target == folder or folder in target.parents:
        raise CommandError(f"{out} is inside the {what} folder {folder}; SegStudio never writes there")


def check_table_target(path: Path, force: bool) -> None:
    """CommandError unless ``path`` is a place for a CSV table: a ``.csv`` file name in an
    existing folder, not a folder, not a file there already (without ``force``) and never a
    run's own history.csv."""
    from app.core.runs.reading import refuse_run_record

    if path.is_dir():
        raise CommandError(f"{path} is a folder; give a file name ending in .csv")
    if path.suffix.lower() != ".csv":
        raise CommandError(f"{path}: the table is written as CSV; give a file name ending in .csv")
    try:
        refuse_run_record(path)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if path.exists() and not force:
        raise CommandError(f"{path} exists; add --force to replace it")
    if not path.parent.is_dir():
        raise CommandError(f"folder {path.parent} does not exist")


def aligned_table(rows: list[list[str]], right: set[int] | frozenset[int] = frozenset()) -> str:
    """Rows of cells as text columns two spaces apart; the columns in ``right`` right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return "\n".join("  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows)


def warn_about_problems(dataset, shown: int = 10) -> None:
    """Name on stderr the files a dataset load left out (and how its masks were read)."""
    for problem in dataset.problems[:shown]:
        print(f"warning: {problem.path}: {problem.reason}", file=sys.stderr)
    if len(dataset.problems) > shown:
        print(f"warning: and {len(dataset.problems) - shown} more dataset problems (segstudio dataset-info lists "
              "them all)", file=sys.stderr)


def _expected_errors() -> tuple[type[BaseException], ...]:
    from app.core.imageio import ImageReadError
    from app.core.pairing import DatasetError
    from app.core.registry import RegistryError
    from app.core.review import ReviewError
    from app.core.sweep import SweepError
    from app.core.training.checkpoint import CheckpointError
    from app.core.training.engine import TrainingError

    return (CommandError, DatasetError, RegistryError, ImageReadError, CheckpointError, TrainingError,
            ReviewError, SweepError, OSError, ValueError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segstudio",
        description="SegStudio: biomedical image segmentation experiments. Run without arguments to open the window.",
    )
    parser.add_argument("--version", action="version", version=f"SegStudio {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="open the window, train a tiny model on the demo data for one epoch, show its "
                             "predictions before and after clean-up, and exit 0 only if all of it worked")
    parser.add_argument("--screenshot", metavar="FILE", help="with --self-test: save a screenshot of the window")
    parser.add_argument("--review", metavar="REVIEW_DIR", help="open the window in the review workspace with this "
                                                              "review (see review-new)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    parser.command_names = set(subparsers.choices)
    return parser


def display_problem() -> str | None:
    """Why no window can be opened here (Linux with no X11 or Wayland display), else None; Qt
    itself would abort the process with a core dump."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set); the commands work "
            "without one (segstudio --help), or set QT_QPA_PLATFORM=offscreen")


def launch_gui(argv: list[str] | None = None, review: str | None = None, open_path: str | None = None) -> int:
    """Open the main window (``app.ui``), with ``open_path`` (an experiment, checkpoint, review or
    dataset) opened in it when given; ``argv`` may hold Qt's options and, when neither ``review``
    nor ``open_path`` is given, a path to open (``segstudio-gui FILE``: a desktop entry's ``%f``).
    A splash screen is up while the window's modules load and the window is built."""
    problem = display_problem()
    if problem:
        print(f"segstudio: {problem}", file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication  # noqa: PLC0415 - Qt is loaded only for the window

    from app.ui.resources import set_identity, show_splash  # noqa: PLC0415

    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0], *(argv or [])])
        if open_path is None and review is None:  # what Qt left once it took its own options
            rest = [arg for arg in app.arguments()[1:] if not arg.startswith("-")]
            open_path = rest[0] if rest else None
    set_identity(app)
    splash = show_splash(app)
    if splash is not None and os.environ.get("SEGSTUDIO_EXIT_AFTER_SHOW"):  # for benchmarks/bench_startup.py
        print("splash shown", flush=True)
    from app.ui.main_window import run  # noqa: PLC0415 - the heavy part, behind the splash

    return run([], review, open_path, splash)


def file_to_open(argv: list[str], commands: set[str]) -> str | None:
    """The path in ``segstudio PATH``: one argument that is no option and no command, and names an
    existing file or folder or looks like a path (has a folder or an extension)."""
    if len(argv) != 1 or argv[0].startswith("-") or argv[0] in commands:
        return None
    path = Path(argv[0])
    if path.exists() or path.suffix or len(path.parts) > 1:
        return argv[0]
    return None


def run_self_test(screenshot: str | None) -> int:
    from app.ui.self_test import run_self_test as self_test  # noqa: PLC0415 - Qt only for the window

    return self_test(screenshot)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        return launch_gui()
    parser = build_parser()
    path = file_to_open(argv, parser.command_names)
    if path is not None:
        return launch_gui([], None, path)
    args = parser.parse_args(argv)
    if args.self_test:
        if args.command is not None:
            parser.error("--self-test takes no command")
        if args.screenshot and os.path.lexists(args.screenshot):
            parser.error(f"--screenshot {args.screenshot} exists; name a new file")
        return run_self_test(args.screenshot)
    if args.screenshot:
        parser.error("--screenshot needs --self-test")
    if args.review:
        if args.command is not None:
            parser.error("--review takes no command")
        return launch_gui([], args.review)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # first: the clause below imports modules, maybe while torch half-loaded
        print(f"segstudio {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`segstudio runs | head`): stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError):
            pass
        return 141
    except _expected_errors() as exc:
        print(f"segstudio {args.command}: {exc}", file=sys.stderr)
        return 2


def gui_main() -> int:
    """Entry point of the ``segstudio-gui`` script."""
    return launch_gui(sys.argv[1:])
