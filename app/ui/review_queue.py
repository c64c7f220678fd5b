"""The review queue: every case with its state and a thumbnail, a filter by state, and the
progress "k of N reviewed". Thumbnails are drawn in background batches."""

from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QProgressBar, QVBoxLayout, QWidget)

from app.core.imageio import read_image
from app.core.review import CASE_STATES, ReviewStore, state_label
from app.core.review.case_data import binary_mask, read_mask_checked, resolve

from .render import composite, mask_overlay, thumbnail, to_display
from .tasks import TaskRunner

THUMB = 56
BATCH = 12
STATE_COLOURS = {"unreviewed": "#7a7f85", "accepted": "#43a047", "rejected": "#e53935", "needs_edit": "#f5a623",
                 "corrected": "#4285f4"}
STATE_SYMBOLS = {"unreviewed": "○", "accepted": "✓", "rejected": "✗", "needs_edit": "✎", "corrected": "◆"}


def thumbnails_job(folder, cases):
    """Small overlays of ``cases`` (a list of copies), as (name, RGB) pairs; unreadable ones are skipped."""
    def job(ctx):
        out = []
        for case in cases:
            ctx.check()
            try:
                image = read_image(resolve(folder, case.image))
                path = case.corrected or case.mask
                mask = binary_mask(read_mask_checked(resolve(folder, path), image.shape[:2]))
            except Exception:  # noqa: BLE001 - a thumbnail that cannot be drawn stays blank; the view says why
                continue
            small = thumbnail(to_display(image), THUMB)
            small_mask = thumbnail(np.repeat(mask[:, :, None] * np.uint8(255), 3, axis=2), THUMB)[:, :, 0] > 127
            out.append((case.name, composite(small, mask_overlay(small_mask, 0.45, "fill", (255, 64, 64)))))
        return out
    return job


def _pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


class ReviewQueue(QWidget):
    """Lists the cases; ``activated(name)`` when the user picks one."""

    activated = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.store: ReviewStore | None = None
        self._thumbs = TaskRunner("review-thumbnails", self)
        self._pending: list = []
        self._items: dict[str, QListWidgetItem] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Show"))
        self.filter_combo = QComboBox()
        self.filter_combo.setObjectName("review_filter")
        self.filter_combo.addItem("All cases", "all")
        for state in CASE_STATES:
            self.filter_combo.addItem(state_label(state), state)
        self.filter_combo.addItem("Not yet decided", "open")
        self.filter_combo.setToolTip("Show only the cases in this state")
        self.filter_combo.currentIndexChanged.connect(self._apply_filter)
        row.addWidget(self.filter_combo, 1)
        layout.addLayout(row)
        self.progress_label = QLabel()
        self.progress_label.setObjectName("review_progress_label")
        self.progress_label.setWordWrap(True)  # one long line widened the queue and squeezed the image
        layout.addWidget(self.progress_label)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(6)
        layout.addWidget(self.progress_bar)
        self.list = QListWidget()
        self.list.setObjectName("review_queue")
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setUniformItemSizes(True)
        self.list.currentItemChanged.connect(self._picked)
        layout.addWidget(self.list, 1)

    # -- content -----------------------------------------------------------------------------
    def set_store(self, store: ReviewStore | None) -> None:
        self._thumbs.cancel()
        self.store = store
        self._items.clear()
        self.list.blockSignals(True)
        self.list.clear()
        if store is not None:
            blank = QPixmap(THUMB, THUMB)
            blank.fill(QColor("#303134"))
            for case in store.cases:
                item = QListWidgetItem(QIcon(blank), "")
                item.setData(Qt.ItemDataRole.UserRole, case.name)
                self.list.addItem(item)
                self._items[case.name] = item
                self.update_case(case.name, progress=False)
        self.list.blockSignals(False)
        self._apply_filter()
        self._update_progress()
        if store is not None:
            self._pending = list(store.cases)
            self._next_thumbnails()

    def update_case(self, name: str, progress: bool = True) -> None:
        """Refresh a case's line (state, reason, comment marker) and, unless told not to, the
        progress line (which counts every case)."""
        if self.store is None or name not in self._items:
            return
        case = self.store.case(name)
        item = self._items[name]
        detail = f" · {case.reason}" if case.state == "rejected" and case.reason else ""
        note = " · comment" if case.comment else ""  # plain text: an emoji may have no font
        item.setText(f"{STATE_SYMBOLS[case.state]} {name}\n{state_label(case.state)}{detail}{note}")
        item.setForeground(QBrush(QColor(STATE_COLOURS[case.state])) if case.state != "unreviewed" else QBrush())
        item.setToolTip(f"{name}: {state_label(case.state)}{detail}"
                        + (f"\nby {case.reviewer} at {case.decided_at}" if case.decided_at else "")
                        + (f"\n{case.comment}" if case.comment else ""))
        self._apply_filter_to(item, case.state)
        if progress:
            self._update_progress()

    def refresh_thumbnail(self, name: str) -> None:
        if self.store is not None and name in self._items:
            self._pending.insert(0, self.store.case(name))
            if not self._thumbs.busy:
                self._next_thumbnails()

    def _next_thumbnails(self) -> None:
        if not self._pending or self.store is None:
            return
        batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
        copies = [dataclasses.replace(c) for c in batch]
        store = self.store
        self._thumbs.start(thumbnails_job(store.folder, copies),
                           on_done=lambda result, s=store: self._got_thumbnails(s, result))

    def _got_thumbnails(self, store, result) -> None:
        if store is not self.store:
            return
        for name, rgb in result:
            if name in self._items:
                self._items[name].setIcon(QIcon(_pixmap(rgb)))
        self._next_thumbnails()

    # -- filter, selection, progress ---------------------------------------------------------
    @property
    def filter_state(self) -> str:
        return self.filter_combo.currentData()

    def set_filter(self, state: str) -> None:
        index = self.filter_combo.findData(state)
        if index < 0:
            raise ValueError(f"unknown filter {state!r}")
        self.filter_combo.setCurrentIndex(index)

    def _matches(self, state: str) -> bool:
        wanted = self.filter_state
        return wanted == "all" or state == wanted or (wanted == "open" and state in ("unreviewed", "needs_edit"))

    def _apply_filter_to(self, item: QListWidgetItem, state: str) -> None:
        hide = not self._matches(state)
        if item.isHidden() != hide and not (hide and item is self.list.currentItem()):
            item.setHidden(hide)  # the case on screen stays listed until the user moves on

    def _apply_filter(self) -> None:
        if self.store is None:
            return
        for name, item in self._items.items():
            item.setHidden(not self._matches(self.store.case(name).state))

    def visible_names(self) -> list[str]:
        """The cases the filter shows, in queue order (the case on screen included)."""
        current = self.list.currentItem()
        return [name for name, item in self._items.items() if not item.isHidden() or item is current]

    def select(self, name: str | None) -> None:
        item = self._items.get(name) if name else None
        if item is not None and item is not self.list.currentItem():
            self.list.blockSignals(True)
            self.list.setCurrentItem(item)
            self.list.blockSignals(False)
        if item is not None:
            self.list.scrollToItem(item)
        self._apply_filter()
        if item is not None and item.isHidden():
            item.setHidden(False)

    def _picked(self, item: QListWidgetItem | None, _previous=None) -> None:
        if item is not None:
            self.activated.emit(item.data(Qt.ItemDataRole.UserRole))

    def _update_progress(self) -> None:
        if self.store is None:
            self.progress_label.setText("No review open")
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            return
        total, done = len(self.store.cases), self.store.record.reviewed_count
        counts = self.store.record.counts()
        self.progress_label.setText(f"{done} of {total} reviewed · {counts['accepted']} accepted · "
                                    f"{counts['corrected']} corrected · {counts['rejected']} rejected · "
                                    f"{counts['needs_edit']} need edits")
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)

    def shutdown(self) -> None:
        self._thumbs.shutdown()
