"""The Loss landscape panel: the loss around a checkpoint's trained weights, per loss.

Left: the checkpoint (the run selected in the window, or one picked), the losses (text in the
core's syntax, ``dice,bce,tversky:alpha=0.7``, kept in step with a checkable list of the loss
registry and validated as typed), grid and batch settings, Compute / Cancel with progress, and a
slider over the slices training stored every N epochs. Right: the landscape per loss
(:mod:`~app.ui.landscape_plots`) and loss versus prediction (:mod:`~app.ui.landscape_prediction_view`).
Torch work runs in background jobs (:mod:`~app.ui.landscape_jobs`); results are saved as ``.npz``
+ ``.png`` like ``segstudio landscape`` and open again; dialogs go through ``ask_*`` methods.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QProgressBar,
                               QPushButton, QScrollArea, QSpinBox, QSplitter, QTabWidget, QVBoxLayout,
                               QWidget)

from app.core.landscape.result import list_snapshots
from app.core.losses import LOSSES

from .file_dialogs import ask_save_file
from .landscape_jobs import (DEFAULT_IMAGES, DEFAULT_SPAN, DEFAULT_STEPS, STEP_LIMITS, LandscapeSettings,
                             check_loss_spec, checkpoint_label, compute_landscape, default_save_path, load_result,
                             load_results, loss_items, loss_names, png_path, run_folder_of, save_result,
                             weight_map_losses)
from .landscape_plots import LandscapePlots, SnapshotSlider, describe_result
from .landscape_prediction_view import PredictionView
from .state import ExperimentState
from .styles import banner_style
from .tasks import TaskRunner

VIEWS = ("result", "snapshots")  # what the landscape tab shows


def _spin(low: int, high: int, value: int, tip: str, special: str = "") -> QSpinBox:
    return QSpinBox(minimum=low, maximum=high, value=value, toolTip=tip, specialValueText=special)


def _button(text: str, tip: str) -> QPushButton:
    return QPushButton(text, toolTip=tip)


def _label(text: str = "") -> QLabel:
    return QLabel(text, wordWrap=True)


class LandscapePanel(QWidget):
    """Compute, view, save and open loss landscapes; step through a run's stored snapshots."""

    title = "Loss landscape"

    computed = Signal(object)  # a LandscapeResult, once computed
    resultShown = Signal(str)  # what is shown: "computed", "opened" or "snapshot"
    failed = Signal(str)  # an error shown in the banner
    cancelled = Signal()  # a computation was cancelled and has stopped
    snapshotsLoaded = Signal(int)  # how many stored snapshots were read
    saved = Signal(str, str)  # npz, png

    def __init__(self, state: ExperimentState, parent=None):
        super().__init__(parent)
        self.state = state
        self.checkpoint: Path | None = None
        self.run_dir: Path | None = None  # where the snapshots are read from
        self.result, self.result_source, self._result_path = None, "", None  # LandscapeResult, "computed"/"opened"
        self._shown, self._cancelling, self._started, self._closed, self._snapshots_token = None, False, 0.0, False, 0
        self._compute_runner = TaskRunner("landscape", self)
        self._snapshot_runner = TaskRunner("landscape-snapshots", self)
        self._file_runner = TaskRunner("landscape-open", self)
        self._save_runner = TaskRunner("landscape-save", self)
        self._build()
        self._connect()
        self._on_loss_text(self.loss_edit.text())
        self._on_run_changed()
        self._redraw()

    # -- hooks (dialogs; tests replace them) ---------------------------------------------------
    def ask_checkpoint_path(self) -> str | None:
        start = str(self.checkpoint.parent) if self.checkpoint else ""
        path, _ = QFileDialog.getOpenFileName(self, "Checkpoint for the landscape", start,
                                              "Checkpoints (*.pt);;All files (*)")
        return path or None

    def ask_result_path(self) -> str | None:
        start = str(default_save_path(self.checkpoint).parent)
        path, _ = QFileDialog.getOpenFileName(self, "Open loss landscape", start, "Loss landscapes (*.npz)")
        return path or None

    def ask_save_path(self, default: Path) -> str | None:
        return ask_save_file(self, "Save loss landscape (.npz and .png)", default, "Loss landscapes (*.npz)", "npz",
                             companions=lambda npz: [png_path(npz)])

    def ask_data_folder(self) -> str | None:
        return QFileDialog.getExistingDirectory(self, "Validation images for the landscape") or None

    # -- widgets -------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.checkpoint_label = QLabel()
        self.checkpoint_label.setTextFormat(Qt.TextFormat.RichText)
        self.checkpoint_button = _button("Checkpoint…", "Use another checkpoint than the run selected in the window")
        self.open_button = _button("Open…", "Open a saved loss landscape (.npz)")
        self.save_button = _button("Save…", "Save the landscape shown as .npz (the arrays) and .png (the figure)")
        top.addWidget(self.checkpoint_label, 1)
        for button in (self.checkpoint_button, self.open_button, self.save_button):
            top.addWidget(button)
        layout.addLayout(top)
        self.banner = _label()
        self.banner.setObjectName("landscape_banner")
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        layout.addWidget(self.banner)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        side = QScrollArea(widgetResizable=True, horizontalScrollBarPolicy=Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side.setWidget(self._build_settings())
        side.setMinimumWidth(side.widget().minimumSizeHint().width() + side.verticalScrollBar().sizeHint().width() + 4)
        splitter.addWidget(side)
        self.tabs = QTabWidget()
        self.plots = LandscapePlots(self.palette())
        self.view_combo, self.source_label = self.plots.view_combo, self.plots.source_label
        self.prediction_view = PredictionView(self.palette())
        self.tabs.addTab(self.plots, "Landscape")
        self.tabs.addTab(self.prediction_view, "Loss vs prediction")
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([side.minimumWidth(), 1000])
        layout.addWidget(splitter, 1)

    def _build_settings(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 4, 0)
        losses = QGroupBox("Losses")
        form = QVBoxLayout(losses)
        self.loss_edit = QLineEdit()
        self.loss_edit.setToolTip("Comma-separated losses, parameters as name:key=value, e.g. "
                                  "dice,bce,tversky:alpha=0.7. Empty: the checkpoint's own loss.")
        self.loss_problem = _label()
        self.loss_list = QListWidget()
        for name in LOSSES.names():
            entry = LOSSES.get(name)
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            item.setToolTip(f"{entry.description}\n{entry.meta.get('formula', '')}")
            self.loss_list.addItem(item)
        self.loss_list.setMaximumHeight(self.loss_list.sizeHintForRow(0) * 5 + 2 * self.loss_list.frameWidth())
        for widget in (self.loss_edit, self.loss_problem, self.loss_list):
            form.addWidget(widget)
        column.addWidget(losses)
        grid = QGroupBox("Grid and batch")
        fields = QFormLayout(grid)
        self.dims_combo = QComboBox()
        for text, dims in (("2-D: d₁ × d₂", 2), ("1-D: d₁", 1)):
            self.dims_combo.addItem(text, dims)
        self.steps_spin = _spin(*STEP_LIMITS, DEFAULT_STEPS, "Grid points per direction (an odd count puts the "
                                                             "trained weights on the grid)")
        self.span_spin = QDoubleSpinBox(minimum=0.01, maximum=100.0, singleStep=0.25, value=DEFAULT_SPAN)
        self.span_spin.setToolTip("The grid runs from −span to +span times each filter-normalised direction")
        self.points_label = _label()
        self.images_spin = _spin(1, 256, DEFAULT_IMAGES, "Validation images in the fixed batch")
        self.patch_spin = _spin(0, 8192, 0, "Centre crop side in pixels (experiment's: its training patch size)",
                                "experiment's")
        self.patch_spin.setSuffix(" px")
        self.whole_check = QCheckBox("whole")
        self.whole_check.setToolTip("Evaluate whole images (cropped to the smallest common size)")
        self.batch_spin = _spin(0, 1024, 0, "Images per forward pass (auto: all at once on a GPU, about one "
                                            "256×256 image per pass on the CPU)", "auto")
        self.seed_spin = _spin(0, 2**31 - 1, 0, "Seed of the random directions and of the image choice")
        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("the checkpoint's experiment data")
        self.data_button = _button("…", "Choose the folder of images and masks to evaluate on")
        self.data_button.setMaximumWidth(32)
        data_row, patch_row = QHBoxLayout(), QHBoxLayout()
        data_row.addWidget(self.data_edit, 1)
        data_row.addWidget(self.data_button)
        patch_row.addWidget(self.patch_spin, 1)
        patch_row.addWidget(self.whole_check)
        for label, widget in (("Directions", self.dims_combo), ("Steps", self.steps_spin), ("Span", self.span_spin),
                              ("", self.points_label), ("Images", self.images_spin), ("Patch", patch_row),
                              ("Batch size", self.batch_spin), ("Seed", self.seed_spin), ("Data", data_row)):
            fields.addRow(label, widget)
        column.addWidget(grid)
        buttons = QHBoxLayout()
        self.compute_button = _button("Compute", "Evaluate every loss at each grid point in the background")
        self.cancel_button = _button("Cancel", "Stop the computation (nothing is kept)")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.compute_button, 1)
        buttons.addWidget(self.cancel_button)
        column.addLayout(buttons)
        self.progress = QProgressBar(minimum=0, maximum=1, value=0, format="%v / %m points", visible=False)
        self.status_label = _label()
        self.snapshot_box = SnapshotSlider()
        for widget in (self.progress, self.status_label, self.snapshot_box):
            column.addWidget(widget)
        column.addStretch(1)
        return box

    def _connect(self) -> None:
        self.state.runChanged.connect(self._on_run_changed)
        self.state.trainingChanged.connect(lambda on: on or self.set_checkpoint(self.checkpoint, self.run_dir))
        self.state.configChanged.connect(self._on_config_changed)
        self.loss_edit.textChanged.connect(self._on_loss_text)
        self.loss_list.itemChanged.connect(self._on_loss_checked)
        self.steps_spin.valueChanged.connect(self._update_points)
        self.dims_combo.currentIndexChanged.connect(self._update_points)
        self.whole_check.toggled.connect(lambda whole: self.patch_spin.setEnabled(not whole))
        self.data_button.clicked.connect(self._choose_data)
        self.checkpoint_button.clicked.connect(self._choose_checkpoint)
        self.open_button.clicked.connect(lambda: self.open_result())
        self.save_button.clicked.connect(lambda: self.save())
        self.compute_button.clicked.connect(self.compute)
        self.cancel_button.clicked.connect(self.cancel)
        self._compute_runner.busyChanged.connect(self._on_busy)
        self.snapshot_box.chosen.connect(self.show_snapshot)
        self.snapshot_box.same_scale_check.toggled.connect(lambda _on: self._redraw())
        self.snapshot_box.refresh_button.clicked.connect(self.refresh_snapshots)
        self.view_combo.currentIndexChanged.connect(lambda _i: self._redraw())
        self._update_points()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "plots"):
            self.plots.apply_palette(self.palette())
            self.prediction_view.apply_palette(self.palette())
            self._redraw()
        super().changeEvent(event)

    # -- public API ----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._compute_runner.busy

    @property
    def shown_result(self):
        """The LandscapeResult on screen (computed, opened or a snapshot), or None."""
        return self._shown

    def settings(self) -> LandscapeSettings | None:
        """The computation the controls describe (None without a checkpoint)."""
        if self.checkpoint is None:
            return None
        patch = 0 if self.whole_check.isChecked() else (self.patch_spin.value() or None)
        data = self.data_edit.text().strip()
        return LandscapeSettings(self.checkpoint, self.loss_edit.text().strip(), int(self.dims_combo.currentData()),
                                 self.steps_spin.value(), self.span_spin.value(), self.images_spin.value(), patch,
                                 self.seed_spin.value(), self.batch_spin.value() or None,
                                 Path(data) if data else None, self.state.config.training.device)

    def set_losses(self, text: str) -> None:  # e.g. "dice,bce,tversky:alpha=0.7"
        self.loss_edit.setText(text)

    def set_checkpoint(self, path, run_dir=None) -> None:
        """Compute around ``path``'s weights; snapshots come from ``run_dir`` (default: the
        checkpoint's run folder)."""
        self.checkpoint = Path(path) if path else None
        self.run_dir = Path(run_dir) if run_dir else run_folder_of(self.checkpoint)
        if self.checkpoint is None:
            self.checkpoint_label.setText("No checkpoint: select a run in the window or pick one with Checkpoint…")
        else:
            missing = "" if self.checkpoint.is_file() else " <i>(not written yet)</i>"
            self.checkpoint_label.setText(f"Checkpoint <b>{html.escape(self.checkpoint.name)}</b> "
                                          f"({html.escape(str(self.checkpoint.parent))}){missing}")
        self.checkpoint_label.setToolTip(str(self.checkpoint or ""))
        self._update_buttons()
        self.refresh_snapshots()

    def compute(self) -> bool:
        """Start computing the landscape the controls describe; False (with a message) if it cannot."""
        settings = self.settings()
        problem = "Choose a checkpoint first: select a run or use Checkpoint…" if settings is None \
            else settings.problem()
        if problem:
            self._show_banner(problem, "error")
        if problem or self._closed:
            return False
        self.banner.hide()
        self._cancelling, self._started = False, time.monotonic()
        self.progress.setRange(0, settings.points)
        self.progress.setValue(0)
        self.progress.show()
        self.status_label.setText(f"Loading {settings.checkpoint.name} and the validation images…")
        needing = weight_map_losses(settings.losses)
        if needing:
            self._show_banner(f"{', '.join(needing)} needs the U-Net border weight map: it is computed from the "
                              f"batch's masks with the experiment's w0 and σ.", "info")
        return self._compute_runner.start(lambda ctx: compute_landscape(settings, ctx),
                                          lambda result: self._on_computed(result, settings.checkpoint),
                                          self._on_compute_failed, self._on_progress) is not None

    def cancel(self) -> None:
        """Stop the running computation; ``cancelled`` fires once it has stopped."""
        if self._compute_runner.busy:
            self._cancelling = True
            self.status_label.setText("Cancelling…")
            self._compute_runner.cancel()

    def open_result(self, path=None) -> None:
        """Read a saved landscape (.npz) in the background and show it."""
        if not (path := path or self.ask_result_path()):
            return
        path = Path(path)
        self._file_runner.start(lambda ctx: load_result(path), lambda result: self._show_new(result, "opened", path),
                                lambda message: self._show_banner(f"Could not open {path.name}: {message}"))

    def save(self, path=None) -> None:
        """Write the landscape shown as ``path`` (.npz) and its figure beside it (.png)."""
        result = self._shown
        if result is None:
            return self._show_banner("Nothing to save: compute a landscape or open one first.", "warning")
        computed = result is self.result and self.result_source == "computed"  # maybe around another run's weights
        source = self._result_path if computed and Path(self._result_path or "").is_file() else self.checkpoint
        path = path or self.ask_save_path(default_save_path(source, result.meta.get("epoch")))
        if path:
            self._save_runner.start(lambda ctx: save_result(result, Path(path)), self._on_saved,
                                    lambda message: self._show_banner(f"Could not save the landscape: {message}"))

    def refresh_snapshots(self) -> None:
        """Read the slices the run folder holds (``landscapes/epoch_XXX.npz``) in the background."""
        token = self._snapshots_token = self._snapshots_token + 1  # a read still running is stale: dropped
        found = list_snapshots(self.run_dir) if self.run_dir is not None else []
        if not found:
            return self._on_snapshots_read([])
        self.snapshot_box.epoch_label.setText(f"Reading {len(found)} stored slice{'s' * (len(found) > 1)}…")
        self._snapshot_runner.start(lambda ctx: load_results(found, ctx),
                                    lambda loaded: token == self._snapshots_token and self._on_snapshots_read(loaded),
                                    lambda message: token == self._snapshots_token and self._show_banner(
                                        f"Could not read the stored slices: {message}"))

    @property
    def snapshots(self) -> list[tuple[int, object]]:
        """The run's stored slices ``(epoch, LandscapeResult)`` in epoch order."""
        return self.snapshot_box.snapshots

    def show_snapshot(self, index: int) -> None:
        """Show the ``index``-th stored slice (in epoch order)."""
        slider = self.snapshot_box.slider
        if not 0 <= index < len(self.snapshots):
            return
        if slider.value() != index:
            slider.setValue(index)  # comes back here
        else:
            self.snapshot_box.show_index(index)
            self._set_view("snapshots")

    def shutdown(self) -> None:
        """Cancel and wait for every background job and start no new one; safe to call twice."""
        self._closed = True
        self.prediction_view.shutdown()
        for runner in (self._compute_runner, self._snapshot_runner, self._file_runner, self._save_runner):
            runner.shutdown()

    # -- losses --------------------------------------------------------------------------------
    def _on_loss_text(self, text: str) -> None:
        items, problem = check_loss_spec(text)
        own = self.state.config.loss.name
        self.loss_problem.setText(problem or ("" if items else f"Empty: the checkpoint's own loss ({own} in this "
                                                               f"experiment)."))
        self.loss_problem.setStyleSheet(banner_style("error", "QLabel") if problem else "")
        self.loss_problem.setVisible(bool(self.loss_problem.text()))
        names = loss_names(text)
        self.loss_list.blockSignals(True)
        for row in range(self.loss_list.count()):
            entry = self.loss_list.item(row)
            entry.setCheckState(Qt.CheckState.Checked if entry.text() in names else Qt.CheckState.Unchecked)
        self.loss_list.blockSignals(False)
        self._update_buttons()
        if problem is None and not self._closed:
            try:
                self.prediction_view.request(text.strip(), self.state.snapshot())
            except ValueError as exc:
                self.prediction_view.show_message(f"The experiment has an invalid setting: {exc}")

    def _on_loss_checked(self, entry: QListWidgetItem) -> None:
        name, items = entry.text(), loss_items(self.loss_edit.text())
        if entry.checkState() == Qt.CheckState.Checked:
            items.append(name)
        else:
            items = [item for item in items if item.split(":")[0].strip() != name]
        self.loss_edit.setText(",".join(items))

    def _on_config_changed(self, section: str, _source) -> None:
        if section in ("loss", "all") and not self.loss_edit.text().strip():
            self._on_loss_text("")

    # -- computation ---------------------------------------------------------------------------
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        if not self._cancelling:
            left = (time.monotonic() - self._started) / max(1, done) * (total - done)
            self.status_label.setText(f"Computing: {done} of {total} points, about {left:.0f} s left.")

    def _on_computed(self, result, checkpoint: Path) -> None:
        points = int(np.prod([len(a) for a in result.axes]))
        self.status_label.setText(f"Computed {points} points in {result.meta.get('seconds', 0.0):.1f} s.")
        if self.banner.property("kind") != "info":
            self.banner.hide()
        self._show_new(result, "computed", checkpoint)
        self.computed.emit(result)

    def _on_compute_failed(self, message: str) -> None:
        self.status_label.setText("Not computed.")
        self._show_banner(message)

    def _on_busy(self, busy: bool) -> None:
        self._update_buttons()
        if not busy and self._cancelling:
            self._cancelling = False
            self.status_label.setText("Cancelled.")
            self._show_banner(f"Cancelled after {self.progress.value()} of {self.progress.maximum()} points; "
                              f"nothing was kept.", "warning")
            self.cancelled.emit()

    def _update_buttons(self) -> None:
        busy = self._compute_runner.busy
        valid = check_loss_spec(self.loss_edit.text())[1] is None
        self.compute_button.setEnabled(not busy and valid and self.checkpoint is not None)
        self.cancel_button.setEnabled(busy)

    def _update_points(self, *_args) -> None:
        steps, dims = self.steps_spin.value(), int(self.dims_combo.currentData())
        grid = f"{steps} × {steps} = {steps ** 2}" if dims == 2 else str(steps)
        self.points_label.setText(f"{grid} points, one pass of the batch each")

    # -- results and snapshots -----------------------------------------------------------------
    def _show_new(self, result, source: str, path: Path | None) -> None:
        self.result, self.result_source, self._result_path = result, source, path
        self._set_view("result")

    def _set_view(self, view: str) -> None:
        if self.view_combo.currentData() != view:
            self.view_combo.setCurrentIndex(VIEWS.index(view))  # redraws
        else:
            self._redraw()

    def _redraw(self) -> None:
        view = self.view_combo.currentData()
        if view == "snapshots" and self.snapshots:
            epoch, result = self.snapshot_box.current()
            self._shown = result
            self.plots.show_result(result, self.snapshot_box.pooled())
            self.source_label.setText(f"Slice stored at epoch {epoch}: {describe_result(result)}")
            self.resultShown.emit("snapshot")
        elif view == "result" and self.result is not None:
            self._shown = self.result
            self.plots.show_result(self.result)
            origin = "Computed around" if self.result_source == "computed" else "Opened"
            self.source_label.setText(f"{origin} {checkpoint_label(self._result_path)}: {describe_result(self.result)}")
            self.resultShown.emit(self.result_source)
        else:
            self._shown = None
            self.plots.clear()
            self.source_label.setText("No stored slices in this run." if view == "snapshots" else
                                      "Nothing computed yet.")
        self.save_button.setEnabled(self._shown is not None)

    def _on_snapshots_read(self, loaded: list) -> None:
        good = [(epoch, result) for epoch, result, _ in loaded if result is not None]
        bad = [problem for _, result, problem in loaded if result is None]
        self.snapshot_box.set_snapshots(good, str(self.run_dir) if self.run_dir else "the selected run")
        if bad:
            self._show_banner(f"{len(bad)} stored slice{'s' * (len(bad) > 1)} could not be read: {bad[0]}", "warning")
        if (good and self.result is None) or self.view_combo.currentData() == "snapshots":
            self._set_view("snapshots")
        self.snapshotsLoaded.emit(len(good))

    def _on_saved(self, paths) -> None:
        npz, png = paths
        self.status_label.setText(f"Saved {npz.name} and {png.name} in {npz.parent}.")
        self.saved.emit(str(npz), str(png))

    # -- choosers and messages -----------------------------------------------------------------
    def _on_run_changed(self) -> None:
        self.set_checkpoint(self.state.checkpoint, self.state.run_dir)

    def _choose_checkpoint(self) -> None:
        if path := self.ask_checkpoint_path():
            self.set_checkpoint(path)

    def _choose_data(self) -> None:
        if folder := self.ask_data_folder():
            self.data_edit.setText(folder)

    def _show_banner(self, message: str, kind: str = "error") -> None:
        self.banner.setText(message)
        self.banner.setStyleSheet(banner_style(kind, "QLabel"))
        self.banner.setProperty("kind", kind)
        self.banner.show()
        if kind == "error":
            self.failed.emit(message)
