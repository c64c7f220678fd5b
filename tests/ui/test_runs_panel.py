"""The Runs panel: the table from synthetic run folders (values, sort, filter, problems),
rename/delete through the hooks and their refusals, curve overlays, CSV and PNG export, the
keys, and the per-image comparison of tiny really-trained runs."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from app.core.runs import COLUMNS, runs_table_csv
from app.ui.runs_curves import run_colour
from app.ui.runs_panel import RunsPanel
from app.ui.runs_table import COLUMN_KEYS
from tests.core.test_runs import HEADER, config, finished_run, make_run
from tests.ui.conftest import tiny_config

COMPARE_TIMEOUT = 120_000


# ------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture
def runs_root(tmp_path):
    """Four runs: exp-a (finished, cuda, 40.25 s), b (history only, lowest loss 0.3, 5 s),
    c (config only, unet: nothing scored), and a sweep point grid/pt1 (65 s)."""
    root = tmp_path / "runs"
    finished_run(root)
    make_run(root, "b", history=HEADER + "1,0.9,0.6,0.3,0.7,0.5,0.6,0.01,5\n",
             summary={"reason": "completed", "epochs": 1, "wall_seconds": 5.0, "device": "cpu"})
    make_run(root, "c", config=config(model="unet"))
    make_run(root / "sweeps" / "grid", "pt1", config=config("pt1", model="unet", loss="dice"),
             history=HEADER + "1,0.8,0.6,0.6,0.7,0.4,0.5,0.01,30\n2,0.7,0.65,0.55,0.72,0.45,0.55,0.01,35\n",
             summary={"reason": "completed", "epochs": 2, "wall_seconds": 65.0, "device": "cpu"})
    (root / "sweeps" / "grid" / "sweep.json").write_text("{}")
    return root


@pytest.fixture
def panel(qtbot, state):
    panel = RunsPanel(state)
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    yield panel
    panel.shutdown()


def scan(qtbot, panel, folder) -> None:
    with qtbot.waitSignal(panel.scanned, timeout=10_000):
        panel.set_folder(folder)


def column(panel, key: str) -> list[str]:
    """The texts of one column, top to bottom as shown."""
    col = COLUMN_KEYS.index(key)
    return [panel.proxy.index(row, col).data() for row in range(panel.proxy.rowCount())]


def names(panel) -> list[str]:
    return column(panel, "name")


def sort_by(panel, key: str, descending: bool = False) -> None:
    order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
    panel.table.sortByColumn(COLUMN_KEYS.index(key), order)


def select(qtbot, panel, *paths) -> None:
    with qtbot.waitSignal(panel.curvesShown, timeout=10_000):
        panel.select_runs(paths)


# ------------------------------------------------------------------------- the table

def test_the_table_lists_every_run_with_the_cores_values(qtbot, panel, runs_root):
    scan(qtbot, panel, runs_root)
    assert panel.model.columnCount() == len(COLUMNS)
    assert [panel.model.headerData(i, Qt.Orientation.Horizontal) for i in range(len(COLUMNS))][:3] == [
        "Name", "Date", "Status"]
    sort_by(panel, "name")
    assert names(panel) == ["20240102-030405-exp-a", "b", "c", "grid/pt1"]  # the sweep point, by its sweep
    row = dict(zip(COLUMN_KEYS, (panel.proxy.index(0, c).data() for c in range(len(COLUMNS)))))
    assert row["date"] == "2024-01-02 03:04" and row["status"] == "finished"
    assert (row["dataset"], row["model"], row["loss"], row["optimizer"], row["lr"]) == (
        "cells", "segnet", "focal", "sgd", "0.01")
    assert (row["epochs"], row["lowest_loss"], row["lowest_loss_epoch"]) == ("3", "0.5000", "2")
    assert (row["highest_accuracy"], row["highest_accuracy_epoch"]) == ("0.8000", "2")
    assert (row["best_iou"], row["best_dice"], row["rand_error"]) == ("0.6500", "0.7500", "")
    assert (row["wall_seconds"], row["device"], row["has_checkpoint"]) == ("40.2s", "cuda:0", "yes")
    assert panel.count_label.text() == "4 runs" and panel.message() == ""


def test_numbers_sort_as_numbers_with_missing_values_last(qtbot, panel, runs_root):
    scan(qtbot, panel, runs_root)
    assert names(panel)[-1] == "20240102-030405-exp-a"  # newest first by default; the others are from today
    sort_by(panel, "wall_seconds")  # as text "1m 05s" < "40.2s" < "5.0s"; as numbers 5 < 40.25 < 65
    assert column(panel, "wall_seconds") == ["5.0s", "40.2s", "1m 05s", ""]
    sort_by(panel, "wall_seconds", descending=True)
    assert column(panel, "wall_seconds") == ["1m 05s", "40.2s", "5.0s", ""]  # c (no time) still last
    sort_by(panel, "lowest_loss")
    assert names(panel) == ["b", "20240102-030405-exp-a", "grid/pt1", "c"]
    sort_by(panel, "lowest_loss", descending=True)
    assert names(panel) == ["grid/pt1", "20240102-030405-exp-a", "b", "c"]


def test_the_filter_keeps_rows_matching_every_word(qtbot, panel, runs_root):
    scan(qtbot, panel, runs_root)
    sort_by(panel, "name")
    panel.filter_edit.setText("UNET")
    assert names(panel) == ["c", "grid/pt1"] and panel.count_label.text() == "2 of 4 runs"
    panel.filter_edit.setText("unet dice")
    assert names(panel) == ["grid/pt1"]
    panel.filter_edit.setText("grid")  # the sweep's name is part of the label
    assert names(panel) == ["grid/pt1"]
    panel.filter_edit.setText("segnet cuda")
    assert names(panel) == ["20240102-030405-exp-a"]
    panel.filter_edit.setText("")
    assert len(names(panel)) == 4


def test_unreadable_files_are_named_in_a_message(qtbot, panel, runs_root):
    make_run(runs_root, "damaged", history=HEADER + "1,0.5,0.6,0.4,0.7,0.3,0.4,0.001,2\n")
    (runs_root / "damaged" / "config.json").write_text('{"name": ')
    scan(qtbot, panel, runs_root)
    assert "damaged" in names(panel)  # listed with what could be read
    assert "damaged: config.json: not valid JSON" in panel.message()
    assert panel.banner.property("kind") == "warning"
    scan(qtbot, panel, runs_root / "missing")
    assert panel.model.rowCount() == 0 and "does not exist" in panel.message()


# ------------------------------------------------------------------------- open, reveal, rename, delete

def test_enter_opens_and_show_folder_reveals_the_run(qtbot, panel, runs_root):
    scan(qtbot, panel, runs_root)
    select(qtbot, panel, runs_root / "b")
    with qtbot.waitSignal(panel.openRun) as opened:
        qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    assert opened.args == [runs_root / "b"]
    revealed = []
    panel.reveal_path = revealed.append
    panel.reveal_button.click()
    assert revealed == [runs_root / "b"]


def test_f2_renames_through_the_hook_and_refuses_bad_names(qtbot, panel, runs_root):
    scan(qtbot, panel, runs_root)
    select(qtbot, panel, runs_root / "b")
    answers = iter(["best run", "a/b", "c", "b-final"])
    panel.ask_new_name = lambda current: next(answers)
    qtbot.keyClick(panel.table, Qt.Key.Key_F2)
    assert (runs_root / "best run").is_dir() and not (runs_root / "b").exists()
    assert "best run" in names(panel) and [r.name for r in panel.selected_runs()] == ["best run"]
    panel.rename_selected()  # refused by check_run_name, with its message
    assert "cannot contain '/'" in panel.message() and (runs_root / "best run").is_dir()
    panel.rename_selected()  # taken
    assert "already exists" in panel.message() and (runs_root / "c").is_dir()
    panel.rename_button.click()
    assert (runs_root / "b-final").is_dir() and "Renamed best run to b-final" in panel.message()


def test_a_training_run_cannot_be_renamed_or_deleted(qtbot, panel, runs_root, state):
    """Only the run training is blocked: the run whose results are shown (the last one finished)
    was taken for it, so a finished run could not be renamed while another trained."""
    shown = runs_root / "20240102-030405-exp-a"
    state.set_run(shown)
    scan(qtbot, panel, runs_root)
    with qtbot.waitSignal(panel.scanned, timeout=10_000):
        state.set_training(True, runs_root / "b")  # rescans
    select(qtbot, panel, shown)
    assert panel.rename_button.isEnabled() and "Training now" not in panel.rename_button.toolTip()
    select(qtbot, panel, runs_root / "b")
    asked = []
    panel.ask_new_name = lambda current: asked.append(current) or "x"
    panel.ask_confirm_delete = lambda names: asked.append(names) or True
    assert not panel.rename_button.isEnabled() and not panel.delete_button.isEnabled()
    assert "Training now: b" in panel.rename_button.toolTip()
    assert "training" in column(panel, "status")
    assert panel.rename_selected() is None and panel.delete_selected() is False
    assert asked == [] and "Cannot delete a run that is training" in panel.message()
    assert (runs_root / "b").is_dir()
    with qtbot.waitSignal(panel.scanned, timeout=10_000):
        state.set_training(False)
    select(qtbot, panel, runs_root / "b")
    moved = []
    state.runMoved.connect(lambda old, new: moved.append((old, new)))  # other panels follow the folder
    assert panel.rename_button.isEnabled() and panel.rename_selected() == runs_root / "x"
    assert moved == [(runs_root / "b", runs_root / "x")]


def test_a_run_whose_training_lock_is_held_elsewhere_is_training(qtbot, panel, runs_root):
    from app.core.training.run_folder import training_lock

    scan(qtbot, panel, runs_root)
    select(qtbot, panel, runs_root / "c")  # unfinished, written a moment ago, but nobody trains it
    assert panel.delete_button.isEnabled() and panel.training_reason(panel.selected_runs()[0]) is None
    lock = training_lock(runs_root / "c")  # as a Trainer in another window or process holds it
    lock.acquire()
    try:
        with qtbot.waitSignal(panel.scanned, timeout=10_000):
            panel.refresh()
        select(qtbot, panel, runs_root / "c")
        assert not panel.delete_button.isEnabled()
        assert "training now" in panel.training_reason(panel.selected_runs()[0])
        assert "training" in column(panel, "status")
    finally:
        lock.release()
    with qtbot.waitSignal(panel.scanned, timeout=10_000):
        panel.refresh()
    select(qtbot, panel, runs_root / "c")
    assert panel.delete_button.isEnabled()


def test_a_run_that_started_training_after_the_scan_is_refused_by_the_core(qtbot, panel, runs_root):
    from app.core.training.run_folder import training_lock

    scan(qtbot, panel, runs_root)
    select(qtbot, panel, runs_root / "c")
    panel.ask_new_name = lambda current: "renamed"
    lock = training_lock(runs_root / "c")
    lock.acquire()
    try:
        assert panel.rename_selected() is None
        assert "is training now" in panel.message() and (runs_root / "c").is_dir()
    finally:
        lock.release()


def test_delete_asks_with_the_names_then_deletes_in_the_background(qtbot, panel, runs_root):
    scan(qtbot, panel, runs_root)
    sort_by(panel, "name")
    select(qtbot, panel, runs_root / "b", runs_root / "sweeps" / "grid" / "pt1")
    asked = []
    panel.ask_confirm_delete = lambda names: asked.append(names) or False
    qtbot.keyClick(panel.table, Qt.Key.Key_Delete)
    assert asked == [["b", "grid/pt1"]] and (runs_root / "b").is_dir()  # declined: nothing deleted
    panel.ask_confirm_delete = lambda names: True
    with qtbot.waitSignal(panel.runsDeleted, timeout=10_000) as deleted:
        panel.delete_button.click()
    assert deleted.args == [[runs_root / "b", runs_root / "sweeps" / "grid" / "pt1"]]
    assert not (runs_root / "b").exists() and not (runs_root / "sweeps" / "grid" / "pt1").exists()
    assert (runs_root / "sweeps" / "grid" / "sweep.json").is_file()  # the sweep's own files stay
    assert sorted(names(panel)) == ["20240102-030405-exp-a", "c"] and "Deleted 2 runs" in panel.message()


# ------------------------------------------------------------------------- curves and export

def test_two_runs_curves_are_overlaid_with_a_legend(qtbot, panel, runs_root):
    scan(qtbot, panel, runs_root)
    sort_by(panel, "name")
    select(qtbot, panel, runs_root / "20240102-030405-exp-a", runs_root / "sweeps" / "grid" / "pt1")
    plot = panel.curves
    assert plot.metrics() == ["train_loss", "train_pixel_accuracy", "val_loss", "val_pixel_accuracy", "val_iou",
                              "val_dice", "lr", "seconds"]
    assert plot.current_metric() == "val_dice"  # the preferred default
    plot.set_metric("val_loss")
    assert len(plot.curves) == 2
    assert plot.legend_names() == ["20240102-030405-exp-a", "grid/pt1"]
    (x0, y0), (x1, y1) = (item.getData() for item in plot.curves)
    np.testing.assert_array_equal(x0, [1, 2, 3])
    np.testing.assert_allclose(y0, [0.8, 0.5, 0.5])
    np.testing.assert_array_equal(x1, [1, 2])
    np.testing.assert_allclose(y1, [0.6, 0.55])
    assert plot.curves[0].opts["pen"].color().name() != plot.curves[1].opts["pen"].color().name()
    select(qtbot, panel, runs_root / "c")  # a run without a history: nothing to draw, and said so
    assert plot.curves == [] and plot.metrics() == []


def test_csv_export_writes_the_visible_rows_in_their_order(qtbot, panel, runs_root, tmp_path):
    scan(qtbot, panel, runs_root)
    panel.filter_edit.setText("completed cpu")  # not matched: status text is "finished"
    assert names(panel) == []
    panel.filter_edit.setText("finished")
    sort_by(panel, "wall_seconds", descending=True)
    shown = names(panel)
    assert shown == ["grid/pt1", "20240102-030405-exp-a", "b"]
    target = tmp_path / "table.csv"
    panel.ask_save_path = lambda caption, default, filter: str(target)
    panel.export_csv_button.click()
    rows = list(csv.reader(target.open()))
    assert rows[0][:len(COLUMNS)] == [header for _, header in COLUMNS]
    assert [r[0] for r in rows[1:]] == ["pt1", "20240102-030405-exp-a", "b"]  # raw folder names
    assert target.read_text() == runs_table_csv(panel.proxy.visible_runs())
    assert f"Exported {target}" in panel.message()
    assert not list(tmp_path.glob(".table.csv.*"))  # no temporary file left behind
    panel.export_csv(tmp_path / "x.csv")
    panel.ask_save_path = lambda caption, default, filter: str(tmp_path / "nowhere" / "t.csv")
    panel.export_csv_button.click()
    assert "does not exist" in panel.message()


def test_png_export_writes_a_valid_image(qtbot, panel, runs_root, tmp_path):
    scan(qtbot, panel, runs_root)
    # two runs with several epochs each, so each draws a line (a one-epoch run is a single dot)
    select(qtbot, panel, runs_root / "20240102-030405-exp-a", runs_root / "sweeps" / "grid" / "pt1")
    target = tmp_path / "curves.png"
    panel.ask_save_path = lambda caption, default, filter: str(target)
    panel.export_png_button.click()
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = QImage(str(target))
    assert not image.isNull() and image.width() >= 1000 and image.height() > 100
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    pixels = pixels[:, :image.width() * 3].reshape(-1, 3).astype(int)
    for colour in (run_colour(0), run_colour(1)):  # both runs' curves are drawn
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).sum(axis=1) < 30).sum() > 500, colour


# ------------------------------------------------------------------------- per-image comparison

@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory, demo_folder):
    """Two tiny real runs on the demo data (1 epoch, 2 steps each), and one on other data."""
    from app.core.demo_data import write_demo_dataset
    from app.core.training.engine import Trainer

    root = tmp_path_factory.mktemp("trained")
    other_data = write_demo_dataset(root / "other-data", count=4, size=48, val_fraction=0.5)
    runs = root / "runs"
    for name, data, seed, lr in (("run-a", demo_folder, 0, 1e-3), ("run-b", demo_folder, 1, 3e-2),
                                 ("other", other_data, 0, 1e-3)):
        c = tiny_config(data)
        c.name = name
        c.training.steps_per_epoch = 2
        c.training.seed = seed
        c.optimizer.lr = lr
        Trainer(c.validate(), runs / name).run()
    return runs


def test_per_image_comparison_lists_images_worst_first_with_views_side_by_side(qtbot, panel, trained_runs):
    scan(qtbot, panel, trained_runs)
    sort_by(panel, "name")
    select(qtbot, panel, trained_runs / "run-a", trained_runs / "run-b")
    view = panel.compare
    with qtbot.waitSignal(view.rendered, timeout=COMPARE_TIMEOUT):
        view.compare_button.click()
    result = view.result
    assert result.names == ["run-a", "run-b"] and sorted(result.images) == ["em_004", "em_005"]
    rows = view.rows()
    header = [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())]
    assert header == ["Image", "Mean Dice", "run-a", "run-b"]
    assert [r[0] for r in rows] == result.images
    means = [float(r[1]) for r in rows]
    assert means == sorted(means)  # worst first
    for i, r in enumerate(rows):
        assert [float(v) for v in r[2:]] == pytest.approx(result.dice[i], abs=5e-4)
        assert float(r[1]) == pytest.approx(np.mean([float(v) for v in r[2:]]), abs=1e-3)
    # the worst image's image, ground truth and each run's prediction, side by side
    assert len(view.canvases) == 4 and view.current_row() == 0
    sample = result.samples[0]
    image, truth, pred_a, pred_b = (canvas.rendered() for canvas in view.canvases)
    assert image.shape[:2] == truth.shape[:2] == pred_a.shape[:2] == sample.mask.shape
    assert not np.array_equal(image, truth)  # the truth is drawn over the image
    assert "Dice" in view.canvases[2]._title.text and "run-a" in view.canvases[2]._title.text
    positions = [view.views_layout.getItemPosition(view.views_layout.indexOf(c))[:2] for c in view.canvases]
    assert positions == [(0, 0), (0, 1), (0, 2), (0, 3)]  # one row
    with qtbot.waitSignal(view.rendered, timeout=10_000) as shown:
        view.select_image(result.images[1])
    assert shown.args == [result.images[1]]
    with qtbot.waitSignal(view.rendered, timeout=10_000):
        view.errors_check.setChecked(True)
    assert not np.array_equal(view.canvases[2].rendered(), pred_a)  # errors instead of the filled classes


def test_comparison_refuses_runs_on_other_data_or_without_checkpoints(qtbot, panel, trained_runs, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(trained_runs, runs)
    make_run(runs, "bare", config=config(), history=HEADER + "1,0.9,0.6,0.3,0.7,0.5,0.6,0.01,5\n")
    scan(qtbot, panel, runs)
    view = panel.compare
    select(qtbot, panel, runs / "run-a", runs / "bare")
    assert view.compare() is False and "no checkpoint" in view.banner.text() and "bare" in view.banner.text()
    select(qtbot, panel, runs / "run-a", runs / "other")
    with qtbot.waitSignal(view.failed, timeout=COMPARE_TIMEOUT) as failed:
        view.compare_button.click()
    assert "different datasets" in failed.args[0] and "different datasets" in view.banner.text()
    assert view.result is None
    qtbot.waitUntil(view.progress.isHidden, timeout=COMPARE_TIMEOUT)  # once the task has ended


def test_a_comparison_can_be_cancelled(qtbot, panel, trained_runs):
    scan(qtbot, panel, trained_runs)
    select(qtbot, panel, trained_runs / "run-a", trained_runs / "run-b")
    view = panel.compare
    assert view.compare() is True and view.cancel_button.isVisibleTo(view)
    view.cancel_button.click()
    qtbot.waitUntil(lambda: not view.busy, timeout=COMPARE_TIMEOUT)
    assert view.result is None and view.status_label.text() == "Comparison cancelled"
    assert view.compare_button.isEnabled() and not view.cancel_button.isVisibleTo(view)


def test_real_runs_are_listed_from_their_files(qtbot, panel, trained_runs):
    scan(qtbot, panel, trained_runs)
    sort_by(panel, "name")
    assert names(panel) == ["other", "run-a", "run-b"]
    summary = json.loads((trained_runs / "run-a" / "summary.json").read_text())
    assert column(panel, "status") == ["finished"] * 3
    assert column(panel, "device") == ["cpu"] * 3 and column(panel, "has_checkpoint") == ["yes"] * 3
    assert column(panel, "lowest_loss")[1] == f"{summary['lowest_loss']:.4f}"


# ------------------------------------------------------------------------- review fixes

def test_the_curves_widget_keeps_qwidget_metric(qtbot):
    """RunsCurvesPlot once had a metric() method, which overrides QWidget::metric: asking the
    widget its DPI (as painting and grab() do) crashed the process."""
    import subprocess
    import sys

    code = ("from PySide6.QtWidgets import QApplication; app = QApplication([]);"
            "from app.ui.runs_curves import RunsCurvesPlot; w = RunsCurvesPlot(); w.resize(300, 200);"
            "print(w.logicalDpiX() > 0, w.grab().width(), flush=True); import os; os._exit(0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0 and done.stdout.split() == ["True", "300"], done.stderr
    assert "Error calling Python override" not in done.stderr


def test_reselecting_many_runs_changes_the_selection_once(qtbot, panel, tmp_path, monkeypatch):
    """select_runs (after every scan) selected row by row: one curves reload per row, which
    froze the window for seconds with hundreds of runs selected."""
    root = tmp_path / "many"
    for i in range(40):
        make_run(root, f"r{i:02d}", history=HEADER + "1,0.9,0.6,0.3,0.7,0.5,0.6,0.01,5\n")
    scan(qtbot, panel, root)
    loads = []
    original = panel._load_curves
    panel._load_curves = lambda runs: loads.append(len(runs)) or original(runs)
    with qtbot.waitSignal(panel.curvesShown, timeout=10_000):
        panel.select_runs([root / f"r{i:02d}" for i in range(40)])
    assert loads == [40] and len(panel.selected_runs()) == 40
    with qtbot.waitSignals([panel.scanned, panel.curvesShown], timeout=10_000):
        panel.refresh()  # keeps the selection, again in one change (its curves read in the background)
    assert loads == [40, 40] and len(panel.selected_runs()) == 40
    assert len(panel.curves._series) == 40
    from app.ui.runs_curves import MAX_CURVES
    assert len(panel.curves.curves) == MAX_CURVES and "first 20 of the 40" in panel.curves.note_label.text()
    read = []  # only the runs drawn have their histories read
    import app.ui.runs_panel as runs_panel_module
    real = runs_panel_module.read_selected_curves
    monkeypatch.setattr(runs_panel_module, "read_selected_curves", lambda paths, ctx: read.append(len(paths))
                        or real(paths, ctx))
    with qtbot.waitSignal(panel.curvesShown, timeout=10_000):
        panel._load_curves(panel.selected_runs())
    assert read == [MAX_CURVES] and len(panel.curves.curves) == MAX_CURVES


def test_long_histories_are_drawn_without_a_marker_per_epoch(qtbot):
    from app.ui.runs_curves import MARKER_LIMIT, RunsCurvesPlot

    plot = RunsCurvesPlot()
    qtbot.addWidget(plot)
    long_run = {"epoch": np.arange(1, 2001, dtype=float), "val_loss": np.linspace(1, 0.1, 2000)}
    short_run = {"epoch": np.arange(1, 4, dtype=float), "val_loss": np.array([0.9, 0.5, 0.4])}
    plot.set_runs([("long", long_run), ("short", short_run)])
    long_item, short_item = plot.curves
    assert long_item.opts["symbol"] is None and short_item.opts["symbol"] == "o"
    assert len(long_run["epoch"]) > MARKER_LIMIT >= len(short_run["epoch"])
    assert np.array_equal(long_item.getOriginalDataset()[1], long_run["val_loss"])


def test_a_run_without_the_chosen_column_is_named_not_drawn(qtbot):
    """A run whose history lacks a column (an older run) made drawing that column raise on the
    GUI thread (its epochs and its empty values could not be paired)."""
    from app.ui.runs_curves import RunsCurvesPlot

    plot = RunsCurvesPlot()
    qtbot.addWidget(plot)
    new = {"epoch": np.array([1.0, 2.0]), "val_loss": np.array([0.5, 0.4]),
           "val_adapted_rand_error": np.array([0.3, 0.2])}
    old = {"epoch": np.array([1.0, 2.0]), "val_loss": np.array([0.6, 0.5])}
    plot.set_runs([("new", new), ("old", old)])
    plot.set_metric("val_adapted_rand_error")
    assert plot.legend_names() == ["new"] and "old" in plot.note_label.text()


@pytest.mark.parametrize("action", ["rename", "delete"])
def test_a_scan_started_before_a_rename_or_delete_does_not_bring_old_folders_back(qtbot, panel, runs_root,
                                                                                  monkeypatch, action):
    import threading

    import app.ui.runs_panel as runs_panel_module

    scan(qtbot, panel, runs_root)
    release, started = threading.Event(), threading.Event()
    real_scan = runs_panel_module.scan_folder

    def slow_scan(folder, ctx):
        result = real_scan(folder, ctx)  # lists the folders as they are now
        started.set()
        release.wait(10)
        return result

    monkeypatch.setattr(runs_panel_module, "scan_folder", slow_scan)
    select(qtbot, panel, runs_root / "b")
    panel.refresh()
    qtbot.waitUntil(started.is_set, timeout=10_000)
    monkeypatch.setattr(runs_panel_module, "scan_folder", real_scan)
    if action == "rename":
        panel.ask_new_name = lambda current: "b2"
        assert panel.rename_selected() == runs_root / "b2"
    else:
        panel.ask_confirm_delete = lambda names: True
        with qtbot.waitSignal(panel.runsDeleted, timeout=10_000):
            assert panel.delete_selected()
    with qtbot.waitSignal(panel.scanned, timeout=10_000):
        release.set()
    qtbot.waitUntil(lambda: not panel._scan_runner.busy, timeout=10_000)
    expected = ["20240102-030405-exp-a", "c", "grid/pt1"] + (["b2"] if action == "rename" else [])
    assert sorted(names(panel)) == sorted(expected)


def test_scores_are_shown_early_and_every_title_fits(qtbot, panel):
    header = panel.table.horizontalHeader()
    shown = [COLUMN_KEYS[header.logicalIndex(place)] for place in range(header.count())]
    assert sorted(shown) == sorted(COLUMN_KEYS)
    assert shown[:3] == ["name", "date", "status"]
    assert shown.index("best_dice") < shown.index("optimizer") and shown.index("best_iou") < shown.index("dataset")
    for column in range(header.count()):  # no runs yet: still no title cut off
        assert header.sectionSize(column) >= header.sectionSizeHint(column), COLUMN_KEYS[column]
    dice_right = header.sectionPosition(COLUMN_KEYS.index("best_dice")) + header.sectionSize(COLUMN_KEYS.index("best_dice"))
    assert dice_right < 1000  # on screen in a 1,200 px panel without scrolling


def test_comparing_many_runs_scrolls_the_views_instead_of_growing_the_window(qtbot):
    """Thirty runs forced the window to 1,306 pixels tall (beyond the screen), the table squeezed to two rows."""
    from app.ui.runs_compare import RunsCompareView

    view = RunsCompareView()
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    few = view.minimumSizeHint().height()
    view.names = [f"run{i:02d}" for i in range(30)]
    view._build_canvases()
    assert len(view.canvases) == 32 and view.views_scroll.widget() is view.views
    assert view.minimumSizeHint().height() <= few + 10 and view.height() == 500
    view.shutdown()
