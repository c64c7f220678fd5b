"""The Sweeps panel: grid editing with live run counts and the core's errors, sweep JSON files,
running a tiny 2×2 sweep (stop, resume, results heat map and ranked table, CSV), failed runs."""

from __future__ import annotations

import csv
import json
import math
import shutil
import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from app.core.sweep_run import read_state
from app.core.training import engine as engine_module
from app.ui import sweep_worker
from app.ui.sweep_editor import format_values, parse_values, read_spec_file
from app.ui.sweep_panel import SweepPanel
from app.ui.sweep_results_view import metric_text

CHECK_TIMEOUT = 60000  # the first check imports the registries
RUN_TIMEOUT = 120000
GRID_2X2 = {"loss.name": ["dice", "focal"], "optimizer.lr": [0.001, 0.01]}
NAMES_2X2 = ["dice__lr0.001", "dice__lr0.01", "focal__lr0.001", "focal__lr0.01"]


@pytest.fixture
def panel(qtbot, state, tmp_path):
    state.update("training", None, steps_per_epoch=2)
    widget = SweepPanel(state)
    widget.editor.out_edit.setText(str(tmp_path / "sweep"))
    qtbot.addWidget(widget)
    widget.show()  # the grid is checked once the panel is on screen
    yield widget
    widget.shutdown()
    assert not widget.running and not state.training


def checked(qtbot, panel):
    """Wait for the core's verdict on the grid; returns it."""
    qtbot.waitUntil(lambda: panel.last_check is not None, timeout=CHECK_TIMEOUT)
    return panel.last_check


def set_grid(qtbot, panel, grid):
    panel.editor.set_grid(grid)
    return checked(qtbot, panel)


def snapshot(folder):
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def run_until_idle(qtbot, panel):
    with qtbot.waitSignal(panel.runningChanged, timeout=RUN_TIMEOUT, check_params_cb=lambda running: not running):
        assert panel.start()
        assert panel.state.training and panel.running and not panel.run_button.isEnabled()


# -- values and the grid -------------------------------------------------------------------------
def test_values_are_parsed_to_numbers_where_numeric_and_round_trip():
    assert parse_values("unet, segnet") == ["unet", "segnet"]
    assert parse_values("1e-3, 1e-4 ,0.5, 2,") == [0.001, 0.0001, 0.5, 2]
    assert parse_values("true, False, null, [0.9, 0.999], \"1\"") == [True, False, None, [0.9, 0.999], "1"]
    for values in (["unet", "segnet"], [0.001, 1e-05, 3], [True, [0.9, 0.999]], ["1", "a,b", " x"]):
        assert parse_values(format_values(values)) == values


def test_editing_the_grid_updates_the_run_count_and_shows_the_cores_errors(qtbot, panel):
    assert SweepPanel.title == "Sweeps"
    editor = panel.editor
    assert [row.key() for row in editor.axes()] == ["model.name", "loss.name"]
    assert checked(qtbot, panel).runs == 1 and "1 run" in editor.count_label.text()

    editor.axes()[1].values_edit.setText("dice, focal")
    assert checked(qtbot, panel).runs == 2
    lr = editor.add_axis("optimizer.lr")
    lr.values_edit.setText("1e-3, 1e-2")
    check = checked(qtbot, panel)
    assert check.runs == 4 and "4 runs" in editor.count_label.text() and "unet__focal__lr0.01" in check.names
    assert panel.run_button.isEnabled()

    editor.axes()[0].values_edit.setText("unet, unett")
    check = checked(qtbot, panel)
    assert "'unett' is not a registered model; valid: " in check.error and "segnet" in check.error
    assert check.error in editor.count_label.text() and not panel.run_button.isEnabled()
    assert not panel.start() and "unett" in panel.banner.text()

    editor.axes()[0].values_edit.setText("unet")
    lr.set_key("loss.nme")
    assert "grid.loss.nme: unknown key 'nme' in loss" in checked(qtbot, panel).error
    lr.set_key("loss.params.alpha")
    lr.values_edit.setText("0.25, 0.75")
    editor.axes()[1].values_edit.setText("bce, focal")
    check = checked(qtbot, panel)  # alpha multiplies focal only
    assert check.runs == 3 and "4 combinations" in editor.count_label.text()
    lr.set_key("loss.name")
    assert "loss.name is given twice" in checked(qtbot, panel).error
    editor.remove_axis(lr)
    assert checked(qtbot, panel).runs == 2

    loss_row = editor.axes()[1]  # the Add name menu offers the registered losses
    qtbot.waitUntil(lambda: bool(loss_row.names_button.menu().actions()), timeout=CHECK_TIMEOUT)
    tversky = next(a for a in loss_row.names_button.menu().actions() if a.text() == "tversky")
    tversky.trigger()
    assert loss_row.values() == ["bce", "focal", "tversky"]
    assert checked(qtbot, panel).runs == 3


def test_a_hidden_panel_checks_its_grid_only_once_shown(qtbot, state):
    hidden = SweepPanel(state)  # e.g. a tab behind others at start-up: no PyTorch import yet
    qtbot.addWidget(hidden)
    hidden.editor.axes()[0].values_edit.setText("unet, segnet")
    assert hidden.last_check is None and not hidden.check_runner.busy and not hidden._check_timer.isActive()
    hidden.show()
    assert checked(qtbot, hidden).runs == 2
    hidden.shutdown()


def test_a_training_run_blocks_the_sweep(qtbot, panel, state):
    checked(qtbot, panel)
    state.set_training(True)
    assert not panel.run_button.isEnabled()
    assert not panel.start() and "training run is in progress" in panel.banner.text()
    state.set_training(False)
    assert panel.run_button.isEnabled()


# -- files -------------------------------------------------------------------------------------------
def test_sweep_json_save_and_load_round_trip(qtbot, panel, state, tmp_path):
    panel.editor.set_fields("lr-x-loss", 7, "cpu", str(tmp_path / "out"))
    set_grid(qtbot, panel, {**GRID_2X2, "loss.params.alpha": [0.3, 0.7]})
    saved = panel.spec_data()
    panel.ask_save_path = lambda caption, default, file_filter: str(tmp_path / "s.json")
    panel.save_button.click()
    data = json.loads((tmp_path / "s.json").read_text())
    assert data == saved and data["base"] == state.config.to_dict() and data["grid"]["optimizer.lr"] == [0.001, 0.01]
    assert not list(tmp_path.glob(".s.json.*"))  # written atomically, nothing left behind

    other = SweepPanel(state)
    qtbot.addWidget(other)
    other.show()
    other.ask_open_path = lambda caption, file_filter: str(tmp_path / "s.json")
    other.load_button.click()
    assert checked(qtbot, other).runs == 2 * 3  # alpha only for focal
    assert other.spec_data() == saved
    assert other.banner.text() == f"Loaded {tmp_path / 's.json'}: 6 runs."
    assert str(tmp_path / "s.json") in other.editor.base_label.text() and other.editor.base_button.isVisibleTo(other)
    state.update("model", None, params={"depth": 2, "base_width": 8})  # a file's base ignores the window's edits
    assert other.spec_data()["base"]["model"]["params"]["base_width"] == 4
    other.editor.base_button.click()
    assert other.spec_data()["base"] == state.config.to_dict() and "current experiment" in \
        other.editor.base_label.text()
    other.shutdown()


def test_long_value_lists_are_kept_whole(qtbot, panel):
    """Qt's default line length (32,767 characters) cut 4,000 learning rates to 3,010, the last
    one mid-number; Run then ran the cut grid and Save JSON wrote it."""
    rates = [round(1e-4 + i * 1e-7, 10) for i in range(4000)]
    panel.editor.set_grid({"optimizer.lr": rates})
    grid, problem = panel.editor.grid()
    assert problem is None and grid["optimizer.lr"] == rates
    assert len(panel.editor._rows[0].values_edit.text()) > 32767


def test_a_sweep_file_with_a_byte_order_mark_opens(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"name": "bom", "grid": GRID_2X2}), encoding="utf-8-sig")
    assert read_spec_file(path)["grid"] == GRID_2X2


def test_bad_sweep_files_are_named_with_their_problem(qtbot, panel, tmp_path):
    cases = {"broken.json": ("{\"grid\": ", "not valid JSON"), "list.json": ("[1, 2]", "a sweep is a JSON object"),
             "scalar.json": (json.dumps({"grid": {"optimizer.lr": 0.1}}), "grid.optimizer.lr must be a list"),
             "typo.json": (json.dumps({"grid": {"loss.name": ["dice"]}, "gird": {}}), "gird: unknown key")}
    grid_before = panel.editor.grid()
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        assert not panel.load_json(tmp_path / name)
        assert panel.banner.text().startswith(f"{tmp_path / name}: ") and message in panel.banner.text()
        assert panel.banner_kind == "error" and panel.editor.grid() == grid_before  # the editor is untouched
    assert not panel.load_json(tmp_path / "missing.json")
    assert f"{tmp_path / 'missing.json'}: cannot read the sweep" in panel.banner.text()

    (tmp_path / "unknown.json").write_text(json.dumps({"grid": {"model.name": ["unet", "unett"]}}))
    assert panel.load_json(tmp_path / "unknown.json")  # shown in the editor so it can be fixed
    checked(qtbot, panel)
    assert panel.banner.text().startswith(f"{tmp_path / 'unknown.json'}: grid.model.name: 'unett' is not a "
                                          "registered model; valid: ")
    assert not panel.run_button.isEnabled()


# -- running -----------------------------------------------------------------------------------------
def test_a_2x2_sweep_runs_stops_resumes_and_fills_the_results(qtbot, panel, state, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    assert set_grid(qtbot, panel, GRID_2X2).runs == 4 and panel.run_button.text() == "Run sweep"
    reports = []
    panel.session.progress.connect(lambda r: reports.append((r.index, r.status, r.message)))

    # 1. "Stop after the current run": the first run finishes, the sweep stops before the second.
    with qtbot.waitSignal(panel.runningChanged, timeout=RUN_TIMEOUT, check_params_cb=lambda running: not running):
        assert panel.start() and state.training
        panel.stop_after_action.trigger()
    assert not state.training and panel.last_outcome.stopped
    assert [p["status"] for p in read_state(out)["points"]] == ["completed", "pending", "pending", "pending"]
    assert panel.run_button.text() == "Resume" and "holds the sweep “sweep”: 1 of 4 runs finished" in \
        panel.editor.folder_label.text()
    assert panel.banner.text().startswith("Sweep stopped: 1 of 4 runs finished. Press Resume")
    first = snapshot(out / NAMES_2X2[0])

    # 2. Resume; Stop is pressed while the second run is at its first step (the worker waits for it).
    reached, pressed = threading.Event(), threading.Event()
    real = sweep_worker.SweepWorker._on_progress

    def hold_at_second_run(self, report):
        if (report.index, report.status) == (1, "running") and not pressed.is_set():
            reached.set()
            pressed.wait(30)
        real(self, report)

    monkeypatch.setattr(sweep_worker.SweepWorker, "_on_progress", hold_at_second_run)
    reports.clear()
    with qtbot.waitSignal(panel.runningChanged, timeout=RUN_TIMEOUT, check_params_cb=lambda running: not running):
        assert panel.start()
        qtbot.waitUntil(reached.is_set, timeout=RUN_TIMEOUT)
        state.set_training(False)  # another panel's run ending must not unlock the window mid-sweep
        qtbot.waitUntil(lambda: state.training)
        panel.stop()
        assert not panel.stop_button.isEnabled() and "Stopping" in panel.sweep_bar.format()
        pressed.set()
    assert reports[0] == (0, "skipped", "completed")
    assert [p["status"] for p in read_state(out)["points"]] == ["completed", "stopped", "pending", "pending"]
    assert (out / NAMES_2X2[1] / "checkpoints" / "last.pt").exists() and not (out / NAMES_2X2[2]).exists()
    monkeypatch.setattr(sweep_worker.SweepWorker, "_on_progress", real)

    # 3. Resume to the end: the finished run is skipped, the stopped one continues from its checkpoint.
    reports.clear()
    run_until_idle(qtbot, panel)
    assert [r for r in reports if r[1] in ("skipped", "started")] == [
        (0, "skipped", "completed"), (1, "started", "resuming"), (2, "started", ""), (3, "started", "")]
    assert [p["status"] for p in read_state(out)["points"]] == ["completed"] * 4
    assert snapshot(out / NAMES_2X2[0]) == first  # never touched again
    assert panel.banner_kind == "success" and panel.banner.text().startswith("Sweep finished: all 4 runs")
    assert "[1/4] dice__lr0.001: skipped (completed before)" in panel.log.toPlainText()

    # The heat map (loss × learning rate) and the ranked table show every run's summary.
    summaries = {n: json.loads((out / n / "summary.json").read_text()) for n in NAMES_2X2}
    view = panel.results
    assert view.folder == out and view.metric == "best_dice"
    heat = view.heat_table
    columns = [heat.horizontalHeaderItem(i).text() for i in range(heat.columnCount())]
    rows = [heat.verticalHeaderItem(j).text() for j in range(heat.rowCount())]
    assert (columns, rows) == (["dice", "focal"], ["0.001", "0.01"])
    for j, lr in enumerate(rows):
        for i, loss in enumerate(columns):
            item = heat.item(j, i)
            assert item.text() == metric_text("best_dice", summaries[f"{loss}__lr{lr}"]["best_dice"])
            assert item.background().color() != QColor(0, 0, 0) and item.background().style() != 0
    assert view.scale_low.text().startswith("worst ") and view.scale_high.text().startswith("best ")
    strip = view.scale_bar.grab().toImage()  # the colour scale runs from the worst colour to the best
    lut = view._lut()
    for x, colour in ((1, lut[0]), (strip.width() - 2, lut[-1])):
        pixel = strip.pixelColor(x, strip.height() // 2)
        assert abs(pixel.red() - int(colour[0])) + abs(pixel.green() - int(colour[1])) + \
            abs(pixel.blue() - int(colour[2])) < 30
    model = view.ranked_model
    header = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert header == ["#", "run", "loss.name", "optimizer.lr", "status", "Dice", "IoU", "accuracy", "loss", "time (s)",
                      "epochs", "message"]
    ranked = [view.ranked_text(r, 1) for r in range(model.rowCount())]
    assert sorted(ranked) == sorted(NAMES_2X2) and [view.ranked_text(r, 0) for r in range(4)] == ["1", "2", "3", "4"]
    dice = [summaries[n]["best_dice"] for n in ranked]
    assert dice == sorted(dice, reverse=True)
    assert all(view.ranked_text(r, 4) == "completed" for r in range(4))

    view.set_metric("lowest_loss")  # ranked by another metric: lowest first
    losses = [summaries[view.ranked_text(r, 1)]["lowest_loss"] for r in range(4)]
    assert losses == sorted(losses)

    with qtbot.waitSignal(panel.openRun) as opened:
        view.ranked.doubleClicked.emit(model.index(0, 2))
    assert opened.args == [out / view.ranked_text(0, 1)]

    target = tmp_path / "export" / "results.csv"
    target.parent.mkdir()
    panel.ask_save_path = lambda caption, default, file_filter: str(target)
    view.export_button.click()
    with target.open(newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert [r["name"] for r in exported] == [view.ranked_text(r, 1) for r in range(4)]
    assert [r["rank"] for r in exported] == ["1", "2", "3", "4"] and exported[0]["loss.name"] in ("dice", "focal")
    for row in exported:
        assert math.isclose(float(row["lowest_loss"]), summaries[row["name"]]["lowest_loss"])

    # A fresh panel opening the folder shows the same results and offers Resume.
    other = SweepPanel(state)
    qtbot.addWidget(other)
    other.show()
    other.ask_folder = lambda caption, start: str(out)
    other.open_folder_button.click()
    assert other.editor.grid() == (GRID_2X2, None) and other.run_button.text() == "Resume"
    assert other.results.heat_table.item(0, 0).text() == metric_text("best_dice", summaries[NAMES_2X2[0]]["best_dice"])
    # Swapping the axes redraws from the rows already read: no summary is read again.
    import app.core.sweep_results as sweep_results

    def no_reads(*_args):
        raise AssertionError("the heat map read the sweep folder again")
    monkeypatch.setattr(sweep_results, "_rows", no_reads)
    x_axis, y_axis = other.results.x_combo.currentText(), other.results.y_combo.currentText()
    other.results.set_axes(y_axis, x_axis)
    assert other.results.heat_table.item(0, 0).text() == metric_text("best_dice", summaries[NAMES_2X2[0]]["best_dice"])
    assert other.results.heat_table.item(1, 0).text() == metric_text("best_dice", summaries[NAMES_2X2[1]]["best_dice"])
    # The folder deleted behind the panel's back: a double-click says so, showing the panel again
    # no longer offers to Resume it (both stayed stale and silent).
    monkeypatch.undo()
    gone = out / other.results.ranked_text(0, 1)
    shutil.rmtree(out)
    other.results.ranked.doubleClicked.emit(other.results.ranked.model().index(0, 2))
    assert f"{gone} is gone" in other.banner.text()
    other.hide()
    other.show()
    assert other.run_button.text() == "Run sweep" and "holds the sweep" not in other.editor.folder_label.text()
    other.shutdown()


def test_a_failed_run_is_marked_and_the_sweep_goes_on(qtbot, panel, tmp_path, monkeypatch):
    import torch

    real = engine_module.build_loss

    class Diverging(torch.nn.Module):  # focal gives NaN losses: its run fails, the next one trains
        def forward(self, logits, target, weight=None):
            return real("focal")(logits, target, weight) * float("nan")

    monkeypatch.setattr(engine_module, "build_loss", lambda name, **kw: Diverging() if name == "focal"
                        else real(name, **kw))
    assert set_grid(qtbot, panel, {"loss.name": ["focal", "dice"]}).runs == 2
    run_until_idle(qtbot, panel)
    assert [p["status"] for p in read_state(tmp_path / "sweep")["points"]] == ["failed", "completed"]
    assert panel.banner_kind == "warning" and "1 of 2 runs completed, 1 failed" in panel.banner.text()
    view, model = panel.results, panel.results.ranked_model
    rows = {view.ranked_text(r, 1): r for r in range(model.rowCount())}
    failed = rows["focal"]
    assert view.ranked_text(failed, 0) == "" and view.ranked_text(failed, 3) == "failed"
    assert model.index(failed, 3).data(Qt.ItemDataRole.ForegroundRole).color() == QColor("#d32f2f")
    message = view.ranked_text(failed, model.columnCount() - 1)
    assert "diverged" in message and message in model.index(failed, 1).data(Qt.ItemDataRole.ToolTipRole)
    assert view.ranked_text(rows["dice"], 0) == "1"
    assert "focal: failed: " in panel.log.toPlainText()
    heat = view.heat_table  # the failed run's cell looked like a combination never run
    columns = {heat.horizontalHeaderItem(i).text(): i for i in range(heat.columnCount())}
    cell = heat.item(0, columns["focal"])
    assert cell.text() == "failed" and cell.foreground().color() == QColor("#d32f2f")
    assert cell.toolTip() == "no score here: failed" and heat.item(0, columns["dice"]).text() != "failed"
    assert view._goodness(0.7, 0.7, 0.7) == 0.5  # all equal: mid-scale, not every cell "best"


def test_shutdown_stops_a_running_sweep_and_unlocks_the_window(qtbot, panel, state, tmp_path):
    assert set_grid(qtbot, panel, {"optimizer.lr": [0.001, 0.01]}).runs == 2
    started = []
    panel.session.progress.connect(lambda r: started.append(r.status))
    assert panel.start()
    qtbot.waitUntil(lambda: "started" in started, timeout=RUN_TIMEOUT)
    panel.shutdown()
    assert not panel.running and not state.training
    statuses = [p["status"] for p in read_state(tmp_path / "sweep")["points"]]
    assert statuses[0] in ("stopped", "completed") and statuses[-1] in ("pending", "stopped")
    assert "stopping the sweep: the window is closing" in panel.log.toPlainText()
    assert not panel.start()  # closed: nothing new starts


def test_a_foreign_or_damaged_sweep_folder_gives_a_message_not_a_traceback(qtbot, panel, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "sweep.json").write_text("[]")  # some other tool's sweep.json
    panel.editor.out_edit.setText(str(foreign))  # described as the folder is typed
    assert "is not the state of a SegStudio sweep" in panel.editor.folder_label.text()
    assert not panel.open_folder(foreign) and str(foreign / "sweep.json") in panel.banner.text()
    damaged = tmp_path / "damaged"
    (damaged / "a").mkdir(parents=True)
    (damaged / "sweep.json").write_text(json.dumps({
        "spec": {"name": "s", "grid": {"model.name": ["unet"]}},
        "points": [{"name": "a", "status": "completed", "values": {"model.name": "unet"}}]}))
    (damaged / "a" / "summary.json").write_text("[1, 2]")  # valid JSON, but not a summary
    panel.results.set_folder(damaged)
    assert panel.results.rows == [] and not panel.results.empty_label.isHidden()
    assert f"Cannot read the sweep's results in {damaged}" in panel.results.empty_label.text()
