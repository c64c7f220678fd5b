"""The dataset browser's table of samples (thumbnail, name, size, editable split, foreground)
with its filter and split editor, and the statistics text shown beside it."""

from __future__ import annotations

import html

import cv2
import numpy as np

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QComboBox, QStyledItemDelegate, QTableView

from app.core.pairing import SPLITS

from .render import class_colour, composite, mask_overlay, thumbnail, to_display
from .sample_view import to_qimage

THUMB_SIZE = 64


def sample_thumbnail(sample, size: int = THUMB_SIZE) -> QPixmap:
    """The sample's image with its mask filled in, shrunk to ``size`` pixels (the mask is laid
    over the shrunk image: about 1 ms, drawn on the GUI thread as rows scroll into view)."""
    step = max(1, max(sample.shape) // (4 * size))  # subsample big images first: cheap and plenty
    image, mask = sample.image[::step, ::step], sample.mask[::step, ::step]
    small = thumbnail(to_display(image), size)
    h, w = small.shape[:2]
    small_mask = cv2.resize(np.ascontiguousarray(mask), (w, h), interpolation=cv2.INTER_NEAREST)
    return QPixmap.fromImage(to_qimage(composite(small, mask_overlay(small_mask, 0.45, "fill"))))


def _size_text(height: int, width: int) -> str:
    return f"{width}×{height}"


def _numbers(values) -> str:
    return ", ".join(f"{v:.4g}" for v in values) or "–"


def _class_balance_html(fractions) -> str:
    lines = []
    for index, fraction in enumerate(fractions):
        swatch = ('<span style="color:rgb(%d, %d, %d)">■</span>' % class_colour(index)) if index else "□"
        lines.append(f"{swatch} class {index}: {100 * fraction:.1f} %")
    return "<br>".join(lines) or "–"


def stats_html(dataset, stats) -> str:
    """The statistics box: layout, counts per split, classes and balance, sizes, normalisation."""
    counts = dataset.split_counts()
    esc = html.escape
    rows = [
        ("Layout", esc(dataset.layout)),
        ("Root folder", esc(str(dataset.root))),
        ("Samples", f"{len(dataset.samples)} — " + ", ".join(f"{counts[s]} {s}" for s in SPLITS)),
        ("Classes", f"{dataset.num_classes} — {esc(stats.label_mapping)}"),
        ("Class balance", _class_balance_html(stats.class_fractions)),
    ]
    if stats.count:
        low, high = _size_text(*stats.min_size), _size_text(*stats.max_size)
        rows.append(("Size range", low if low == high else f"{low} … {high}"))
    rows += [
        ("Channels", ", ".join(map(str, stats.channels)) or "–"),
        ("Data types", esc(", ".join(stats.dtypes)) or "–"),
    ]
    if not stats.float_data:  # float images have no full range to scale by: their file units say it all
        rows.append(("Normalisation", f"mean {_numbers(stats.normalised_mean)}, std "
                                      f"{_numbers(stats.normalised_std)} (scaled to 0–1; training split)"))
    rows += [
        ("Intensity", f"mean {_numbers(stats.intensity_mean)}, std {_numbers(stats.intensity_std)} (file units)"),
    ]
    body = "".join(f"<tr><td valign='top'><b>{key}</b>&nbsp;&nbsp;</td><td>{value}</td></tr>" for key, value in rows)
    return f"<table cellspacing='2'>{body}</table>"


# -- the sample table --------------------------------------------------------------------------
class SampleTableModel(QAbstractTableModel):
    """One row per sample: thumbnail, name, size, split (editable), foreground fraction."""

    THUMB, NAME, SIZE, SPLIT, FOREGROUND = range(5)
    HEADERS = ("", "Name", "Size", "Split", "Foreground")
    NAME_ROLE = Qt.ItemDataRole.UserRole + 1

    splitEdited = Signal(str, str)  # sample name, new split

    def __init__(self, parent=None):
        super().__init__(parent)
        self._samples: list = []
        self._rows: dict[str, int] = {}
        self._fractions: dict[str, float] = {}
        self._thumbs: dict[str, QPixmap] = {}
        self._loaded: list = []  # the samples in the dataset's order (ties keep it when sorting)
        self._sort_by: tuple[int, Qt.SortOrder] | None = None
        self.editable = True

    # -- content -----------------------------------------------------------------------------
    def set_dataset(self, dataset) -> None:
        self.beginResetModel()
        self._loaded = list(dataset.samples) if dataset is not None else []
        self._fractions = {}  # first: the new samples are not sorted by the old ones' values
        self._thumbs = {}
        self._samples = self._sorted()
        self._rows = {s.name: i for i, s in enumerate(self._samples)}
        self.endResetModel()

    def set_fractions(self, fractions: dict[str, float]) -> None:
        self._fractions = dict(fractions)
        self._column_changed(self.FOREGROUND)
        self._resort(self.FOREGROUND)

    def refresh_splits(self) -> None:
        self._column_changed(self.SPLIT)
        self._resort(self.SPLIT)

    # -- sorting (here, not in the proxy: Qt's proxy calls data() twice per comparison, which
    # took 0.1–0.4 s for 1,000 samples; Python sorts the keys in about a millisecond) -----------
    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        self._sort_by = (column, order)
        self._reorder()

    def _resort(self, column: int) -> None:
        if self._sort_by is not None and self._sort_by[0] == column:
            self._reorder()

    def _sorted(self) -> list:
        if self._sort_by is None:
            return list(self._loaded)
        column, order = self._sort_by
        return sorted(self._loaded, key=lambda sample: self._sort_key(sample, column),
                      reverse=order == Qt.SortOrder.DescendingOrder)  # stable: ties keep the dataset's order

    def _reorder(self) -> None:
        ordered = self._sorted()
        if len(ordered) == len(self._samples) and all(a is b for a, b in zip(ordered, self._samples)):
            return  # (by identity: comparing samples would compare their pixels)
        self.layoutAboutToBeChanged.emit()
        kept = self.persistentIndexList()  # selection and current row follow their samples
        names = [self._samples[index.row()].name for index in kept]
        self._samples = ordered
        self._rows = {sample.name: row for row, sample in enumerate(ordered)}
        self.changePersistentIndexList(kept, [self.index(self._rows[name], index.column())
                                              for name, index in zip(names, kept)])
        self.layoutChanged.emit()

    def _column_changed(self, column: int) -> None:
        if self._samples:
            self.dataChanged.emit(self.index(0, column), self.index(len(self._samples) - 1, column))

    def sample(self, row: int):
        return self._samples[row]

    def row_of(self, name: str) -> int | None:
        return self._rows.get(name)

    def thumbnail_cached(self, name: str) -> bool:
        return name in self._thumbs

    # -- Qt model ----------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt naming
        return 0 if parent.isValid() else len(self._samples)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt naming
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 - Qt naming
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return ("Image with its mask", "Sample name", "Width × height in pixels",
                    "Split used for training/validation/testing (double-click to change)",
                    "Pixels not in class 0")[section]
        return None

    def flags(self, index):
        flags = super().flags(index)
        if index.isValid() and index.column() == self.SPLIT and self.editable:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        sample, column = self._samples[index.row()], index.column()
        if role == self.NAME_ROLE:
            return sample.name
        if role == Qt.ItemDataRole.DecorationRole and column == self.THUMB:
            return self._thumbnail(sample)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return self._display(sample, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{sample.name}\nimage: {sample.image_path}\nmask: {sample.mask_path}" + (
                f"\npage: {sample.page}" if sample.page is not None else "")
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (self.SIZE, self.FOREGROUND):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802 - Qt naming
        if not index.isValid() or index.column() != self.SPLIT or role != Qt.ItemDataRole.EditRole:
            return False
        if value not in SPLITS or not self.editable:
            return False
        sample = self._samples[index.row()]
        if sample.split != value:
            self.splitEdited.emit(sample.name, value)
        return True

    def _display(self, sample, column: int):
        if column == self.NAME:
            return sample.name
        if column == self.SIZE:
            return _size_text(*sample.shape)
        if column == self.SPLIT:
            return sample.split
        if column == self.FOREGROUND:
            fraction = self._fractions.get(sample.name)
            return "…" if fraction is None else f"{100 * fraction:.1f} %"
        return None

    def _sort_key(self, sample, column: int):
        if column == self.SIZE:
            return sample.shape[0] * sample.shape[1]
        if column == self.SPLIT:
            return SPLITS.index(sample.split) if sample.split in SPLITS else len(SPLITS)
        if column == self.FOREGROUND:
            return self._fractions.get(sample.name, -1.0)
        return sample.name.lower()

    def _thumbnail(self, sample) -> QPixmap:
        pixmap = self._thumbs.get(sample.name)
        if pixmap is None:
            pixmap = self._thumbs[sample.name] = sample_thumbnail(sample)
        return pixmap


class SampleFilterProxy(QSortFilterProxyModel):
    """Keeps rows whose name contains the filter text and whose split matches the split filter."""

    # Qt >= 6.10 wants filter changes bracketed by begin/endFilterChange(); older Qt invalidates.
    BRACKETED_FILTER_CHANGE = (hasattr(QSortFilterProxyModel, "beginFilterChange")
                               and hasattr(QSortFilterProxyModel, "endFilterChange")
                               and hasattr(QSortFilterProxyModel, "Direction"))

    def __init__(self, parent=None):
        super().__init__(parent)
        self._text = ""
        self._split = "all"

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """Sorting is the table model's (fast, see :meth:`SampleTableModel.sort`); the proxy
        keeps its order and only filters."""
        source = self.sourceModel()
        if source is not None:
            source.sort(column, order)

    def set_text(self, text: str) -> None:
        self._change(text.strip().lower(), self._split)

    def set_split(self, split: str) -> None:
        self._change(self._text, split)

    def _change(self, text: str, split: str) -> None:
        if not self.BRACKETED_FILTER_CHANGE:
            self._text, self._split = text, split
            getattr(self, "invalidateRowsFilter", self.invalidateFilter)()
            return
        self.beginFilterChange()
        self._text, self._split = text, split
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent) -> bool:  # noqa: N802 - Qt naming
        sample = self.sourceModel().sample(row)
        if self._text and self._text not in sample.name.lower():
            return False
        return self._split == "all" or sample.split == self._split


class SplitDelegate(QStyledItemDelegate):
    """A train/val/test combo box for the split column."""

    def createEditor(self, parent, option, index):  # noqa: N802 - Qt naming
        combo = QComboBox(parent)
        combo.addItems(SPLITS)
        combo.setToolTip("Move this sample to another split")
        combo.activated.connect(lambda _=0, c=combo: self._commit(c))
        return combo

    def setEditorData(self, editor, index) -> None:  # noqa: N802 - Qt naming
        editor.setCurrentText(index.data(Qt.ItemDataRole.EditRole))

    def setModelData(self, editor, model, index) -> None:  # noqa: N802 - Qt naming
        model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)

    def _commit(self, combo: QComboBox) -> None:
        self.commitData.emit(combo)
        self.closeEditor.emit(combo, QStyledItemDelegate.EndEditHint.NoHint)


class SampleTable(QTableView):
    """The sample table; the name column takes the width the other columns leave (at least 120 px)."""

    NAME_MIN_WIDTH = 120

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().resizeEvent(event)
        header = self.horizontalHeader()
        others = sum(header.sectionSize(c) for c in range(header.count()) if c != SampleTableModel.NAME)
        header.resizeSection(SampleTableModel.NAME, max(self.NAME_MIN_WIDTH, self.viewport().width() - others))
