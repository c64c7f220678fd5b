"""The review workspace in the real main window, end to end: a run's checkpoint predicts a
folder of images, the clinician reviews them from the keyboard, corrects one, exports, and
finds everything again at the next launch."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from app.core.review import ReviewStore
from app.ui.main_window import MainWindow

from .conftest import tiny_config
from .test_review_panel import activate, drag, wait_loaded

WAIT = 60000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, demo_folder):
    """A real (tiny) training run's best checkpoint."""
    from app.core.training.engine import Trainer

    config = tiny_config(demo_folder)
    config.training.epochs = 3
    folder = tmp_path_factory.mktemp("review-run") / "run"
    Trainer(config, folder).run()
    return folder / "checkpoints" / "best.pt"


def new_window(qtbot) -> MainWindow:
    win = MainWindow(restore_layout=True)
    win.confirm_close_during_training = lambda: True
    qtbot.addWidget(win)
    win.show()
    return win


def test_review_from_a_checkpoint_end_to_end(qtbot, checkpoint, demo_folder, tmp_path):
    images = demo_folder / "train" / "images"
    image_names = sorted(p.stem for p in images.iterdir())
    before = {p.name: p.read_bytes() for p in images.iterdir()}
    win = new_window(qtbot)
    review = win.panel("Review")
    review.set_reviewer("Dr E2E")

    # the distraction-free layout: only the review, no training controls
    win.review_mode_action.trigger()
    assert win.docks["Review"].isVisible()
    assert not any(dock.isVisible() for name, dock in win.docks.items() if name != "Review")
    assert not win.toolbar.isVisible() and not win.train_menu.menuAction().isVisible()

    folder = tmp_path / "review"
    review.ask_new_review = lambda: {"kind": "checkpoint", "images": str(images), "masks": "",
                                     "checkpoint": str(checkpoint), "review": str(folder)}
    with qtbot.waitSignal(review.reviewOpened, timeout=WAIT):
        review.new_review()
    wait_loaded(qtbot, review, image_names[0])
    assert review.session.names() == image_names
    assert sorted(p.stem for p in (folder / "predictions").iterdir()) == image_names
    store = review.session.store
    assert store.record.source["kind"] == "checkpoint" and store.record.source["model"] == "unet"

    activate(qtbot, review)
    qtbot.keyClick(review.canvas, Qt.Key.Key_A)  # accept the first
    wait_loaded(qtbot, review, image_names[1])
    qtbot.keyClick(review.canvas, Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)  # reject the second: reason 2
    wait_loaded(qtbot, review, image_names[2])
    qtbot.keyClick(review.canvas, Qt.Key.Key_B)  # brush: paint a stroke on the third
    review.tools.radius.setValue(2)
    drag(review.canvas, [(5, 5), (20, 5)])
    assert review.session.working[5, 5:21].all()
    qtbot.keyClick(review.canvas, Qt.Key.Key_Right)
    wait_loaded(qtbot, review, image_names[3])
    assert review.queue.progress_label.text().startswith(f"3 of {len(image_names)} reviewed")

    out = tmp_path / "export"
    review.ask_export = lambda: (str(out), "png")
    review.export_review()
    qtbot.waitUntil(lambda: review.jobs.last_export is not None, timeout=WAIT)
    assert sorted(p.name for p in out.glob("*.png")) == [f"{image_names[0]}.png", f"{image_names[2]}.png"]
    corrected = np.asarray(Image.open(out / f"{image_names[2]}.png"))
    assert corrected.dtype == np.uint8 and set(np.unique(corrected)) <= {0, 255} and corrected[5, 5:21].all()
    rows = {r["name"]: r for r in csv.DictReader((out / "review_report.csv").open())}
    assert rows[image_names[1]]["state"] == "rejected" and rows[image_names[1]]["reason"] == "Missed structure"
    assert rows[image_names[2]]["corrected"] == "yes" and rows[image_names[2]]["model"] == "unet"
    assert rows[image_names[0]]["checkpoint"] == str(checkpoint.resolve())
    html = (out / "review_summary.html").read_text()
    assert "3 of " in html and html.count("<img") == 1

    # leave the workspace layout: the panels come back
    win.review_mode_action.trigger()
    assert win.docks["Dataset"].isVisible() and win.toolbar.isVisible()
    win.review_mode_action.trigger()  # and close the window in review mode
    win.close()
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before  # sources untouched

    # next launch: the workspace layout and the review come back, at the same case
    again = new_window(qtbot)
    assert again.review_mode_action.isChecked()
    panel = again.panel("Review")
    qtbot.waitUntil(lambda: panel.session.store is not None, timeout=WAIT)
    wait_loaded(qtbot, panel, image_names[3])
    assert panel.session.store.case(image_names[2]).state == "corrected"
    again.close()


def test_review_command_line_option_opens_the_review(tmp_path, demo_folder):
    """``segstudio --review DIR`` opens the window with that review (it takes the review's lock)."""
    folder = tmp_path / "review"
    train = demo_folder / "train"
    ReviewStore.create_from_folders(folder, train / "images", train / "masks").close()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SEGSTUDIO_EXIT_AFTER_SHOW": "1",
           "SEGSTUDIO_DATA_DIR": str(tmp_path / "user")}
    result = subprocess.Popen([sys.executable, "-m", "app", "--review", str(folder)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    out, err = result.communicate(timeout=120)
    assert result.returncode == 0, err
    owner = json.loads((folder / "review.owner.json").read_text())
    assert owner["pid"] == result.pid


@pytest.mark.parametrize("dropped", ["folder", "review.json"])
def test_dropping_a_review_folder_or_its_record_opens_it(qtbot, demo_folder, tmp_path, dropped, monkeypatch):
    """A dropped review.json was opened as an experiment ("cases: unknown key in the experiment")."""
    from PySide6.QtWidgets import QMessageBox

    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args, **kw: warnings.append(args[2]))
    folder = tmp_path / "review"
    train = demo_folder / "train"
    ReviewStore.create_from_folders(folder, train / "images", train / "masks").close()
    win = new_window(qtbot)
    assert win.open_paths([str(folder if dropped == "folder" else folder / "review.json")])
    panel = win.panel("Review")
    assert panel.session.store is not None and panel.session.store.folder == folder
    assert win.docks["Review"].isVisible()
    win.close()
