"""Sub-widgets of the dataset browser: the dismissable error banner, the loading progress row
(label, bar, Cancel), the sample table pane (name/split filters, the table set up for browsing
and split editing, and the "Move selected to" row), and the tabs with
the dataset's statistics and the problems found while loading. They only show what the panel
gives them; the panel owns the shared state and the background work.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFrame, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QTabWidget, QTextBrowser, QToolButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from app.core.pairing import SPLITS

from .dataset_sources import shown_path
from .sample_table import THUMB_SIZE, SampleTable, SampleTableModel, SplitDelegate
from .styles import banner_style

BANNER_STYLE = banner_style("error", "#datasetErrorBanner")


class ErrorBanner(QFrame):
    """A red message strip with a selectable text (``label``) and a × button (``dismiss``) to hide it."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("datasetErrorBanner")
        self.setStyleSheet(BANNER_STYLE)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 4, 4)
        self.label = QLabel(self)
        self.label.setObjectName("datasetErrorLabel")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dismiss = QToolButton(self)
        self.dismiss.setText("×")
        self.dismiss.setAutoRaise(True)
        self.dismiss.setToolTip("Hide this message")
        self.dismiss.clicked.connect(self.hide)
        row.addWidget(self.label, 1)
        row.addWidget(self.dismiss, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str) -> None:
        """Show ``text`` (also as the tooltip, for long messages)."""
        self.label.setText(text)
        self.label.setToolTip(text)
        self.show()


class LoadProgressRow(QWidget):
    """What a load is doing (``label``), how far it got (``bar``) and a ``cancel_button``; hidden when idle."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.text = ""
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(self)
        self.label.setObjectName("datasetProgressLabel")
        self.bar = QProgressBar(self)
        self.bar.setObjectName("datasetProgress")
        self.bar.setToolTip("Files read so far")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("datasetCancel")
        self.cancel_button.setToolTip("Stop loading; the dataset shown now stays")
        row.addWidget(self.label)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        self.hide()

    def start(self, text: str) -> None:
        """A load has started: show ``text`` and a busy bar, Cancel enabled."""
        self.text = text
        self.label.setText(text)
        self.bar.setRange(0, 0)
        self.cancel_button.setEnabled(True)

    def set_progress(self, done: int, total: int) -> None:
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        self.label.setText(f"{self.text} {done}/{total}")

    def cancelling(self) -> None:
        self.label.setText("Cancelling…")
        self.cancel_button.setEnabled(False)


def build_sample_table(parent: QWidget, proxy) -> SampleTable:
    """The sample table over ``proxy``: thumbnails, sorting by name, row selection, split editing."""
    table = SampleTable(parent)
    table.setObjectName("datasetTable")
    table.setModel(proxy)
    table.setItemDelegateForColumn(SampleTableModel.SPLIT, SplitDelegate(table))
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                          | QAbstractItemView.EditTrigger.SelectedClicked
                          | QAbstractItemView.EditTrigger.EditKeyPressed)
    table.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
    table.setSortingEnabled(True)
    table.sortByColumn(SampleTableModel.NAME, Qt.SortOrder.AscendingOrder)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    table.setToolTip("The dataset's samples; select one to view it, double-click a split to change it")
    vertical = table.verticalHeader()
    vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    vertical.setDefaultSectionSize(THUMB_SIZE + 6)
    vertical.hide()
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    for column, width in ((SampleTableModel.THUMB, THUMB_SIZE + 8), (SampleTableModel.SIZE, 76),
                          (SampleTableModel.SPLIT, 60), (SampleTableModel.FOREGROUND, 84)):
        header.resizeSection(column, width)
    return table


class SampleTablePane(QWidget):
    """The filters (``filter_edit``, ``split_filter``) over the sample ``table`` on ``proxy``, and the
    ``move_button``/``move_combo`` row that moves the selected samples to another split."""

    def __init__(self, proxy, parent: QWidget | None = None):
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        filters = QHBoxLayout()
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setObjectName("datasetFilter")
        self.filter_edit.setPlaceholderText("Filter by name")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip("Show only samples whose name contains this text")
        self.split_filter = QComboBox(self)
        self.split_filter.setObjectName("datasetSplitFilter")
        self.split_filter.addItems(("all",) + SPLITS)
        self.split_filter.setToolTip("Show only the samples of one split")
        filters.addWidget(self.filter_edit, 1)
        filters.addWidget(self.split_filter)
        column.addLayout(filters)
        self.table = build_sample_table(self, proxy)
        column.addWidget(self.table, 1)
        column.addLayout(self._build_move_row())

    def _build_move_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.move_button = QPushButton("Move selected to:", self)
        self.move_button.setObjectName("datasetMoveButton")
        self.move_button.setToolTip("Move every selected sample to the split chosen beside (saved in the experiment)")
        self.move_button.setEnabled(False)
        self.move_combo = QComboBox(self)
        self.move_combo.setObjectName("datasetMoveSplit")
        self.move_combo.addItems(SPLITS)
        self.move_combo.setToolTip("The split the selected samples are moved to")
        row.addWidget(self.move_button)
        row.addWidget(self.move_combo)
        row.addStretch(1)
        return row


class DatasetInfoTabs(QTabWidget):
    """Two tabs: the dataset's statistics (``stats_view``) and the files left out (``problems_view``)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("datasetTabs")
        self.stats_view = QTextBrowser(self)
        self.stats_view.setObjectName("datasetStats")
        self.stats_view.setOpenLinks(False)
        self.stats_view.setToolTip("Statistics of the loaded dataset")
        self.problems_view = QTreeWidget(self)
        self.problems_view.setObjectName("datasetProblems")
        self.problems_view.setHeaderLabels(["File", "Reason"])
        self.problems_view.setRootIsDecorated(False)
        self.problems_view.setWordWrap(True)
        self.problems_view.setToolTip("Files that were left out when loading, and why")
        self.problems_view.header().resizeSection(0, 200)
        self.addTab(self.stats_view, "Statistics")
        self.addTab(self.problems_view, "Problems (0)")

    def show_problems(self, dataset) -> None:
        """List the dataset's problems (none for no dataset) and count them in the tab's title."""
        problems = list(dataset.problems) if dataset is not None else []
        self.problems_view.clear()
        root = dataset.root if dataset is not None else None
        for problem in problems:
            path = Path(problem.path)
            item = QTreeWidgetItem([shown_path(path, root), problem.reason])
            item.setToolTip(0, str(path))
            item.setToolTip(1, f"{path}\n{problem.reason}")
            self.problems_view.addTopLevelItem(item)
        index = self.indexOf(self.problems_view)
        self.setTabText(index, f"Problems ({len(problems)})")
        self.setTabToolTip(index, "Files left out when loading, and why" if problems else "No problems found")
