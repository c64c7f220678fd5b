"""The runs table: what it lists (a scan of a runs folder and its sweeps, run as a background
job), a model of :class:`~app.core.runs.RunInfo` rows (the core's columns and cell texts), a
proxy that filters by words and sorts numbers as numbers with missing values last, and a table
view whose Delete, F2 and Enter keys ask to delete, rename and open."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QApplication, QHeaderView, QStyle, QTableView

from app.core.runs import COLUMNS, INCOMPLETE, NUMERIC_KEYS, STATUS_HELP, RunInfo, format_value, matches

TRAINING_TEXT = "training"  # the Status cell of a run training now
COLUMN_KEYS = [key for key, _ in COLUMNS]
RIGHT_ALIGNED = NUMERIC_KEYS | {"date", "wall_seconds"}
# The order on screen: the scores come right after what the run was, so a 1,400 px window shows
# them without scrolling; the model keeps the order of COLUMNS (the CSV's).
SHOWN_ORDER = ["name", "date", "status", "model", "loss", "best_dice", "best_iou", "highest_accuracy", "rand_error",
               "lowest_loss", "epochs", "wall_seconds", "optimizer", "lr", "dataset", "highest_accuracy_epoch",
               "lowest_loss_epoch", "device", "has_checkpoint"]
FIT_ROWS = 40  # rows measured when the columns are fitted to their contents
STATUS_COLOURS = {"failed": "#d32f2f", "stopped": "#f5a623", TRAINING_TEXT: "#4285f4"}
SWEEPS_FOLDER = "sweeps"  # <runs>/sweeps/<sweep>/<point>: sweep runs, listed as "<sweep>/<point>"


@dataclass
class ScanResult:
    """What a scan of a runs folder found: the runs, the problems ("RUN: file: problem"), the
    sweep runs' labels and, for unfinished runs, when they started."""

    folder: Path
    runs: list[RunInfo]
    problems: list[str]
    labels: dict[Path, str] = field(default_factory=dict)  # sweep runs: "sweep/point"
    started: dict[Path, float] = field(default_factory=dict)  # unfinished runs: when config.json was written


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def scan_folder(folder: Path, ctx) -> ScanResult:
    """The job: the runs of ``folder`` and of each ``folder/sweeps/<sweep>``, with their problems."""
    from app.core.runs import scan_runs

    groups = [(folder, "")]
    sweeps = folder / SWEEPS_FOLDER
    result = ScanResult(folder, [], [])
    if sweeps.is_dir():
        try:
            groups += [(p, f"{p.name}/") for p in sorted(sweeps.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        except OSError as exc:
            result.problems.append(f"{SWEEPS_FOLDER}: cannot be listed ({exc.strerror or exc})")
    for done, (where, prefix) in enumerate(groups):
        ctx.check()
        try:
            runs, problems = scan_runs(where)
        except OSError as exc:
            if not prefix:
                raise
            result.problems.append(f"{SWEEPS_FOLDER}/{prefix.rstrip('/')}: {exc}")
            continue
        result.runs += runs
        result.problems += [prefix + problem for problem in problems]
        result.labels.update({run.path: prefix + run.name for run in runs if prefix})
        ctx.progress(done + 1, len(groups))
    for run in result.runs:
        if run.status == INCOMPLETE:
            result.started[run.path] = _mtime(run.path / "config.json") or _mtime(run.path) or 0.0
    return result


class RunsTableModel(QAbstractTableModel):
    """One row per run, the columns of :data:`app.core.runs.COLUMNS`. A run can carry a label
    (e.g. ``sweep/point`` for sweep runs) shown in the Name column instead of its folder name."""

    RUN_ROLE = Qt.ItemDataRole.UserRole

    def __init__(self, parent=None):
        super().__init__(parent)
        self._runs: list[RunInfo] = []
        self._labels: dict[Path, str] = {}
        self._training: set[Path] = set()

    # -- content -----------------------------------------------------------------------------
    def set_runs(self, runs: list[RunInfo], labels: dict[Path, str] | None = None) -> None:
        self.beginResetModel()
        self._runs = list(runs)
        self._labels = dict(labels or {})
        self.endResetModel()

    def runs(self) -> list[RunInfo]:
        return list(self._runs)

    def run(self, row: int) -> RunInfo:
        return self._runs[row]

    def label(self, run: RunInfo) -> str:
        """The run's name as the table and the plot legend show it."""
        return self._labels.get(run.path, run.name)

    def row_of(self, path: Path) -> int | None:
        return next((i for i, run in enumerate(self._runs) if run.path == path), None)

    def replace_run(self, old_path: Path, run: RunInfo) -> None:
        """Put ``run`` in the row of ``old_path`` (after a rename), keeping a sweep label's prefix."""
        row = self.row_of(old_path)
        if row is None:
            return
        label = self._labels.pop(old_path, None)
        if label is not None:
            prefix = label.rpartition("/")[0]
            self._labels[run.path] = f"{prefix}/{run.name}" if prefix else run.name
        self._runs[row] = run
        self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))

    def remove_runs(self, paths) -> None:
        gone = set(paths)
        for row in reversed(range(len(self._runs))):
            if self._runs[row].path in gone:
                self.beginRemoveRows(QModelIndex(), row, row)
                self._labels.pop(self._runs[row].path, None)
                del self._runs[row]
                self.endRemoveRows()

    def set_training(self, paths) -> None:
        """Mark the runs training now (their Status reads "training")."""
        paths = set(paths)
        if paths != self._training:
            self._training = paths
            if self._runs:
                column = COLUMN_KEYS.index("status")
                self.dataChanged.emit(self.index(0, column), self.index(len(self._runs) - 1, column))

    def is_training(self, run: RunInfo) -> bool:
        return run.path in self._training

    # -- values --------------------------------------------------------------------------------
    def text(self, row: int, column: int) -> str:
        run, key = self._runs[row], COLUMN_KEYS[column]
        if key == "name":
            return self.label(run)
        if key == "status" and self.is_training(run):
            return TRAINING_TEXT
        return format_value(run, key)

    def sort_key(self, row: int, column: int):
        """The value a column sorts by: numbers, datetimes or lower-case text; None = missing."""
        run, key = self._runs[row], COLUMN_KEYS[column]
        if key == "name":
            return self.label(run).lower()
        if key == "status":
            return self.text(row, column).lower()
        value = getattr(run, key)
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, bool):
            return int(value)
        return value.lower() if isinstance(value, str) else value

    def _tooltip(self, run: RunInfo, key: str) -> str | None:
        if key == "name":
            lines = [str(run.path)] + ([f"experiment: {run.experiment}"] if run.experiment else [])
            lines += [f"problem: {p}" for p in run.problems]
            return "\n".join(lines)
        if key == "status":
            if self.is_training(run):
                return "training now: it cannot be renamed or deleted until it ends"
            help_text = STATUS_HELP.get(run.status, run.status)
            return f"{help_text}\n{run.message}" if run.message else help_text
        if key in ("lowest_loss", "highest_accuracy") and run.scores_on:
            return f"on the {'validation' if run.scores_on == 'val' else 'training'} images"
        if key == "dataset" and run.dataset_path:
            return run.dataset_path
        if key == "has_checkpoint" and run.checkpoint is not None:
            return str(run.checkpoint)
        return None

    # -- Qt model ------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt naming
        return 0 if parent.isValid() else len(self._runs)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt naming
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 - Qt naming
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][1]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        run, key = self._runs[index.row()], COLUMN_KEYS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(index.row(), index.column())
        if role == self.RUN_ROLE:
            return run
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(run, key)
        if role == Qt.ItemDataRole.TextAlignmentRole and key in RIGHT_ALIGNED:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and key == "status":
            status = TRAINING_TEXT if self.is_training(run) else run.status
            colour = STATUS_COLOURS.get(status)
            return QBrush(QColor(colour)) if colour else None
        if role == Qt.ItemDataRole.FontRole and key == "status" and self.is_training(run):
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.DecorationRole and key == "name" and run.problems:
            return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        return None


class RunsFilterProxy(QSortFilterProxyModel):
    """Filters rows by words (all must occur; see :func:`app.core.runs.matches`, plus the run's
    label) and sorts by :meth:`RunsTableModel.sort_key`: numbers numerically, runs without a
    value last in either direction."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._words: list[str] = []

    def set_filter_text(self, text: str) -> None:
        words = text.lower().split()
        if not hasattr(QSortFilterProxyModel, "beginFilterChange"):  # Qt < 6.10
            self._words = words
            getattr(self, "invalidateRowsFilter", self.invalidateFilter)()
            return
        self.beginFilterChange()
        self._words = words
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:  # noqa: N802 - Qt naming
        if not self._words:
            return True
        model: RunsTableModel = self.sourceModel()
        run = model.run(source_row)
        label = model.label(run).lower()
        return all(word in label or matches(run, word) for word in self._words)

    def lessThan(self, left: QModelIndex, right: QModelIndex) -> bool:  # noqa: N802 - Qt naming
        model: RunsTableModel = self.sourceModel()
        a, b = model.sort_key(left.row(), left.column()), model.sort_key(right.row(), right.column())
        if a is None or b is None:
            # Qt reverses the order for a descending sort, so "missing" must flip to stay last
            descending = self.sortOrder() == Qt.SortOrder.DescendingOrder
            if a is None and b is None:
                return False
            return (a is None) == descending
        if a == b:  # a stable tie-break: the name
            return model.label(model.run(left.row())).lower() < model.label(model.run(right.row())).lower()
        try:
            return a < b
        except TypeError:
            return str(a) < str(b)

    def run_at(self, row: int) -> RunInfo:
        return self.sourceModel().run(self.mapToSource(self.index(row, 0)).row())

    def visible_runs(self) -> list[RunInfo]:
        """The runs shown, in the order shown."""
        return [self.run_at(row) for row in range(self.rowCount())]


class RunsTableView(QTableView):
    """The table: sortable columns, several rows selectable; Delete, F2 and Enter/Return ask
    the panel to delete, rename and open the selected runs (signals, so the panel decides)."""

    deleteRequested = Signal()
    renameRequested = Signal()
    openRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSortingEnabled(True)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setResizeContentsPrecision(FIT_ROWS)  # fitting hundreds of rows measures only a sample
        header.setSectionsMovable(True)
        self.doubleClicked.connect(lambda _index: self.openRequested.emit())

    def setModel(self, model) -> None:  # noqa: N802 - Qt naming
        """Show the columns in :data:`SHOWN_ORDER`, each at least as wide as its title."""
        super().setModel(model)
        header = self.horizontalHeader()
        for place, key in enumerate(SHOWN_ORDER):
            header.moveSection(header.visualIndex(COLUMN_KEYS.index(key)), place)
        for column in range(header.count()):
            header.resizeSection(column, max(header.sectionSize(column), header.sectionSizeHint(column)))

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        key = event.key()
        plain = not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and plain:
            self.deleteRequested.emit()
        elif key == Qt.Key.Key_F2:
            self.renameRequested.emit()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.openRequested.emit()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def fit_columns(self, max_width: int = 260) -> None:
        """Size the columns to their contents (headers included), none wider than ``max_width``."""
        self.resizeColumnsToContents()
        header = self.horizontalHeader()
        for column in range(header.count()):
            if header.sectionSize(column) > max_width:
                header.resizeSection(column, max_width)

