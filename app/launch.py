"""The console and GUI entry points. They import the command line only once Ctrl-C can be
answered: an interrupt while it is still importing (about 0.2 s) exits quietly with status
130, as one during a command does, instead of printing a traceback."""

from __future__ import annotations

import sys


def _interrupted() -> int:
    print("segstudio: interrupted", file=sys.stderr)
    return 130


def main() -> int:
    """``segstudio``: the command line (no arguments: the window)."""
    try:
        from app.cli import main as run
    except KeyboardInterrupt:
        return _interrupted()
    return run()


def gui_main() -> int:
    """``segstudio-gui``: the window, without a console on Windows."""
    try:
        from app.cli import gui_main as run
    except KeyboardInterrupt:
        return _interrupted()
    return run()
