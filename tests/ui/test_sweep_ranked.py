"""The sweep's ranked table: a model that keeps the selection and scroll position across the
refresh after each run, shows the running run, and reads only changed summaries."""

from __future__ import annotations

import json

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics

from app.core import sweep_results
from app.core.atomic import atomic_write_json
from app.ui.sweep_results_view import SweepResultsView


def write_sweep(out, count):
    grid = {"optimizer.lr": [10.0 ** -(i % 5) for i in range(5)], "training.seed": list(range(count))}
    points = [{"name": f"run{i:03d}", "values": {"optimizer.lr": 10.0 ** -(i % 5), "training.seed": i},
               "status": "completed"} for i in range(count)]
    points[-1]["status"] = "pending"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"spec": {"grid": grid}, "points": points}))
    for i in range(count - 1):
        (out / f"run{i:03d}").mkdir()
        atomic_write_json(out / f"run{i:03d}" / "summary.json",
                          {"best_dice": i / count, "lowest_loss": 1 - i / count, "wall_seconds": 12.5, "epochs": 3})


def test_refresh_keeps_the_selected_run_and_the_scroll_position(qtbot, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    write_sweep(out, 120)
    view = SweepResultsView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    view.set_folder(out)
    model, table = view.ranked_model, view.ranked
    assert model.rowCount() == 120 and view.ranked_text(0, 1) == "run118" and view.ranked_text(0, 0) == "1"
    assert view.ranked_text(119, 1) == "run119" and view.ranked_text(119, 0) == ""
    table.selectionModel().select(model.index(40, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                                  | QItemSelectionModel.SelectionFlag.Rows)
    table.verticalScrollBar().setValue(30)

    reads = []
    real = sweep_results.json.load
    monkeypatch.setattr(sweep_results.json, "load", lambda handle, *a, **k: reads.append(handle.name) or real(handle))
    states = []
    real_state = sweep_results.read_state
    monkeypatch.setattr(sweep_results, "read_state", lambda folder: states.append(folder) or real_state(folder))
    view.current_run = "run119"
    atomic_write_json(out / "run000" / "summary.json", {"best_dice": 0.99, "lowest_loss": 0.0})  # now the best
    view.refresh()
    assert reads == [str(out / "run000" / "summary.json")]  # the other 118 came from the cache
    assert states == [out]  # sweep.json read once per refresh
    assert view.ranked_text(0, 1) == "run000"
    selected = table.selectionModel().selectedRows()
    assert [view.ranked_text(i.row(), 1) for i in selected] == ["run078"]  # same run, one row lower now
    assert table.verticalScrollBar().value() == 30
    status = model.columns.index("status")
    assert view.ranked_text(119, status) == "running"
    assert model.index(119, status).data(Qt.ItemDataRole.ForegroundRole).color() == QColor("#4285f4")
    assert view.run_dir(0) == out / "run000" and view.run_dir(500) is None


def test_columns_fit_their_widest_text_and_the_chosen_metric_is_bold(qtbot, tmp_path):
    out = tmp_path / "sweep"
    write_sweep(out, 12)
    view = SweepResultsView()
    qtbot.addWidget(view)
    view.show()
    view.set_folder(out)
    model, table = view.ranked_model, view.ranked
    chosen = model.columns.index("best_dice")
    assert model.index(0, chosen).data(Qt.ItemDataRole.FontRole).bold()
    assert model.headerData(chosen, Qt.Orientation.Horizontal, Qt.ItemDataRole.FontRole).bold()
    assert model.index(0, 1).data(Qt.ItemDataRole.FontRole) is None
    metrics = QFontMetrics(table.font())
    lr = model.columns.index("optimizer.lr")
    widest = max(metrics.horizontalAdvance(view.ranked_text(r, lr)) for r in range(model.rowCount()))
    title = QFont(table.horizontalHeader().font())
    title.setBold(True)
    assert table.columnWidth(lr) >= max(widest, QFontMetrics(title).horizontalAdvance("optimizer.lr")) + 16
    view.set_metric("lowest_loss")
    assert model.chosen == model.columns.index("lowest_loss")
    assert [view.ranked_text(r, 1) for r in range(3)] == ["run010", "run009", "run008"]
