"""The sweep's ranked runs as a Qt table model.

A model serves only the cells on screen, so a refresh after each run of a 300-run sweep costs a
few milliseconds instead of building thousands of table items. The texts are made once per
refresh; :meth:`RankedRunsModel.column_widths` measures them for the view's column sizes.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics

from app.core.sweep import NOT_APPLICABLE
from app.core.sweep_results import finite_number, value_label

TABLE_METRICS = ("best_dice", "best_iou", "highest_accuracy", "lowest_loss", "wall_seconds", "epochs")
HEADERS = {"best_dice": "Dice", "best_iou": "IoU", "highest_accuracy": "accuracy", "lowest_loss": "loss",
           "wall_seconds": "time (s)"}  # short column titles; the tooltip names the summary field
STATUS_COLOURS = {"failed": "#d32f2f", "stopped": "#f5a623", "pending": "#888888", "running": "#4285f4"}
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter


def metric_text(metric: str, value) -> str:
    """A metric as written in a cell: 4 decimals, seconds to one, epochs whole; "—" if missing."""
    if not finite_number(value):
        return "—"
    if metric == "epochs":
        return str(int(value))
    if metric == "wall_seconds":
        return f"{value:.1f}"
    return f"{value:.4f}"


class RankedRunsModel(QAbstractTableModel):
    """Rows from :func:`app.core.sweep_results.results_table`: rank, run, the grid fields, status,
    the metrics and the error message; the chosen metric's column is bold."""

    def __init__(self, font: QFont, parent=None) -> None:
        """``font``: the view's; the chosen metric's column is drawn in its bold version."""
        super().__init__(parent)
        self.columns: list[str] = ["#", "run", "status", *TABLE_METRICS, "message"]
        self.names: list[str] = []
        self._texts: list[list[str]] = []  # per row, per column; the last column is the error message
        self._status_column = self.columns.index("status")
        self._right = [False] * len(self.columns)
        self.chosen = -1
        self._bold = QFont(font)
        self._bold.setBold(True)

    def set_rows(self, rows: list[dict], keys: list[str], metric: str, current_run: str | None) -> None:
        """Show ``rows`` with a column per grid field in ``keys``; ``current_run`` reads "running"."""
        self.beginResetModel()
        self.columns = ["#", "run", *keys, "status", *TABLE_METRICS, "message"]
        self.chosen = self.columns.index(metric) if metric in self.columns else -1
        self._right = [c == 0 or column in TABLE_METRICS for c, column in enumerate(self.columns)]
        self._status_column = self.columns.index("status")
        self.names, self._texts = [], []
        for row in rows:
            status = "running" if row["name"] == current_run and row["status"] != "completed" else row["status"]
            self.names.append(row["name"])
            self._texts.append(["" if row["rank"] is None else str(row["rank"]), row["name"],
                                *(value_label(row.get(k)) if row.get(k) is not None else NOT_APPLICABLE
                                  for k in keys),
                                str(status), *(metric_text(m, row.get(m)) for m in TABLE_METRICS), row.get("error") or ""])
        self.endResetModel()

    # -- QAbstractTableModel -------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt's name)
        return 0 if parent.isValid() else len(self._texts)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt's name)
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._texts[r][c]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if self._right[c] else _LEFT
        if role == Qt.ItemDataRole.FontRole and c == self.chosen:
            return self._bold
        if role == Qt.ItemDataRole.ForegroundRole and c == self._status_column:
            colour = STATUS_COLOURS.get(self._texts[r][c])
            return QBrush(QColor(colour)) if colour else None
        if role == Qt.ItemDataRole.ToolTipRole and self._texts[r][-1]:
            return f"{self.names[r]} failed: {self._texts[r][-1]}"
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 (Qt's name)
                   role: int = Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        column = self.columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS.get(column, column)
        if role == Qt.ItemDataRole.ToolTipRole and column in TABLE_METRICS:
            return f"{column} from the run's summary.json"
        if role == Qt.ItemDataRole.FontRole and section == self.chosen:
            return self._bold
        return None

    def column_widths(self, font: QFont, header_font: QFont, padding: int) -> list[int]:
        """Each column's width to show its widest cell in ``font`` and its title in ``header_font``
        (measured bold: styles may draw titles bold)."""
        plain, bold = QFontMetrics(font), QFontMetrics(self._bold)
        title_font = QFont(header_font)
        title_font.setBold(True)
        title = QFontMetrics(title_font)
        widths = []
        for c, column in enumerate(self.columns):
            metrics = bold if c == self.chosen else plain
            cells = max((metrics.horizontalAdvance(t) for t in {row[c] for row in self._texts}), default=0)
            widths.append(max(cells, title.horizontalAdvance(HEADERS.get(column, column))) + padding)
        return widths
