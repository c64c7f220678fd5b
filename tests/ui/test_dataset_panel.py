"""The dataset browser panel: sample table, split editing, large view, statistics, problems, loading."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QComboBox, QStyleOptionViewItem

from app.ui import dataset_panel as dp
from app.ui import sample_view as sv
from app.ui.dataset_panel import DatasetPanel, order_stack_pair
from app.ui.render import OVERLAY_MODES, composite, mask_overlay, to_display
from app.ui.sample_table import SampleFilterProxy, SampleTableModel

from .conftest import tiny_config

M = SampleTableModel


@pytest.fixture
def panel(qtbot, state):
    widget = DatasetPanel(state)
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    yield widget
    widget.shutdown()
    assert not widget.loading


def rows(panel) -> list[dict]:
    """The table as the user sees it (after sorting and filtering)."""
    proxy = panel.proxy
    out = []
    for r in range(proxy.rowCount()):
        cell = lambda c: proxy.index(r, c).data()  # noqa: E731
        out.append({"name": cell(M.NAME), "size": cell(M.SIZE), "split": cell(M.SPLIT), "fg": cell(M.FOREGROUND)})
    return out


def proxy_index(panel, name: str, column: int):
    row = next(r for r in range(panel.proxy.rowCount()) if panel.proxy.index(r, M.NAME).data() == name)
    return panel.proxy.index(row, column)


def wait_loaded(qtbot, panel, action, timeout=10000):
    with qtbot.waitSignal(panel.loaded, timeout=timeout):
        action()
    qtbot.waitUntil(lambda: not panel.loading, timeout=timeout)


def broken_copy(demo_folder, tmp_path) -> Path:
    folder = tmp_path / "broken"
    shutil.copytree(demo_folder, folder)
    (folder / "train" / "images" / "em_001.png").write_bytes(b"this is not a png at all")
    return folder


# -- the table -----------------------------------------------------------------------------------
def test_table_lists_samples_with_sizes_splits_and_foreground(panel, state):
    shown = rows(panel)
    samples = {s.name: s for s in state.dataset.samples}
    fractions = {s.name: s.foreground_fraction for s in state.dataset.stats.samples}
    assert sorted(r["name"] for r in shown) == sorted(samples) and len(shown) == 6
    assert [r["name"] for r in shown] == sorted(samples)  # sorted by name
    for r in shown:
        assert r["size"] == "64×64"
        assert r["split"] == samples[r["name"]].split
        assert r["fg"] == f"{100 * fractions[r['name']]:.1f} %"
    assert sorted(r["split"] for r in shown) == ["train"] * 4 + ["val"] * 2
    thumb = proxy_index(panel, shown[0]["name"], M.THUMB).data(Qt.ItemDataRole.DecorationRole)
    assert not thumb.isNull() and max(thumb.width(), thumb.height()) == 64
    assert panel.model.thumbnail_cached(shown[0]["name"])


def test_sorting_by_foreground_orders_rows(panel, state):
    panel.table.sortByColumn(M.FOREGROUND, Qt.SortOrder.DescendingOrder)
    fractions = {s.name: s.foreground_fraction for s in state.dataset.stats.samples}
    shown = [fractions[r["name"]] for r in rows(panel)]
    assert shown == sorted(shown, reverse=True)


def test_table_model_sorts_stably_and_selection_follows_its_samples(qtbot):
    """Sorting is the model's own: ties keep the dataset's order (ascending and descending, as
    Qt's stable sort), the selected rows stay on their samples, and the order is kept when
    foreground fractions arrive, the dataset is replaced or splits change."""
    from types import SimpleNamespace

    from PySide6.QtCore import QItemSelectionModel
    from PySide6.QtWidgets import QTableView

    splits = ["val", "train", "val", "train", "test", "train"]
    samples = [SimpleNamespace(name=f"s{i}", split=split, shape=(8, 8 + i), image_path="i", mask_path="m", page=None,
                               image=np.zeros((8, 8 + i), np.uint8), mask=np.zeros((8, 8 + i), np.uint8))
               for i, split in enumerate(splits)]
    model, proxy, view = SampleTableModel(), SampleFilterProxy(), QTableView()
    qtbot.addWidget(view)
    proxy.setSourceModel(model)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    model.set_dataset(SimpleNamespace(samples=samples))
    names = lambda: [proxy.index(r, M.NAME).data() for r in range(proxy.rowCount())]  # noqa: E731

    view.sortByColumn(M.SPLIT, Qt.SortOrder.AscendingOrder)  # train, val, test; ties in dataset order
    assert names() == ["s1", "s3", "s5", "s0", "s2", "s4"]
    view.sortByColumn(M.SPLIT, Qt.SortOrder.DescendingOrder)
    assert names() == ["s4", "s0", "s2", "s1", "s3", "s5"]

    view.selectionModel().select(proxy.index(names().index("s2"), M.NAME),
                                 QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
    model.set_fractions({"s0": 0.5, "s1": 0.1, "s2": 0.9, "s3": 0.3, "s4": 0.7, "s5": 0.2})
    view.sortByColumn(M.FOREGROUND, Qt.SortOrder.DescendingOrder)
    assert names() == ["s2", "s4", "s0", "s3", "s5", "s1"]
    selected = {proxy.index(i.row(), M.NAME).data() for i in view.selectionModel().selectedRows()}
    assert selected == {"s2"}  # the selection moved with its sample
    model.set_fractions({"s0": 0.5, "s1": 0.95, "s2": 0.9, "s3": 0.3, "s4": 0.7, "s5": 0.2})
    assert names() == ["s1", "s2", "s4", "s0", "s3", "s5"]  # new values re-sort, as Qt's dynamic sort did
    proxy.set_text("s")  # filtering keeps the order
    assert names() == ["s1", "s2", "s4", "s0", "s3", "s5"]
    proxy.set_split("train")
    assert names() == ["s1", "s3", "s5"]
    proxy.set_split("all")
    model.set_dataset(SimpleNamespace(samples=list(reversed(samples))))  # reloaded: no fractions yet,
    assert names() == ["s5", "s4", "s3", "s2", "s1", "s0"]  # so the dataset's order, not the old values'
    view.sortByColumn(M.SIZE, Qt.SortOrder.DescendingOrder)
    model.set_dataset(SimpleNamespace(samples=samples))  # a reload keeps the sort
    assert names() == ["s5", "s4", "s3", "s2", "s1", "s0"]
    view.sortByColumn(M.NAME, Qt.SortOrder.AscendingOrder)
    samples[0].split = "train"
    model.refresh_splits()
    assert names() == ["s0", "s1", "s2", "s3", "s4", "s5"]


def test_editing_split_cell_updates_config_and_dataset(panel, state, qtbot):
    name = next(s.name for s in state.dataset.samples if s.split == "train")
    index = proxy_index(panel, name, M.SPLIT)
    assert index.flags() & Qt.ItemFlag.ItemIsEditable
    with qtbot.waitSignal(state.splitsChanged) as blocker:
        assert panel.proxy.setData(index, "test")
    assert blocker.args == [panel]
    assert state.config.data.splits[name] == "test"
    assert state.sample(name).split == "test"
    assert proxy_index(panel, name, M.SPLIT).data() == "test"
    assert "1 test" in panel.stats_text()


def test_split_combo_delegate_commits_choice(panel, state):
    name = next(s.name for s in state.dataset.samples if s.split == "val")
    index = proxy_index(panel, name, M.SPLIT)
    delegate = panel.table.itemDelegateForColumn(M.SPLIT)
    editor = delegate.createEditor(panel.table.viewport(), QStyleOptionViewItem(), index)
    assert isinstance(editor, QComboBox) and editor.toolTip()
    delegate.setEditorData(editor, index)
    assert editor.currentText() == "val"
    editor.setCurrentText("train")
    delegate.setModelData(editor, panel.proxy, index)
    assert state.config.data.splits == {name: "train"}
    assert state.sample(name).split == "train"
    editor.deleteLater()


def test_move_selected_applies_to_multi_selection(panel, state, qtbot):
    names = [r["name"] for r in rows(panel)][:3]
    selection = panel.table.selectionModel()
    selection.clearSelection()
    for name in names:
        selection.select(proxy_index(panel, name, M.NAME),
                         selection.SelectionFlag.Select | selection.SelectionFlag.Rows)
    assert sorted(panel.selected_names()) == sorted(names)
    assert panel.move_button.isEnabled()
    panel.move_combo.setCurrentText("test")
    qtbot.mouseClick(panel.move_button, Qt.MouseButton.LeftButton)
    assert {n: state.sample(n).split for n in names} == dict.fromkeys(names, "test")
    assert state.config.data.splits == dict.fromkeys(names, "test")
    panel.split_filter.setCurrentText("test")
    assert sorted(r["name"] for r in rows(panel)) == sorted(names)


def test_split_change_from_elsewhere_updates_table(panel, state):
    name = rows(panel)[0]["name"]
    state.set_split([name], "test", source=None)
    assert proxy_index(panel, name, M.SPLIT).data() == "test"
    assert "1 test" in panel.stats_text()


def test_filter_box_and_split_filter(panel, state):
    names = sorted(s.name for s in state.dataset.samples)
    panel.filter_edit.setText(names[2][-3:])
    assert [r["name"] for r in rows(panel)] == [names[2]]
    panel.filter_edit.clear()
    panel.split_filter.setCurrentText("val")
    assert sorted(r["name"] for r in rows(panel)) == sorted(s.name for s in state.dataset.split("val"))
    panel.split_filter.setCurrentText("all")
    assert len(rows(panel)) == 6


# -- selection and the large view ----------------------------------------------------------------
def test_selecting_row_selects_sample_and_shows_it(panel, state, qtbot):
    name = rows(panel)[3]["name"]
    with qtbot.waitSignal(state.sampleSelected) as blocker:
        panel.table.selectRow(proxy_index(panel, name, M.NAME).row())
    assert blocker.args == [name]
    assert state.selected_sample == name
    np.testing.assert_array_equal(panel.canvas.image(), to_display(state.sample(name).image))
    assert name in panel.canvas._title.text


def test_selection_from_elsewhere_selects_row(panel, state):
    name = rows(panel)[4]["name"]
    state.select_sample(name)
    assert panel.table.currentIndex().data(M.NAME_ROLE) == name
    assert panel.table.selectionModel().isRowSelected(panel.table.currentIndex().row())
    np.testing.assert_array_equal(panel.canvas.image(), to_display(state.sample(name).image))


def test_overlay_controls_change_mask_layer(panel, state):
    sample = state.sample()
    mask = sample.mask
    panel.opacity_slider.setValue(80)
    np.testing.assert_array_equal(panel.canvas.layer("mask"), mask_overlay(mask, 0.8, "fill"))
    assert panel.opacity_label.text() == "80 %"
    panel.mode_combo.setCurrentText("contour")
    np.testing.assert_array_equal(panel.canvas.layer("mask"), mask_overlay(mask, 0.8, "contour"))
    panel.colour_combo.setCurrentText("red")
    np.testing.assert_array_equal(panel.canvas.layer("mask"),
                                  mask_overlay(mask, 0.8, "contour", sv.OVERLAY_COLOURS["red"]))
    panel.show_mask_check.setChecked(False)
    assert panel.canvas.layer("mask") is None
    np.testing.assert_array_equal(panel.canvas.rendered(), to_display(sample.image))


# -- statistics and problems ---------------------------------------------------------------------
def test_statistics_box(panel, state):
    text = panel.stats_text()
    stats = state.dataset.stats
    for expected in ("split-folders", str(state.dataset.root), "6 — 4 train, 2 val, 0 test", "64×64",
                     stats.label_mapping, f"class 1: {100 * stats.class_fractions[1]:.1f} %", "uint8",
                     f"{stats.normalised_mean[0]:.4g}", f"{stats.normalised_std[0]:.4g}"):
        assert expected in text
    assert panel.tabs.tabText(1) == "Problems (0)"


def test_statistics_computed_in_background_for_large_datasets(qtbot, state, monkeypatch):
    monkeypatch.setattr(dp, "SYNC_STATS_PIXELS", 0)
    state.dataset.__dict__.pop("stats", None)
    widget = DatasetPanel(state)
    qtbot.addWidget(widget)
    try:
        assert "Computing statistics" in widget.stats_text()
        qtbot.waitUntil(lambda: "Class balance" in widget.stats_text(), timeout=5000)
        assert all(r["fg"].endswith("%") for r in rows(widget))
        assert "stats" in state.dataset.__dict__
    finally:
        widget.shutdown()


def test_corrupt_file_is_listed_as_problem(panel, state, qtbot, demo_folder, tmp_path):
    folder = broken_copy(demo_folder, tmp_path)
    state.set_split([rows(panel)[0]["name"]], "test")
    wait_loaded(qtbot, panel, lambda: panel.open_folder(folder))
    assert state.dataset.root == folder
    assert state.config.data.path == str(folder) and state.config.data.splits == {}
    assert len(rows(panel)) == 5 and "em_001" not in [r["name"] for r in rows(panel)]
    assert panel.tabs.tabText(1) == "Problems (1)"
    item = panel.problems_view.topLevelItem(0)
    assert "em_001.png" in item.text(0) and item.text(1)
    assert item.toolTip(0) == str(folder / "train" / "images" / "em_001.png")
    assert not panel.error_banner.isVisibleTo(panel)


def test_empty_folder_shows_banner_and_keeps_dataset(panel, state, qtbot, tmp_path):
    before = state.dataset
    empty = tmp_path / "empty"
    empty.mkdir()
    with qtbot.waitSignal(panel.loadFailed) as blocker:
        panel.open_folder(empty)
    qtbot.waitUntil(lambda: not panel.loading)
    assert "empty" in blocker.args[0]
    assert panel.error_banner.isVisibleTo(panel)
    assert str(empty) in panel.error_label.text()
    assert state.dataset is before and len(rows(panel)) == 6
    assert state.config.data.path != str(empty)


def test_open_stacks_loads_one_sample_per_page(panel, state, qtbot, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (4, 24, 32), dtype=np.uint8)
    labels = np.zeros((4, 24, 32), np.uint8)
    labels[:, 5:15, 8:20] = 255
    tifffile.imwrite(tmp_path / "vol.tif", images, photometric="minisblack")
    tifffile.imwrite(tmp_path / "vol-labels.tif", labels, photometric="minisblack")
    wait_loaded(qtbot, panel, lambda: panel.open_stacks(tmp_path / "vol.tif", tmp_path / "vol-labels.tif"))
    shown = rows(panel)
    assert len(shown) == 4 and {r["size"] for r in shown} == {"32×24"}
    assert state.config.data.path == str(tmp_path / "vol.tif")
    assert state.config.data.label_stack == str(tmp_path / "vol-labels.tif")
    assert state.dataset.layout == "tiff-stack"


def test_open_demo_points_experiment_at_demo_folder(panel, state, qtbot, demo_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_DATA_DIR", str(tmp_path / "user"))
    shutil.copytree(demo_folder, tmp_path / "user" / "demo" / "em")  # already "generated": fast
    state.config.data.path = None
    wait_loaded(qtbot, panel, panel.open_demo)
    assert state.config.data.path == str(tmp_path / "user" / "demo" / "em")
    assert len(rows(panel)) == 6


def test_load_from_config_keeps_splits(panel, state, qtbot, demo_folder):
    name = rows(panel)[0]["name"]
    state.config.data.splits = {name: "test"}
    old = state.dataset
    wait_loaded(qtbot, panel, panel.load_from_config)
    assert state.dataset is not old
    assert state.sample(name).split == "test" and state.config.data.splits == {name: "test"}


def test_experiment_replaced_elsewhere_reloads_its_data(panel, state, qtbot, demo_folder, tmp_path):
    folder = broken_copy(demo_folder, tmp_path)
    with qtbot.waitSignal(panel.loaded, timeout=10000):
        state.set_config(tiny_config(folder), source=None)
    qtbot.waitUntil(lambda: not panel.loading)
    assert state.dataset.root == folder and len(rows(panel)) == 5
    assert not state.dirty
    old = state.dataset
    same = tiny_config(folder)
    same.name = "renamed"
    state.set_config(same, source=None)  # same data: nothing to reload
    assert not panel.loading and state.dataset is old


def test_cancel_keeps_dataset(panel, state, qtbot, monkeypatch, tmp_path):
    def slow(config, progress=None):
        for i in range(500):
            progress(i, 500)
            time.sleep(0.01)
        raise AssertionError("not cancelled")

    monkeypatch.setattr(dp, "load_experiment_data", slow)
    before = state.dataset
    loaded = []
    panel.loaded.connect(lambda: loaded.append(True))
    with qtbot.waitSignal(panel.loadingChanged) as started:
        panel.open_folder(tmp_path)
    assert started.args == [True] and panel.progress_row.isVisibleTo(panel)
    qtbot.waitUntil(lambda: panel.progress_bar.maximum() == 500)
    with qtbot.waitSignal(panel.loadingChanged, timeout=5000) as ended:
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert ended.args == [False] and not panel.progress_row.isVisibleTo(panel)
    assert state.dataset is before and not loaded and not panel.error_banner.isVisibleTo(panel)


# -- drag and drop, training lock ----------------------------------------------------------------
def test_drop_folder_opens_it(panel, state, qtbot, demo_folder, tmp_path):
    folder = broken_copy(demo_folder, tmp_path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    panel.dragEnterEvent(enter)
    assert enter.isAccepted()
    wait_loaded(qtbot, panel, lambda: panel.dropEvent(event))
    assert event.isAccepted()
    assert state.dataset.root == folder


def test_drop_of_unusable_files_shows_message(panel, state, tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "a.png"))])
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    panel.dragEnterEvent(enter)
    assert not enter.isAccepted()
    assert not panel.drop_paths([tmp_path / "a.png"])
    assert panel.error_banner.isVisibleTo(panel) and "Drop one dataset folder" in panel.error_label.text()
    assert not panel.loading


def test_stack_pair_order_from_names(tmp_path):
    image, labels, other = tmp_path / "train-volume.tif", tmp_path / "train-labels.tif", tmp_path / "b.tif"
    assert order_stack_pair(labels, image) == (image, labels)
    assert order_stack_pair(image, labels) == (image, labels)
    assert order_stack_pair(other, image) == (other, image)
    for path in (image, labels):
        path.write_bytes(b"")
    assert dp.drop_source([labels, image]) == (image, labels)
    assert dp.drop_source([tmp_path]) == tmp_path
    assert dp.drop_source([image]) is None


def test_training_locks_dataset_editing(panel, state):
    state.set_training(True)
    assert not panel.open_folder_action.isEnabled() and not panel.demo_action.isEnabled()
    index = proxy_index(panel, rows(panel)[0]["name"], M.SPLIT)
    assert not index.flags() & Qt.ItemFlag.ItemIsEditable
    assert not panel.proxy.setData(index, "test")
    panel.table.selectRow(0)
    assert not panel.move_button.isEnabled()
    panel.open_folder(state.dataset.root)
    assert not panel.loading and "training run" in panel.error_label.text()
    state.set_training(False)
    assert panel.open_folder_action.isEnabled() and index.flags() & Qt.ItemFlag.ItemIsEditable
    assert panel.move_button.isEnabled()


def test_small_layout_and_tooltips(panel):
    panel.resize(500, 400)
    panel.show()
    assert panel.open_folder_action.shortcut().toString() == "Ctrl+Shift+O"
    for widget in (panel.filter_edit, panel.split_filter, panel.move_combo, panel.move_button, panel.show_mask_check,
                   panel.colour_combo, panel.opacity_slider, panel.mode_combo, panel.cancel_button):
        assert widget.toolTip()
    # views inside the panel must not swallow a dropped folder
    assert panel.acceptDrops() and not panel.canvas.viewport().acceptDrops()
    assert not panel.table.viewport().acceptDrops()
    panel.shutdown()
    panel.shutdown()


def test_reopening_the_same_folder_keeps_splits(panel, state, qtbot, demo_folder):
    name = rows(panel)[0]["name"]
    state.set_split([name], "test")
    wait_loaded(qtbot, panel, lambda: panel.open_folder(demo_folder))
    assert state.config.data.splits == {name: "test"} and state.sample(name).split == "test"


# -- review fixes: failed, stale and mid-run loads -----------------------------------------------
def unreadable_copy(demo_folder, tmp_path) -> Path:
    folder = tmp_path / "unreadable"
    shutil.copytree(demo_folder, folder)
    for image in folder.glob("*/images/*"):
        image.write_bytes(b"not an image")
    return folder


@pytest.fixture
def gated_load(monkeypatch):
    """Loads wait for ``gate.set()`` (at most 5 s), then load for real."""
    import threading

    gate = threading.Event()
    real = dp.load_experiment_data

    def gated(config, progress=None):
        gate.wait(5)
        return real(config, progress=progress)

    monkeypatch.setattr(dp, "load_experiment_data", gated)
    yield gate
    gate.set()


def test_dataset_without_usable_samples_is_a_failure(panel, state, qtbot, demo_folder, tmp_path):
    folder = unreadable_copy(demo_folder, tmp_path)
    before, path_before = state.dataset, state.config.data.path
    loaded = []
    panel.loaded.connect(lambda: loaded.append(True))
    with qtbot.waitSignal(panel.loadFailed, timeout=10000) as blocker:
        panel.open_folder(folder)
    qtbot.waitUntil(lambda: not panel.loading)
    text = panel.error_label.text()
    assert panel.error_banner.isVisibleTo(panel) and str(folder) in text and "no usable samples" in text
    assert "em_000.png" in text and "not a readable image" in text and "(and 3 more)" in text
    assert str(folder) in blocker.args[0]
    assert state.dataset is before and state.config.data.path == path_before and not loaded
    assert len(rows(panel)) == 6


def test_load_finishing_during_training_is_not_applied(panel, state, qtbot, demo_folder, tmp_path, gated_load):
    folder = broken_copy(demo_folder, tmp_path)
    before, path_before = state.dataset, state.config.data.path
    panel.open_folder(folder)
    assert panel.loading
    state.blockSignals(True)  # a run flagged without the panel being told: the result itself must be refused
    state.set_training(True)
    state.blockSignals(False)
    gated_load.set()
    qtbot.waitUntil(lambda: not panel.loading, timeout=10000)
    assert state.dataset is before and state.config.data.path == path_before
    assert "not applied" in panel.error_label.text() and panel.error_banner.isVisibleTo(panel)


def test_training_start_cancels_loading(panel, state, qtbot, demo_folder, tmp_path, gated_load):
    folder = broken_copy(demo_folder, tmp_path)
    before, path_before = state.dataset, state.config.data.path
    loaded = []
    panel.loaded.connect(lambda: loaded.append(True))
    panel.open_folder(folder)
    state.set_training(True)
    gated_load.set()
    qtbot.waitUntil(lambda: not panel.loading, timeout=10000)
    qtbot.wait(20)
    assert state.dataset is before and state.config.data.path == path_before and not loaded
    assert "cancelled" in panel.error_label.text()
    state.set_training(False)  # the experiment still names the loaded data: nothing to reload
    assert not panel.loading and state.dataset is before


def test_experiment_replaced_during_training_loads_after_the_run(panel, state, qtbot, demo_folder, tmp_path):
    folder = broken_copy(demo_folder, tmp_path)
    before = state.dataset
    state.set_training(True)
    state.set_config(tiny_config(folder), source=None)
    assert not panel.loading and state.dataset is before
    with qtbot.waitSignal(panel.loaded, timeout=10000):
        state.set_training(False)
    qtbot.waitUntil(lambda: not panel.loading)
    assert state.dataset.root == folder


def test_split_moves_during_reload_are_kept(panel, state, qtbot, demo_folder, gated_load):
    first, second = rows(panel)[0]["name"], rows(panel)[1]["name"]
    state.set_split([first], "test")
    panel.open_folder(demo_folder)  # the same dataset: a reload keeping its split moves
    state.set_split([second], "val")  # moved while it loads
    with qtbot.waitSignal(panel.loaded, timeout=10000):
        gated_load.set()
    qtbot.waitUntil(lambda: not panel.loading)
    assert state.config.data.splits == {first: "test", second: "val"}
    assert state.sample(first).split == "test" and state.sample(second).split == "val"
    assert proxy_index(panel, second, M.SPLIT).data() == "val"
    counts = state.dataset.split_counts()
    assert f"{counts['val']} val, 1 test" in panel.stats_text()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # invalidateRowsFilter() is deprecated in Qt 6.10+
def test_filter_works_without_bracketed_filter_change(panel, state, monkeypatch):
    monkeypatch.setattr(SampleFilterProxy, "BRACKETED_FILTER_CHANGE", False)  # PySide6 < 6.10
    panel.split_filter.setCurrentText("val")
    assert sorted(r["name"] for r in rows(panel)) == sorted(s.name for s in state.dataset.split("val"))
    panel.filter_edit.setText("no such sample")
    assert rows(panel) == []
    panel.filter_edit.clear()
    panel.split_filter.setCurrentText("all")
    assert len(rows(panel)) == 6


# -- review fixes: the large view on big images --------------------------------------------------
@pytest.mark.parametrize("mode", OVERLAY_MODES)
@pytest.mark.parametrize("colour", [None, (255, 200, 0)])
def test_mask_layer_equals_mask_overlay(mode, colour):
    rng = np.random.default_rng(1)
    masks = [rng.integers(0, 13, (21, 17)).astype(np.uint8), rng.integers(0, 300, (9, 11)).astype(np.uint16),
             rng.random((8, 8)) > 0.5, rng.integers(-2, 40, (6, 7)).astype(np.int32)]
    for mask in masks:
        layer = sv.MaskLayer(mask)
        for opacity in (0.0, 0.13, 0.45, 0.8, 1.0):
            expected = mask_overlay(mask, opacity, mode, colour)
            np.testing.assert_array_equal(layer.overlay(opacity, mode, colour), expected)
            fade = sv.MaskLayer.fade(mode, opacity)
            if fade is not None:  # a full-strength layer faded as a whole is the same overlay
                np.testing.assert_array_equal(sv.faded(layer.overlay(1.0, mode, colour), fade), expected)


def test_opacity_change_fades_the_layer_without_rebuilding_it(panel, state):
    sample = state.sample()
    raw = panel.canvas._layer_data["mask"]
    panel.opacity_slider.setValue(70)
    assert panel.canvas._layer_data["mask"] is raw  # same array, only the item's opacity changed
    assert panel.canvas._layers["mask"].opacity() == pytest.approx(0.7)
    np.testing.assert_array_equal(panel.canvas.layer("mask"), mask_overlay(sample.mask, 0.7, "fill"))
    expected = composite(to_display(sample.image), mask_overlay(sample.mask, 0.7, "fill"))
    np.testing.assert_array_equal(panel.canvas.rendered(), expected)
    panel.mode_combo.setCurrentText("both")  # two alpha levels: the array itself carries them
    panel.opacity_slider.setValue(30)
    assert panel.canvas.layer_opacity("mask") == 1.0
    np.testing.assert_array_equal(panel.canvas.layer("mask"), mask_overlay(sample.mask, 0.3, "both"))


def test_big_sample_is_prepared_in_background_and_cached(panel, state, qtbot, monkeypatch):
    monkeypatch.setattr(dp, "SYNC_VIEW_PIXELS", 0)  # every sample counts as big
    first, second = rows(panel)[0]["name"], rows(panel)[1]["name"]
    panel.views.clear()
    state.select_sample(second)
    assert panel.preparing_view and "preparing" in panel.canvas._title.text
    qtbot.waitUntil(lambda: not panel.preparing_view, timeout=5000)
    np.testing.assert_array_equal(panel.canvas.image(), to_display(state.sample(second).image))
    np.testing.assert_array_equal(panel.canvas.layer("mask"), mask_overlay(state.sample(second).mask, 0.45, "fill"))
    assert "preparing" not in panel.canvas._title.text
    state.select_sample(first)
    qtbot.waitUntil(lambda: not panel.preparing_view, timeout=5000)
    state.select_sample(second)  # shown before: from the cache, at once
    assert not panel.preparing_view
    np.testing.assert_array_equal(panel.canvas.image(), to_display(state.sample(second).image))


def test_view_cache_is_bounded():
    class S:
        image = np.zeros((4, 4), np.uint8)
        mask = np.zeros((4, 4), np.uint8)

    samples = [S() for _ in range(4)]
    cache = sv.ViewCache(size=2)
    for sample in samples[:3]:
        cache.put(sv.sample_view(sample))
    assert len(cache) == 2 and cache.get(samples[0]) is None and cache.get(samples[2]) is not None
    cache.get(samples[1])  # used: kept over samples[2]
    cache.put(sv.sample_view(samples[3]))
    assert cache.get(samples[1]) is not None and cache.get(samples[2]) is None
    one = sv.sample_view(samples[0]).nbytes
    small = sv.ViewCache(size=8, max_bytes=2 * one)
    for sample in samples:
        small.put(sv.sample_view(sample))
    assert len(small) == 2 and small.nbytes <= 2 * one


# -- review fixes: nothing starts after shutdown -------------------------------------------------
def test_no_background_work_after_shutdown(panel, state, qtbot, demo_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(dp, "SYNC_VIEW_PIXELS", 0)
    monkeypatch.setattr(dp, "SYNC_STATS_PIXELS", 0)
    before = state.dataset
    panel.shutdown()
    started = []
    for runner in (panel._runner, panel._stats_runner, panel._view_runner):
        runner.start = lambda *args, r=runner, **kwargs: started.append(r.name)
    state.set_config(tiny_config(broken_copy(demo_folder, tmp_path)), source=None)
    panel.open_folder(demo_folder)
    panel.open_demo()
    state.select_sample(rows(panel)[2]["name"])
    state.set_split([rows(panel)[0]["name"]], "test")
    assert started == []
    assert state.dataset is before and not panel.progress_row.isVisibleTo(panel)


def test_task_runner_refusing_a_job_is_tolerated(panel, state, demo_folder):
    panel._runner.start = lambda *args, **kwargs: None  # as TaskRunner does after shutdown
    panel.open_folder(demo_folder)
    assert not panel.loading and not panel.progress_row.isVisibleTo(panel)
    assert "Loading" not in panel.progress_label.text()
