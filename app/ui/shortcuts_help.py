"""Help ▸ Keyboard shortcuts: every key of every action, grouped by area, in a table that
scrolls (a message box listed only each action's first key, unaligned, taller than the screen)."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

# Keys held down rather than pressed, which no action carries.
HELD_KEYS = (("Review", "Space (hold)", "See the raw image without the mask"),)
GENERAL = "Window"


def shortcut_rows(actions: Iterable[QAction]) -> list[tuple[str, str, str]]:
    """``(area, keys, what)`` for every action with a shortcut, all its keys, sorted by area
    (the text before ``": "`` of an action's name, e.g. "Review"; else "Window") and name."""
    rows = set(HELD_KEYS)
    for action in actions:
        keys = ", ".join(key.toString(QKeySequence.SequenceFormat.NativeText) for key in action.shortcuts()
                         if not key.isEmpty())
        text = action.text().replace("&", "").rstrip("…").strip()
        if not keys or not text:
            continue
        area, separator, what = text.partition(": ")
        if not separator:
            area, what = GENERAL, text
        rows.add((area, keys, what[:1].upper() + what[1:]))
    return sorted(rows, key=lambda row: (row[0] != GENERAL, row[0], row[2].lower()))


class ShortcutsDialog(QDialog):
    """The rows of :func:`shortcut_rows` in a three-column table."""

    def __init__(self, rows: list[tuple[str, str, str]], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setHorizontalHeaderLabels(["Area", "Keys", "Action"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        for row, cells in enumerate(rows):
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(560, 480)  # the table scrolls; a small screen still shows the Close button
