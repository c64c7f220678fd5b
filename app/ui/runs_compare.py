"""The runs panel's per-image comparison: several runs' checkpoints scored image by image on
their shared validation images, worst first, with the image, its ground truth and every run's
prediction side by side.

Both jobs run in the background: the comparison itself (loads the checkpoints and predicts
every image, with progress and Cancel) and the drawing of the chosen image's views.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QFrame, QGridLayout, QHBoxLayout, QHeaderView,
                               QLabel, QProgressBar, QPushButton, QScrollArea, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from .image_view import ImageCanvas
from .render import error_overlay, mask_overlay, to_display
from .styles import banner_style
from .tasks import TaskRunner

OVERLAY_OPACITY = 0.45
MAX_VIEW_COLUMNS = 4  # side-by-side views per row; more runs wrap onto further rows
TRUTH_TITLE = "Ground truth"


@dataclass
class ComparedRun:
    """A run to compare: its folder, the name shown and whether it has a checkpoint."""

    path: Path
    name: str
    has_checkpoint: bool = True


def run_comparison(paths: list[Path], device: str, ctx):
    """The job: :func:`app.core.runs.compare_per_image` with predictions kept for the views."""
    from app.core.runs import compare_per_image

    return compare_per_image(paths, device=device, progress=ctx.progress, should_stop=lambda: ctx.cancelled,
                             keep_predictions=True)


def render_views(sample, predictions: list[np.ndarray], errors: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """The display image and one overlay per view (ground truth, then each run's prediction):
    filled classes, or with ``errors`` the false positives (red) and negatives (blue)."""
    image = to_display(sample.image)
    truth = mask_overlay(sample.mask, OVERLAY_OPACITY, "fill")
    if errors:
        layers = [error_overlay(labels, sample.mask, 0.7) for labels in predictions]
    else:
        layers = [mask_overlay(labels, OVERLAY_OPACITY, "fill") for labels in predictions]
    return image, [truth] + layers


class RunsCompareView(QWidget):
    """Compare the chosen runs (:meth:`set_candidates`) with :meth:`compare`; ``finished``
    fires once a comparison is shown, ``rendered(image)`` once an image's views are drawn."""

    finished = Signal()
    failed = Signal(str)
    rendered = Signal(str)

    def __init__(self, device: str = "auto", parent=None):
        super().__init__(parent)
        self.device = device
        self.candidates: list[ComparedRun] = []
        self.result = None  # the shown PerImageComparison
        self.names: list[str] = []  # the run names of the result's columns
        self.canvases: list[ImageCanvas] = []
        self._render_token = 0
        self._runner = TaskRunner("compare-runs", self)
        self._render_runner = TaskRunner("compare-views", self)
        self._build()
        self._show_idle()

    def _build(self) -> None:
        self.compare_button = QPushButton("Compare per image")
        self.compare_button.setObjectName("runs_compare_button")
        self.compare_button.setToolTip("Predict the shared validation images with each selected run's best "
                                       "checkpoint and list the images worst first (by mean Dice)")
        self.cancel_button = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.errors_check = QCheckBox("Show errors")
        self.errors_check.setToolTip("Colour the predictions' false positives red and false negatives blue")
        self.status_label = QLabel()
        self.status_label.setObjectName("runs_compare_status")
        self.banner = QLabel()
        self.banner.setObjectName("runs_compare_banner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()

        self.table = QTableWidget(0, 0)
        self.table.setObjectName("runs_compare_table")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumWidth(200)
        self.views = QWidget()
        self.views_layout = QGridLayout(self.views)
        self.views_layout.setContentsMargins(0, 0, 0, 0)
        self.views_layout.setSpacing(4)
        self.views_scroll = QScrollArea()  # many runs: the views scroll instead of stretching the window
        self.views_scroll.setWidgetResizable(True)
        self.views_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.views_scroll.setWidget(self.views)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(self.views_scroll)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([260, 700])
        self.splitter = splitter

        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        for widget in (self.compare_button, self.progress, self.cancel_button, self.errors_check):
            controls.addWidget(widget)
        controls.addWidget(self.status_label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)

        self.compare_button.clicked.connect(self.compare)
        self.cancel_button.clicked.connect(self.cancel)
        self.errors_check.toggled.connect(lambda _on: self._render_current())
        self.table.itemSelectionChanged.connect(self._render_current)

    # -- the runs to compare ---------------------------------------------------------------------
    def set_candidates(self, runs: list[ComparedRun]) -> None:
        """The runs the next comparison will use (the panel's selection)."""
        self.candidates = list(runs)
        if not self.busy:
            self._show_idle()

    @property
    def busy(self) -> bool:
        return self._runner.busy

    def _show_controls(self) -> None:
        """The controls of no running comparison (the status line is left as it is)."""
        self.progress.hide()
        self.cancel_button.hide()
        self.compare_button.setEnabled(bool(self.candidates))

    def _show_idle(self) -> None:
        self._show_controls()
        count = len(self.candidates)
        if self.result is None:
            self.status_label.setText("Select runs in the table, then compare them image by image" if not count
                                      else f"{count} run{'s' if count > 1 else ''} selected")

    def show_message(self, text: str, kind: str = "error") -> None:
        self.banner.setText(text)
        self.banner.setStyleSheet(banner_style(kind, "QLabel"))
        self.banner.setVisible(bool(text))

    # -- the comparison --------------------------------------------------------------------------
    def compare(self) -> bool:
        """Start comparing the candidates; False (with a message) when they cannot be compared."""
        runs = list(self.candidates)
        if not runs:
            self.show_message("Select at least one run to compare.")
            return False
        bare = [run.name for run in runs if not run.has_checkpoint]
        if bare:
            self.show_message(f"Cannot compare: no checkpoint (checkpoints/best.pt or last.pt) in {', '.join(bare)}. "
                              "Deselect it, or train it until it saves one.")
            return False
        self.banner.hide()
        paths, device = [run.path for run in runs], self.device
        names = [run.name for run in runs]
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.compare_button.setEnabled(False)
        self.status_label.setText(f"Loading {len(runs)} checkpoint{'s' if len(runs) > 1 else ''}…")
        task = self._runner.start(lambda ctx: run_comparison(paths, device, ctx),
                                  lambda result: self._on_done(result, names), self._on_failed, self._on_progress)
        if task is not None:
            task.ended.connect(lambda _task: self._show_controls() if not self._runner.busy else None)
        return task is not None

    def cancel(self) -> None:
        if self.busy:
            self._runner.cancel()
            self.status_label.setText("Comparison cancelled")

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status_label.setText(f"Predicting {done}/{total}…")

    def _on_failed(self, message: str) -> None:
        self.status_label.setText("Comparison failed")
        self.show_message(f"Cannot compare these runs: {message}")
        self.failed.emit(message)

    def _on_done(self, result, names: list[str]) -> None:
        self.result, self.names = result, names
        self._fill_table()
        self._build_canvases()
        worst = f"worst: {result.images[0]} (mean Dice {result.mean_dice[0]:.3f})" if result.images else ""
        self.status_label.setText(f"{len(result.images)} shared {result.split} image"
                                  f"{'s' if len(result.images) != 1 else ''}, worst first; {worst}")
        if result.problems:
            self.show_message("\n".join(result.problems), "warning")
        if result.images:
            self.table.selectRow(0)
        self.finished.emit()

    def _fill_table(self) -> None:
        result = self.result
        self.table.clearContents()
        self.table.setColumnCount(2 + len(self.names))
        self.table.setHorizontalHeaderLabels(["Image", "Mean Dice"] + list(self.names))
        for j, name in enumerate(self.names):
            self.table.horizontalHeaderItem(2 + j).setToolTip(f"Dice of {name} on each image")
        self.table.setRowCount(len(result.images))
        for i, image in enumerate(result.images):
            cells = [image, f"{result.mean_dice[i]:.3f}"] + [f"{result.dice[i, j]:.3f}" for j in range(len(self.names))]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column >= 2:
                    item.setToolTip(f"{self.names[column - 2]}: Dice {result.dice[i, column - 2]:.4f}, "
                                    f"IoU {result.iou[i, column - 2]:.4f}, "
                                    f"pixel accuracy {result.pixel_accuracy[i, column - 2]:.4f}")
                self.table.setItem(i, column, item)
        self.table.resizeColumnsToContents()
        wanted = self.table.horizontalHeader().length() + self.table.verticalScrollBar().sizeHint().width() + 6
        total = sum(self.splitter.sizes()) or self.width()
        table_width = min(wanted, total // 2)
        self.splitter.setSizes([table_width, max(1, total - table_width)])

    def rows(self) -> list[list[str]]:
        """The table's text, row by row (for tests and quick checks)."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    # -- the side-by-side views ------------------------------------------------------------------
    def _build_canvases(self) -> None:
        for canvas in self.canvases:
            self.views_layout.removeWidget(canvas)
            canvas.deleteLater()
        titles = ["Image", TRUTH_TITLE] + list(self.names)
        self.canvases = [ImageCanvas(title) for title in titles]
        columns = min(MAX_VIEW_COLUMNS, len(titles))
        for index, canvas in enumerate(self.canvases):
            self.views_layout.addWidget(canvas, index // columns, index % columns)
            if index:
                canvas.link(self.canvases[0])

    def current_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return rows[0].row() if rows else None

    def select_image(self, name: str) -> None:
        self.table.selectRow(self.result.images.index(name))

    def _render_current(self) -> None:
        row = self.current_row()
        if self.result is None or row is None or self.result.samples is None:
            return
        sample, predictions = self.result.samples[row], list(self.result.predictions[row])
        errors = self.errors_check.isChecked()
        self._render_token += 1
        token = self._render_token
        self._render_runner.start(lambda ctx: render_views(sample, predictions, errors),
                                  lambda views: self._show_views(token, row, views),
                                  lambda message: self.show_message(f"Cannot draw {sample.name}: {message}"))

    def _show_views(self, token: int, row: int, views) -> None:
        if token != self._render_token or self.result is None:
            return
        image, layers = views
        result = self.result
        self.canvases[0].set_title(f"Image {html.escape(result.images[row])}")
        self.canvases[0].set_image(image)
        for canvas, layer in zip(self.canvases[1:], layers):
            canvas.set_image(image)
            canvas.set_layer("overlay", layer)
        for j, name in enumerate(self.names):
            self.canvases[2 + j].set_title(f"{html.escape(name)} · Dice {result.dice[row, j]:.3f}")
        self.rendered.emit(result.images[row])

    def shutdown(self) -> None:
        self._runner.shutdown()
        self._render_runner.shutdown()
