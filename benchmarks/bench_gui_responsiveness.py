"""GUI responsiveness while a CPU training run is in progress, and time to the first window.

1. Heartbeat: the real main window trains the first-launch experiment on the demo data while a
   10 ms ``QTimer`` ticks on the GUI thread; the stall of each tick (gap − 10 ms) is recorded.
   Targets on the 2-core machines: p99 < 50 ms, maximum < 200 ms.
2. Start-up: ``python -m app`` in a fresh process, from launch to the main window being shown
   (``SEGSTUDIO_EXIT_AFTER_SHOW`` makes it report and quit). Target < 2 s.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui_responsiveness.py [--seconds 60] [--launches 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def heartbeat(seconds: float, interval_ms: int = 10) -> dict:
    import numpy as np
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer

    from app.ui.main_window import MainWindow, prepare_application
    from app.ui.self_test import wait_until

    app = prepare_application([])
    window = MainWindow(restore_layout=False)
    window.confirm_close_during_training = lambda: True
    window.resize(1400, 900)
    window.show()
    state, training = window.state, window.panel("Training")
    wait_until(lambda: state.dataset is not None, 120, "loading the demo data")
    state.update("training", None, epochs=1000)  # run until we stop it
    window.show_panel("Training")
    training.start()
    wait_until(lambda: len(training.step_losses()[0]) >= 2, 120, "first training steps")  # warm

    clock, ticks = QElapsedTimer(), []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(lambda: ticks.append(clock.nsecsElapsed() / 1e6))
    clock.start()
    timer.start(interval_ms)
    steps_before = len(training.step_losses()[0])
    wait_until(lambda: clock.elapsed() > seconds * 1000, seconds + 60, "heartbeat")
    timer.stop()
    steps = len(training.step_losses()[0]) - steps_before
    epochs = len(training.history)
    window.close()  # asks the run to stop; the window closes once its thread has ended
    wait_until(lambda: not window.isVisible(), 300, "closing after the run stopped")
    stalls = np.maximum(np.diff(np.asarray(ticks)) - interval_ms, 0.0)
    return {"ticks": len(ticks), "steps": steps, "epochs": epochs, "p50": float(np.percentile(stalls, 50)),
            "p99": float(np.percentile(stalls, 99)), "max": float(stalls.max())}


def startup(launches: int) -> list[float]:
    times = []
    for _ in range(launches):
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "SEGSTUDIO_DATA_DIR": folder, "SEGSTUDIO_EXIT_AFTER_SHOW": "1"}
            start = time.perf_counter()
            process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            for line in process.stdout:
                if line.startswith("window shown"):
                    times.append(time.perf_counter() - start)
                    break
            process.wait(60)
            if process.returncode:
                raise SystemExit(f"launch failed: {process.stderr.read()[-2000:]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--launches", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ["SEGSTUDIO_DATA_DIR"] = folder
        beat = heartbeat(args.seconds)
    print(f"heartbeat 10 ms during training ({args.seconds:.0f} s, {beat['steps']} training steps, "
          f"{beat['epochs']} epochs, {beat['ticks']} ticks): stall p50 {beat['p50']:.1f} ms, "
          f"p99 {beat['p99']:.1f} ms, max {beat['max']:.1f} ms  (targets: p99 < 50, max < 200)")
    times = startup(args.launches)
    print(f"start-up to window shown ({len(times)} launches): median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s  (target < 2 s)")


if __name__ == "__main__":
    main()
