"""A sweep's results: a heat map of one metric over two grid fields (values written in coloured
cells, with a colour scale) and the ranked table of runs.

Everything is read from the sweep folder by :mod:`app.core.sweep_results` (``sweep.json`` and
the runs' ``summary.json``), so the view works for a running, stopped or finished sweep; call
:meth:`SweepResultsView.refresh` when a run ends. Double-clicking a run emits ``openRun``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QSizePolicy, QSplitter, QTableView, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from app.core.sweep import NOT_APPLICABLE, SweepError
from app.core.sweep_results import (LOWER_IS_BETTER, METRICS, SummaryCache, finite_number, heatmap_of_rows,
                                    ranked_results, value_label)

from .sweep_ranked_model import RankedRunsModel, metric_text

METRIC_LABELS = {"best_dice": "best Dice", "best_iou": "best IoU", "highest_accuracy": "best accuracy",
                 "lowest_loss": "lowest loss", "best_value": "best of best_metric",
                 "wall_seconds": "time (s)", "epochs": "epochs"}
NO_AXIS = "(none)"
MESSAGE_WIDTH = 420  # the error column is cut here; its tooltip holds the whole message


class ColourStrip(QWidget):
    """The heat map's colour scale: one row of colours stretched over the widget."""

    def __init__(self) -> None:
        super().__init__()
        self.setFixedHeight(14)
        self.setMinimumWidth(60)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.image = QImage()

    def set_colours(self, rgb: np.ndarray) -> None:
        """``rgb``: N×3 uint8, worst first."""
        row = np.ascontiguousarray(rgb[None, :, :3], dtype=np.uint8)
        self.image = QImage(row.data, row.shape[1], 1, 3 * row.shape[1], QImage.Format.Format_RGB888).copy()
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if not self.image.isNull():
            QPainter(self).drawImage(self.rect(), self.image)


def _lut() -> np.ndarray:
    from .model_jobs import viridis_lut

    return viridis_lut()


def _readable_text(rgb) -> QColor:
    r, g, b = (int(c) for c in rgb[:3])
    return QColor("black") if 0.299 * r + 0.587 * g + 0.114 * b > 140 else QColor("white")


class SweepResultsView(QWidget):
    """Heat map and ranked table of the sweep in :attr:`folder`."""

    openRun = Signal(object)  # the run folder (Path) of a double-clicked run
    problem = Signal(str)  # what went wrong, for the panel's banner (a double-clicked run that has gone)
    exportRequested = Signal()  # "Export CSV…" pressed
    metricChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.folder: Path | None = None
        self.current_run: str | None = None  # shown as "running" in the table
        self.rows: list[dict] = []
        self.heat_values = np.zeros((0, 0))
        self._keys: list[str] = []
        self._grid: dict = {}  # the sweep's grid, read with the rows
        self._lut_cache: np.ndarray | None = None
        self._summaries = SummaryCache()  # a refresh re-reads only the summaries that changed
        self._build_ui()

    # -- construction ------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.metric_combo = QComboBox()
        for metric in METRICS:
            self.metric_combo.addItem(METRIC_LABELS.get(metric, metric), metric)
        self.metric_combo.setToolTip("The metric of the heat map and the ranking (from each run's summary.json).")
        self.x_combo, self.y_combo = QComboBox(), QComboBox()
        for combo in (self.x_combo, self.y_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        self.x_combo.setToolTip("The grid field along the heat map's columns")
        self.y_combo.setToolTip("The grid field along the heat map's rows")
        self.reduce_combo = QComboBox()
        self.reduce_combo.addItems(["best", "mean", "max", "min"])
        self.reduce_combo.setToolTip("When several runs share a cell (other fields vary): show the best, the mean, "
                                     "the largest or the smallest of their values.")
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save the ranked table (every run, its grid values and metrics) as CSV.")
        self.export_button.setEnabled(False)
        controls, axes = QHBoxLayout(), QHBoxLayout()
        for row, pairs in ((controls, (("Metric", self.metric_combo), ("Cells", self.reduce_combo))),
                           (axes, (("Columns", self.x_combo), ("Rows", self.y_combo)))):
            for caption, widget in pairs:
                row.addWidget(QLabel(caption))
                row.addWidget(widget)
            row.addStretch(1)
        controls.addWidget(self.export_button)

        self.heat_table = QTableWidget()
        self.heat_table.setObjectName("sweepHeatMap")
        self.heat_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.heat_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.heat_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.heat_table.horizontalHeader().setMinimumSectionSize(70)
        self.heat_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.heat_table.verticalHeader().setMinimumSectionSize(30)
        self.heat_title = QLabel()
        self.heat_title.setWordWrap(True)
        self.scale_low, self.scale_high = QLabel(), QLabel()
        self.scale_bar = ColourStrip()
        self.scale_caption = QLabel()
        scale = QHBoxLayout()
        scale.addWidget(self.scale_low)
        scale.addWidget(self.scale_bar, 1)
        scale.addWidget(self.scale_high)
        scale.addWidget(self.scale_caption)
        heat_box = QWidget()
        heat_layout = QVBoxLayout(heat_box)
        heat_layout.setContentsMargins(0, 0, 0, 0)
        heat_layout.addWidget(self.heat_title)
        heat_layout.addWidget(self.heat_table, 1)
        heat_layout.addLayout(scale)

        self.ranked = QTableView()
        self.ranked_model = RankedRunsModel(self.ranked.font(), self)
        self.ranked.setModel(self.ranked_model)
        self.ranked.setObjectName("sweepRankedTable")
        self.ranked.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.ranked.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.ranked.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.ranked.setAlternatingRowColors(True)
        self.ranked.verticalHeader().hide()
        self.ranked.setWordWrap(False)
        self.ranked.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.ranked.setToolTip("Runs, best first by the chosen metric. Double-click a run to open it.")
        self.empty_label = QLabel("No results yet: run the sweep, or open a sweep folder.")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(heat_box)
        splitter.addWidget(self.ranked)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(axes)
        layout.addWidget(self.empty_label)
        layout.addWidget(splitter, 1)
        splitter.hide()

        self.metric_combo.currentIndexChanged.connect(self._on_metric)
        for combo in (self.x_combo, self.y_combo, self.reduce_combo):
            combo.currentIndexChanged.connect(lambda _i: self._draw_heatmap())
        self.export_button.clicked.connect(self.exportRequested)
        self.ranked.doubleClicked.connect(self._on_double_click)

    # -- public API --------------------------------------------------------------------------
    @property
    def metric(self) -> str:
        return self.metric_combo.currentData()

    def set_metric(self, metric: str) -> None:
        self.metric_combo.setCurrentIndex(max(0, self.metric_combo.findData(metric)))

    def set_axes(self, x_axis: str, y_axis: str | None) -> None:
        self.x_combo.setCurrentText(x_axis)
        self.y_combo.setCurrentText(y_axis or NO_AXIS)

    def set_folder(self, folder: Path | None) -> None:
        """Show the sweep in ``folder`` (None: nothing)."""
        self.folder = Path(folder) if folder else None
        self.refresh()

    def refresh(self) -> None:
        """Read the folder again (a run ended) and redraw; keeps the chosen metric and axes."""
        self.rows, self._grid, message = [], {}, "No results yet: run the sweep, or open a sweep folder."
        if self.folder is not None and (self.folder / "sweep.json").is_file():
            try:
                self.rows, grid = ranked_results(self.folder, self.metric, self._summaries)
                self._grid = dict(grid)
            except (SweepError, OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
                # AttributeError, TypeError: a sweep.json or summary.json of another shape than expected
                self.rows, self._grid = [], {}
                message = f"Cannot read the sweep's results in {self.folder}: {exc}"
        self._set_keys(list(self._grid))
        self.export_button.setEnabled(bool(self.rows))
        self.empty_label.setText(message)
        self.empty_label.setVisible(not self.rows)
        self.splitter.setVisible(bool(self.rows))
        self._fill_ranked()
        self._draw_heatmap()

    def metric_note(self, name: str) -> str:
        """`` (best_dice 0.8123)`` for the run ``name``; empty if it is not in the table."""
        row = next((r for r in self.rows if r["name"] == name), None)
        return f" ({self.metric} {metric_text(self.metric, row.get(self.metric))})" if row else ""

    def run_dir(self, row: int) -> Path | None:
        """The run folder of the ranked table's ``row``."""
        names = self.ranked_model.names
        if not 0 <= row < len(names) or self.folder is None:
            return None
        return self.folder / names[row]

    def ranked_text(self, row: int, column: int) -> str:
        """The text of a cell of the ranked table."""
        return self.ranked_model.index(row, column).data(Qt.ItemDataRole.DisplayRole)

    # -- the heat map ------------------------------------------------------------------------
    def _set_keys(self, keys: list[str]) -> None:
        if keys == self._keys:
            return
        self._keys = keys
        old_x, old_y = self.x_combo.currentText(), self.y_combo.currentText()
        x = old_x if old_x in keys else ("model.name" if "model.name" in keys else keys[0] if keys else "")
        rest = [k for k in keys if k != x]
        y = old_y if old_y in rest else ("loss.name" if "loss.name" in rest else rest[0] if rest else NO_AXIS)
        for combo, items, chosen in ((self.x_combo, keys, x), (self.y_combo, keys + [NO_AXIS], y)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(items)
            combo.setCurrentText(chosen)
            combo.blockSignals(False)

    def _reduce(self) -> str:
        choice = self.reduce_combo.currentText()
        if choice == "best":
            return "min" if self.metric in LOWER_IS_BETTER else "max"
        return choice

    def _heat_data(self) -> tuple[list[str], list[str], np.ndarray]:
        x_axis, y_axis = self.x_combo.currentText(), self.y_combo.currentText()
        if not self.rows or not x_axis:
            return [], [], np.zeros((0, 0))
        if y_axis not in (NO_AXIS, x_axis) and y_axis:
            # the rows read by refresh(): changing an axis or the reduction reads no files
            return heatmap_of_rows(self.rows, self._grid, self.metric, x_axis, y_axis, self._reduce())
        labels = list(dict.fromkeys(value_label(r.get(x_axis)) for r in self.rows))  # one row of cells
        if NOT_APPLICABLE in labels:
            labels.remove(NOT_APPLICABLE)
            labels.append(NOT_APPLICABLE)
        values = np.full((1, len(labels)), np.nan)
        pick = {"max": max, "min": min, "mean": lambda v: sum(v) / len(v)}[self._reduce()]
        for i, label in enumerate(labels):
            found = [r[self.metric] for r in self.rows if value_label(r.get(x_axis)) == label
                     and finite_number(r.get(self.metric))]
            if found:
                values[0, i] = pick(found)
        return labels, ["all runs"], values

    def _draw_heatmap(self) -> None:
        table = self.heat_table
        try:
            x_labels, y_labels, values = self._heat_data()
        except SweepError as exc:
            x_labels, y_labels, values = [], [], np.zeros((0, 0))
            self.heat_title.setText(str(exc))
        else:
            y_axis = self.y_combo.currentText()
            over = f" × {y_axis}" if y_axis not in (NO_AXIS, "") else ""
            self.heat_title.setText(f"<b>{METRIC_LABELS.get(self.metric, self.metric)}</b> by "
                                    f"{self.x_combo.currentText()}{over} ({self.reduce_combo.currentText()} "
                                    f"of the runs in each cell)")
        self.heat_values = values
        table.clear()
        table.setRowCount(len(y_labels))
        table.setColumnCount(len(x_labels))
        table.setHorizontalHeaderLabels(x_labels)
        table.setVerticalHeaderLabels(y_labels)
        finite = values[np.isfinite(values)] if values.size else values
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (math.nan, math.nan)
        lut, unscored = self._lut(), self._unscored(x_labels, y_labels)
        font = QFont(table.font())
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        for j in range(len(y_labels)):
            for i in range(len(x_labels)):
                value = float(values[j, i])
                item = QTableWidgetItem(metric_text(self.metric, value))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setFont(font)
                if math.isfinite(value):
                    rgb = lut[int(round(255 * self._goodness(value, low, high)))]
                    item.setBackground(QBrush(QColor(int(rgb[0]), int(rgb[1]), int(rgb[2]))))
                    item.setForeground(QBrush(_readable_text(rgb)))
                    item.setToolTip(f"{x_labels[i]} · {y_labels[j]}: {self.metric} = {value:.6g}")
                else:
                    item.setBackground(self.palette().window())
                    statuses = unscored.get((j, i), [])
                    if statuses:  # a failed run's cell looked like a combination never run
                        item.setText("failed" if "failed" in statuses else statuses[0])
                        item.setForeground(QBrush(QColor("#d32f2f" if "failed" in statuses else "#8a6d00")))
                    item.setToolTip(f"no score here: {', '.join(statuses)}" if statuses else "no run here")
                table.setItem(j, i, item)
        self._draw_scale(low, high)

    def _unscored(self, x_labels: list[str], y_labels: list[str]) -> dict[tuple[int, int], list[str]]:
        """Per cell, the statuses of its runs without a score (failed, stopped, pending)."""
        x_axis, y_axis = self.x_combo.currentText(), self.y_combo.currentText()
        cells: dict[tuple[int, int], list[str]] = {}
        for row in self.rows:
            x = value_label(row.get(x_axis))
            y = "all runs" if y_labels == ["all runs"] else value_label(row.get(y_axis))
            if not finite_number(row.get(self.metric)) and x in x_labels and y in y_labels:
                cells.setdefault((y_labels.index(y), x_labels.index(x)), []).append(str(row.get("status") or "pending"))
        return cells

    def _goodness(self, value: float, low: float, high: float) -> float:
        """0 (worst in the map) .. 1 (best); lower is better for losses and times; mid-scale
        when every cell holds the same value (none is better)."""
        if not high > low:
            return 0.5
        t = (value - low) / (high - low)
        return 1.0 - t if self.metric in LOWER_IS_BETTER else t

    def _draw_scale(self, low: float, high: float) -> None:
        shown = math.isfinite(low)
        for widget in (self.scale_low, self.scale_bar, self.scale_high, self.scale_caption):
            widget.setVisible(shown)
        if not shown:
            return
        worst, best = (high, low) if self.metric in LOWER_IS_BETTER else (low, high)
        self.scale_low.setText(f"worst {metric_text(self.metric, worst)}")
        self.scale_high.setText(f"best {metric_text(self.metric, best)}")
        self.scale_caption.setText("(colour: brighter is better)" if high > low else "(every cell the same)")
        self.scale_bar.set_colours(self._lut()[:, :3])

    def _lut(self) -> np.ndarray:
        if self._lut_cache is None:
            self._lut_cache = _lut()
        return self._lut_cache

    # -- the ranked table --------------------------------------------------------------------
    def _fill_ranked(self) -> None:
        """Show the rows; the selected run stays selected and the table keeps its scroll position."""
        table, model = self.ranked, self.ranked_model
        selected = [model.names[i.row()] for i in table.selectionModel().selectedRows()]
        scroll = table.verticalScrollBar().value()
        model.set_rows(self.rows, self._keys, self.metric, self.current_run)
        for column, width in enumerate(model.column_widths(table.font(), table.horizontalHeader().font(), padding=16)):
            last = column == model.columnCount() - 1  # the message: cut, its tooltip holds it all
            table.setColumnWidth(column, min(max(width, 120), MESSAGE_WIDTH) if last else width)
        if selected and selected[0] in model.names:
            table.selectRow(model.names.index(selected[0]))
        table.verticalScrollBar().setValue(scroll)

    def _on_metric(self, _index: int) -> None:
        self.refresh()
        self.metricChanged.emit(self.metric)

    def _on_double_click(self, index) -> None:
        path = self.run_dir(index.row())
        if path is not None and path.is_dir():
            self.openRun.emit(path)
        elif path is not None:
            self.problem.emit(f"{path} is gone: the run folder was moved or deleted.")
            self.refresh()
