"""Start-up time: from starting the process (a double-click) to the main window shown.

Starts SegStudio several times, each in a fresh temporary user folder, with
``SEGSTUDIO_EXIT_AFTER_SHOW=1`` (the window prints "window shown after X s in-process" once it
is on screen and quits), and measures the wall-clock time from ``Popen`` to that line, so the
interpreter's or the bundle's own start-up is included. The first launch of each target warms
the disk cache and is not counted. Targets:

- ``pip``: the ``segstudio`` script of this environment (``python -m app`` when there is none);
- ``bundle``: the PyInstaller executable (``dist/SegStudio/segstudio``, or ``--bundle PATH``).

    python benchmarks/bench_startup.py [--runs 7] [--bundle dist/SegStudio/segstudio] [--platform offscreen]

Target: under 2 s from a warm disk cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLE = ROOT / "dist" / "SegStudio" / ("SegStudio.exe" if sys.platform == "win32" else "segstudio")
MARKER = "window shown after"


def pip_command() -> list[str]:
    here = Path(sys.executable).parent
    script = here / ("segstudio.exe" if sys.platform == "win32" else "segstudio")
    if script.is_file():
        return [str(script)]
    found = shutil.which("segstudio")
    return [found] if found else [sys.executable, "-m", "app"]


def launch(command: list[str], platform: str, timeout: float = 120.0) -> tuple[float, float, float | None]:
    """One start: seconds from process start to the window shown, seconds the app reports from
    the window's construction to shown, and seconds from process start to the splash screen."""
    with tempfile.TemporaryDirectory(prefix="segstudio-startup-") as folder:
        env = {**os.environ, "SEGSTUDIO_DATA_DIR": folder, "SEGSTUDIO_EXIT_AFTER_SHOW": "1",
               "QT_QPA_PLATFORM": platform}
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        shown = inside = splash = None
        for line in process.stdout:
            if line.startswith("splash shown"):
                splash = time.perf_counter() - started
            elif MARKER in line:
                shown = time.perf_counter() - started
                inside = float(line.split(MARKER, 1)[1].split()[0])
                break
        try:
            process.wait(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
        if shown is None:
            raise RuntimeError(f"{' '.join(command)} never showed its window (exit status {process.returncode})")
        return shown, inside, splash


def measure(name: str, command: list[str], runs: int, platform: str) -> dict:
    launch(command, platform)  # warm the disk cache
    results = [launch(command, platform) for _ in range(runs)]
    walls = [wall for wall, _, _ in results]
    inside = [app for _, app, _ in results]
    splashes = [splash for _, _, splash in results if splash is not None]
    row = {"target": name, "runs": runs, "median": statistics.median(walls), "min": min(walls),
           "max": max(walls), "in_process_median": statistics.median(inside),
           "splash_median": statistics.median(splashes) if splashes else None}
    splash = f"; splash after {row['splash_median']:.2f} s" if splashes else ""
    print(f"{name:>6}: process start → window shown: median {row['median']:.2f} s "
          f"(min {row['min']:.2f}, max {row['max']:.2f}, {runs} runs){splash}; building and showing the "
          f"window {row['in_process_median']:.2f} s of it   [{' '.join(command)}]", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="the bundle's executable")
    parser.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
                        help="Qt platform plugin (offscreen by default; xcb under a real or virtual X server)")
    parser.add_argument("--only", choices=("pip", "bundle"), help="measure one target only")
    args = parser.parse_args()
    rows = []
    if args.only in (None, "pip"):
        rows.append(measure("pip", pip_command(), args.runs, args.platform))
    if args.only in (None, "bundle"):
        if args.bundle.is_file():
            rows.append(measure("bundle", [str(args.bundle)], args.runs, args.platform))
        else:
            print(f"bundle: not measured, no executable at {args.bundle} (build it with packaging/build.sh)")
    slow = [row["target"] for row in rows if row["median"] >= 2.0]
    print("target < 2 s: " + ("met" if not slow else f"missed by {', '.join(slow)}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
