"""The ``segstudio`` command: no arguments opens the window; subcommands work without it.

Each subcommand module has ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. Expected failures (bad data, bad settings, files in the way) reach
the terminal as one line on stderr and exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from app import __version__

from . import data, predict, train

COMMAND_MODULES = (data, train, predict)


class CommandError(Exception):
    """A failure to report as one line."""


def _expected_errors() -> tuple[type[BaseException], ...]:
    from app.core.imageio import ImageReadError
    from app.core.pairing import DatasetError
    from app.core.registry import RegistryError
    from app.core.training.checkpoint import CheckpointError
    from app.core.training.engine import TrainingError

    return (CommandError, DatasetError, RegistryError, ImageReadError, CheckpointError, TrainingError,
            OSError, ValueError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segstudio",
        description="SegStudio: biomedical image segmentation experiments. Run without arguments to open the window.",
    )
    parser.add_argument("--version", action="version", version=f"SegStudio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def launch_gui(argv: list[str] | None = None) -> int:
    """Open the main window (``app.ui``)."""
    if importlib.util.find_spec("app.ui") is None:
        print("segstudio: this build has no window yet; use a subcommand (segstudio --help)", file=sys.stderr)
        return 2
    from app.ui.main_window import run  # noqa: PLC0415 - Qt is loaded only for the window

    return run(argv or [])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        return launch_gui()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except _expected_errors() as exc:
        print(f"segstudio {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"segstudio {args.command}: interrupted", file=sys.stderr)
        return 130


def gui_main() -> int:
    """Entry point of the ``segstudio-gui`` script."""
    return launch_gui(sys.argv[1:])
