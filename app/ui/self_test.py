"""``segstudio --self-test``: the real window, the whole researcher flow, in a minute or two.

Opens the main window, loads the demo data, trains a tiny model for one epoch, shows its
predictions before and after watershed clean-up, changes a watershed parameter and checks the
metrics follow, optionally saves a screenshot, then reviews the run's predictions in the review
workspace (accept one, correct one with the brush, export), and exits 0 only if every step worked. Runs in
a temporary user folder, so nothing of the user's is read or written. The packaged app runs
this as its smoke test.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QBuffer, QEventLoop, QIODevice
from PySide6.QtWidgets import QApplication

from app.core.atomic import atomic_write_bytes


class SelfTestError(Exception):
    """A step of the self-test did not work; the message says which and why."""


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               failure: Callable[[], str | None] = lambda: None) -> None:
    """Run the event loop until ``predicate()``; fail on timeout or when ``failure()`` says so."""
    deadline = time.monotonic() + timeout
    while not predicate():
        problem = failure()
        if problem:
            raise SelfTestError(f"{what}: {problem}")
        if time.monotonic() > deadline:
            raise SelfTestError(f"{what}: nothing after {timeout:.0f} s")
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.005)


def tiny_experiment(state) -> None:
    """Shrink the open experiment so one epoch takes seconds on a CPU."""
    state.update("name", None, value="self-test")
    state.update("model", None, name="unet", params={"depth": 2, "base_width": 8})
    state.update("data", None, patch_size=64)
    state.update("training", None, epochs=1, batch_size=4, steps_per_epoch=6, time_limit=0.0)


def drive(window, screenshot: Path | None = None, log: Callable[[str], None] = print,
          timeout: float = 300.0) -> dict:
    """Take the shown ``window`` through the flow; returns what was measured."""
    state = window.state
    dataset_panel, training = window.panel("Dataset"), window.panel("Training")
    predictions = window.panel("Predictions")
    errors: list[str] = []
    training.session.failed.connect(lambda event: errors.append(f"training failed: {event.message}"))
    predictions.failed.connect(lambda message: errors.append(f"predictions failed: {message}"))
    dataset_panel.loadFailed.connect(lambda message: errors.append(f"dataset failed: {message}"))
    failure = lambda: errors[0] if errors else None  # noqa: E731

    wait_until(lambda: state.dataset is not None and not dataset_panel.loading, timeout,
               "loading the demo data", failure)
    counts = state.dataset.split_counts()
    log(f"self-test: dataset loaded ({len(state.dataset.samples)} samples: {counts})")

    tiny_experiment(state)
    window.show_panel("Training")
    training.start()
    wait_until(lambda: state.training, 30, "starting training", failure)
    log("self-test: training started")
    wait_until(lambda: not state.training, timeout, "training one epoch", failure)
    if not training.history:
        raise SelfTestError(f"training ended without an epoch; {failure() or 'no error reported'}")
    epoch = training.history[-1]
    log(f"self-test: trained 1 epoch (loss {epoch.train_loss:.3f}, val Dice {epoch.val_dice})")

    window.show_panel("Predictions")
    wait_until(lambda: predictions.metrics().get("before"), timeout, "predicting a validation image", failure)
    before = predictions.metrics()
    log(f"self-test: prediction shown; before clean-up {fmt(before['before'])}; after {fmt(before['after'])}")

    passes = predictions.network_passes
    fraction = predictions.params_form.editor("foreground_fraction")
    target = 0.3 if abs(fraction.value() - 0.3) > 1e-6 else 0.5
    posted = []
    predictions.postprocessed.connect(lambda: posted.append(1))
    fraction.setValue(target)
    wait_until(lambda: bool(posted), 30, "re-running the watershed", failure)
    if predictions.network_passes != passes:
        raise SelfTestError("changing a watershed parameter re-ran the network")
    if abs(state.config.postprocess.get("foreground_fraction", -1) - target) > 1e-6:
        raise SelfTestError("the watershed parameter did not reach the experiment")
    after = predictions.metrics()
    log(f"self-test: watershed fraction {target}: after clean-up {fmt(after['after'])}")

    if screenshot is not None:
        QApplication.processEvents()
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not window.grab().save(buffer, "PNG"):
            raise SelfTestError("could not encode the screenshot")
        try:
            atomic_write_bytes(screenshot, bytes(buffer.data()))
        except OSError as exc:
            raise SelfTestError(f"could not save the screenshot to {screenshot}: {exc}") from None
        log(f"self-test: screenshot saved to {screenshot}")
    review = review_step(window, timeout, log)
    return {"dataset": counts, "epoch": epoch, "before": before, "after": after, "review": review}


def review_step(window, timeout: float, log: Callable[[str], None]) -> dict:
    """The clinician's flow on the run just trained: a review of its predictions for the
    validation images, one case accepted, one corrected with the brush, then exported."""
    from app.core.paths import user_data_dir

    state, panel = window.state, window.panel("Review")
    errors: list[str] = []
    panel.session.failed.connect(errors.append)
    failure = lambda: errors[0] if errors else None  # noqa: E731
    images = next((s.image_path.parent for s in state.dataset.split("val") if getattr(s, "image_path", None)), None)
    if images is None or state.checkpoint is None:
        raise SelfTestError("reviewing: no validation image folder or checkpoint to review")
    work = user_data_dir() / "self-test-review"
    panel.set_reviewer("self-test")
    window.set_review_mode(True)
    panel.jobs.create({"kind": "checkpoint", "images": str(images), "masks": "", "checkpoint": str(state.checkpoint),
                       "review": str(work / "review")})
    wait_until(lambda: panel.session.data is not None, timeout, "creating a review from the checkpoint",
               lambda: failure() or (panel.banner.text() if panel.banner.isVisible() else None))
    names = panel.session.names()
    panel.decide("accepted")
    wait_until(lambda: panel.session.data is not None and panel.session.current == names[min(1, len(names) - 1)],
               30, "moving to the next case", failure)
    panel.session.begin_edit()
    panel.session.stroke([(2, 2), (12, 2)], 2, 1)
    panel.session.end_edit()
    if panel.session.store.case(panel.session.current).state != "corrected":
        raise SelfTestError(f"reviewing: the brush correction was not recorded ({failure() or 'no error'})")
    panel.ask_export = lambda: (str(work / "export"), "png")
    panel.export_review()
    wait_until(lambda: panel.jobs.last_export is not None, timeout, "exporting the review", failure)
    exported = len(panel.jobs.last_export.masks)
    if exported != min(2, len(names)):
        raise SelfTestError(f"reviewing: exported {exported} masks, expected {min(2, len(names))}")
    window.set_review_mode(False)
    log(f"self-test: reviewed {len(names)} predicted masks (1 accepted, 1 corrected), exported {exported}")
    return {"cases": len(names), "exported": exported}


def fmt(scores: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items())


def run_self_test(screenshot: str | None = None, timeout: float = 300.0) -> int:
    """Entry point of ``segstudio --self-test``; returns the exit status."""
    with tempfile.TemporaryDirectory(prefix="segstudio-self-test-") as folder:
        previous = os.environ.get("SEGSTUDIO_DATA_DIR")
        os.environ["SEGSTUDIO_DATA_DIR"] = folder
        try:
            return _run(Path(screenshot).absolute() if screenshot else None, timeout)
        finally:
            if previous is None:
                os.environ.pop("SEGSTUDIO_DATA_DIR", None)
            else:
                os.environ["SEGSTUDIO_DATA_DIR"] = previous


def _run(screenshot: Path | None, timeout: float) -> int:
    from .main_window import MainWindow, prepare_application

    started = time.perf_counter()
    app = prepare_application([])
    window = MainWindow(restore_layout=False)
    window.confirm_close_during_training = lambda: True
    window.show()
    status = 0
    try:
        drive(window, screenshot, timeout=timeout)
        print(f"self-test: passed in {time.perf_counter() - started:.1f} s", flush=True)
    except SelfTestError as exc:
        print(f"self-test: FAILED: {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        window.close()
        app.processEvents()
    return status
