"""The dataset browser: open a dataset, browse its samples, edit splits, see statistics and problems.

Loading runs in a background task (progress bar, Cancel); a failure is shown in a banner and
the previously loaded dataset stays. The sample table edits splits through the shared state,
so every panel sees the change; the large view shows the selected image with its mask.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QFrame, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QProgressBar, QPushButton, QSlider, QSplitter, QStyle, QTableView,
                               QTabWidget, QTextBrowser, QToolBar, QToolButton, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from app.core.experiment_data import load_experiment_data
from app.core.imageio import TIFF_SUFFIXES
from app.core.pairing import SPLITS, STACK_LABEL_WORDS, DatasetError
from app.core.paths import ensure_demo_dataset
from app.core.stats import dataset_stats

from .sample_table import THUMB_SIZE, SampleFilterProxy, SampleTable, SampleTableModel, SplitDelegate, stats_html
from .sample_view import OVERLAY_COLOURS, OVERLAY_MODES, MaskLayer, SampleCanvas, SampleView, ViewCache, sample_view
from .tasks import TaskRunner

# Below this many pixels in the whole dataset, statistics are computed at once on the GUI thread.
SYNC_STATS_PIXELS = 1_000_000
# Up to this many pixels a sample's display image and mask are prepared at once; larger ones off the GUI thread.
SYNC_VIEW_PIXELS = 1_000_000
PROBLEMS_IN_MESSAGE = 3
BANNER_STYLE = ("#datasetErrorBanner { background: rgba(220, 50, 50, 48); border: 1px solid rgba(220, 50, 50, 170);"
                " border-radius: 4px; }")


# -- helpers -----------------------------------------------------------------------------------
def looks_like_labels(path: Path) -> bool:
    """True when a file's name says it holds labels/masks (e.g. ``train-labels.tif``)."""
    words = set(re.split(r"[^a-z0-9]+", Path(path).stem.lower()))
    return bool(words & set(STACK_LABEL_WORDS))


def order_stack_pair(first: Path, second: Path) -> tuple[Path, Path]:
    """``(image_stack, label_stack)``: the one named like labels is the label stack, else as given."""
    if looks_like_labels(first) and not looks_like_labels(second):
        return second, first
    return first, second


def drop_source(paths: list[Path]) -> Path | tuple[Path, Path] | None:
    """What a drop of ``paths`` opens: a folder, a pair of TIFF stacks, or None (nothing usable)."""
    if len(paths) == 1 and paths[0].is_dir():
        return paths[0]
    if len(paths) == 2 and all(p.is_file() and p.suffix.lower() in TIFF_SUFFIXES for p in paths):
        return order_stack_pair(*paths)
    return None


def _same_path(a: str | Path | None, b: str | Path | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _norm(path: str | Path | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def shown_path(path: str | Path, root: str | Path | None) -> str:
    """``path`` relative to the dataset's ``root`` when inside it, else its file name."""
    path = Path(path)
    try:
        return str(path.relative_to(root)) if root is not None and path != Path(root) else path.name or str(path)
    except ValueError:
        return path.name or str(path)


def no_samples_message(target: str | Path, dataset, shown: int = PROBLEMS_IN_MESSAGE) -> str:
    """Why a dataset without one usable sample is not opened: the folder and its first problems."""
    problems = list(dataset.problems)
    parts = [f"{shown_path(p.path, dataset.root)}: {p.reason}" for p in problems[:shown]]
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    detail = f" — {'; '.join(parts)}{more}" if parts else ""
    return f"no usable samples in {target}{detail}"


def data_key(data) -> tuple:
    """Everything in a config's data section that decides which samples load and their splits."""
    return (_norm(data.path), _norm(data.label_stack), data.val_fraction, data.split_seed, data.mask_mode,
            tuple(sorted(data.splits.items())))


def apply_splits(dataset, splits: dict[str, str]) -> None:
    """Give the dataset's samples the experiment's split moves (names it lacks are skipped)."""
    names = {s.name for s in dataset.samples}
    moves = {name: split for name, split in splits.items() if name in names}
    if any(s.split != moves[s.name] for s in dataset.samples if s.name in moves):
        dataset.assign_splits(moves)  # also drops statistics cached for the old splits


@dataclass
class _Loaded:
    """A background load's result and the data settings it was loaded with."""

    dataset: object
    path: str | None
    label_stack: str | None
    splits: dict
    keep_splits: bool  # a reload of the experiment's own data: its split moves are kept


# -- the panel ---------------------------------------------------------------------------------
class DatasetPanel(QWidget):
    """Open a dataset, browse its samples and splits, inspect statistics and problems."""

    title = "Dataset"

    loadingChanged = Signal(bool)
    loadFailed = Signal(str)
    loaded = Signal()

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self._runner = TaskRunner("dataset-load", self)
        self._stats_runner = TaskRunner("dataset-stats", self)
        self._view_runner = TaskRunner("dataset-view", self)
        self._loaded_key: tuple | None = None
        self._load_generation = 0  # results of older loads (superseded or cancelled) are dropped
        self._reload_after_training = False
        self._closed = False
        self.views = ViewCache()
        self._view: SampleView | None = None  # the view on the canvas
        self._overlay_key: tuple | None = None  # what the mask layer's array was built for
        self._loading_text = ""
        self.setObjectName("datasetPanel")
        self.setAcceptDrops(True)
        self._build_actions()
        self._build_ui()
        self._connect()
        self._on_dataset_changed()
        self._on_training_changed(state.training)

    # -- construction ------------------------------------------------------------------------
    def _build_actions(self) -> None:
        icon = self.style().standardIcon
        self.open_folder_action = QAction(icon(QStyle.StandardPixmap.SP_DirOpenIcon), "Open dataset folder…", self)
        self.open_folder_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_folder_action.setToolTip("Open a folder of images and masks (images/ + masks/, or train/ val/ "
                                           "[test/] each laid out so, or a TIFF stack pair)")
        self.open_stacks_action = QAction(icon(QStyle.StandardPixmap.SP_FileIcon), "Open TIFF stack pair…", self)
        self.open_stacks_action.setToolTip("Open a multi-page image TIFF and its label TIFF (one sample per page)")
        self.demo_action = QAction(icon(QStyle.StandardPixmap.SP_ComputerIcon), "Load demo data", self)
        self.demo_action.setToolTip("Load the built-in synthetic EM demo dataset (generated on first use)")
        for action, slot in ((self.open_folder_action, self.choose_folder),
                             (self.open_stacks_action, self.choose_stacks), (self.demo_action, self.open_demo)):
            action.triggered.connect(lambda _=False, s=slot: s())
            self.addAction(action)

    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        self.toolbar = QToolBar("Dataset", self)
        self.toolbar.setObjectName("datasetToolbar")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toolbar.setIconSize(QSize(16, 16))
        self.toolbar.addActions([self.open_folder_action, self.open_stacks_action, self.demo_action])
        layout.addWidget(self.toolbar)
        layout.addWidget(self._build_banner())
        layout.addWidget(self._build_progress_row())
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("datasetSplitter")
        self.splitter.addWidget(self._build_table_pane())
        self.splitter.addWidget(self._build_view_pane())
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([420, 580])
        self.splitter.setChildrenCollapsible(False)
        layout.addWidget(self.splitter, 1)
        self._compact_combos()
        self._route_drops_to_panel()

    def _build_banner(self) -> QWidget:
        self.error_banner = QFrame(self)
        self.error_banner.setObjectName("datasetErrorBanner")
        self.error_banner.setStyleSheet(BANNER_STYLE)
        row = QHBoxLayout(self.error_banner)
        row.setContentsMargins(8, 4, 4, 4)
        self.error_label = QLabel(self.error_banner)
        self.error_label.setObjectName("datasetErrorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_dismiss = QToolButton(self.error_banner)
        self.error_dismiss.setText("×")
        self.error_dismiss.setAutoRaise(True)
        self.error_dismiss.setToolTip("Hide this message")
        self.error_dismiss.clicked.connect(self.error_banner.hide)
        row.addWidget(self.error_label, 1)
        row.addWidget(self.error_dismiss, 0, Qt.AlignmentFlag.AlignTop)
        self.error_banner.hide()
        return self.error_banner

    def _build_progress_row(self) -> QWidget:
        self.progress_row = QWidget(self)
        row = QHBoxLayout(self.progress_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.progress_label = QLabel(self.progress_row)
        self.progress_label.setObjectName("datasetProgressLabel")
        self.progress_bar = QProgressBar(self.progress_row)
        self.progress_bar.setObjectName("datasetProgress")
        self.progress_bar.setToolTip("Files read so far")
        self.cancel_button = QPushButton("Cancel", self.progress_row)
        self.cancel_button.setObjectName("datasetCancel")
        self.cancel_button.setToolTip("Stop loading; the dataset shown now stays")
        self.cancel_button.clicked.connect(self.cancel_loading)
        row.addWidget(self.progress_label)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.cancel_button)
        self.progress_row.hide()
        return self.progress_row

    def _build_table_pane(self) -> QWidget:
        pane = QWidget(self)
        column = QVBoxLayout(pane)
        column.setContentsMargins(0, 0, 0, 0)
        filters = QHBoxLayout()
        self.filter_edit = QLineEdit(pane)
        self.filter_edit.setObjectName("datasetFilter")
        self.filter_edit.setPlaceholderText("Filter by name")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip("Show only samples whose name contains this text")
        self.split_filter = QComboBox(pane)
        self.split_filter.setObjectName("datasetSplitFilter")
        self.split_filter.addItems(("all",) + SPLITS)
        self.split_filter.setToolTip("Show only the samples of one split")
        filters.addWidget(self.filter_edit, 1)
        filters.addWidget(self.split_filter)
        column.addLayout(filters)
        column.addWidget(self._build_table(pane), 1)
        column.addLayout(self._build_move_row(pane))
        return pane

    def _build_table(self, parent: QWidget) -> QTableView:
        self.model = SampleTableModel(self)
        self.proxy = SampleFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = SampleTable(parent)
        self.table.setObjectName("datasetTable")
        self.table.setModel(self.proxy)
        self.table.setItemDelegateForColumn(SampleTableModel.SPLIT, SplitDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.SelectedClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(SampleTableModel.NAME, Qt.SortOrder.AscendingOrder)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.setToolTip("The dataset's samples; select one to view it, double-click a split to change it")
        vertical = self.table.verticalHeader()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(THUMB_SIZE + 6)
        vertical.hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in ((SampleTableModel.THUMB, THUMB_SIZE + 8), (SampleTableModel.SIZE, 76),
                              (SampleTableModel.SPLIT, 60), (SampleTableModel.FOREGROUND, 84)):
            header.resizeSection(column, width)
        return self.table

    def _build_move_row(self, parent: QWidget) -> QHBoxLayout:
        row = QHBoxLayout()
        self.move_button = QPushButton("Move selected to:", parent)
        self.move_button.setObjectName("datasetMoveButton")
        self.move_button.setToolTip("Move every selected sample to the split chosen beside (saved in the experiment)")
        self.move_button.setEnabled(False)
        self.move_combo = QComboBox(parent)
        self.move_combo.setObjectName("datasetMoveSplit")
        self.move_combo.addItems(SPLITS)
        self.move_combo.setToolTip("The split the selected samples are moved to")
        row.addWidget(self.move_button)
        row.addWidget(self.move_combo)
        row.addStretch(1)
        return row

    def _build_view_pane(self) -> QWidget:
        self.view_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.view_splitter.setObjectName("datasetViewSplitter")
        canvas_box = QWidget(self.view_splitter)
        column = QVBoxLayout(canvas_box)
        column.setContentsMargins(0, 0, 0, 0)
        self.canvas = SampleCanvas("Sample", canvas_box)
        self.canvas.setObjectName("datasetCanvas")
        self.canvas.setToolTip("Scroll to zoom, drag to pan, double-click to fit")
        column.addWidget(self.canvas, 1)
        column.addLayout(self._build_overlay_row(canvas_box))
        self.tabs = QTabWidget(self.view_splitter)
        self.tabs.setObjectName("datasetTabs")
        self.stats_view = QTextBrowser(self.tabs)
        self.stats_view.setObjectName("datasetStats")
        self.stats_view.setOpenLinks(False)
        self.stats_view.setToolTip("Statistics of the loaded dataset")
        self.problems_view = QTreeWidget(self.tabs)
        self.problems_view.setObjectName("datasetProblems")
        self.problems_view.setHeaderLabels(["File", "Reason"])
        self.problems_view.setRootIsDecorated(False)
        self.problems_view.setWordWrap(True)
        self.problems_view.setToolTip("Files that were left out when loading, and why")
        self.problems_view.header().resizeSection(0, 200)
        self.tabs.addTab(self.stats_view, "Statistics")
        self.tabs.addTab(self.problems_view, "Problems (0)")
        self.view_splitter.addWidget(canvas_box)
        self.view_splitter.addWidget(self.tabs)
        self.view_splitter.setStretchFactor(0, 3)
        self.view_splitter.setStretchFactor(1, 2)
        self.view_splitter.setChildrenCollapsible(False)
        return self.view_splitter

    def _build_overlay_row(self, parent: QWidget) -> QHBoxLayout:
        row = QHBoxLayout()
        self.show_mask_check = QCheckBox("Mask", parent)
        self.show_mask_check.setObjectName("datasetShowMask")
        self.show_mask_check.setChecked(True)
        self.show_mask_check.setToolTip("Draw the mask over the image")
        self.colour_combo = QComboBox(parent)
        self.colour_combo.setObjectName("datasetMaskColour")
        self.colour_combo.addItems(list(OVERLAY_COLOURS))
        self.colour_combo.setToolTip("Mask colour: one colour, or a colour per class")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, parent)
        self.opacity_slider.setObjectName("datasetMaskOpacity")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.setMinimumWidth(40)
        self.opacity_slider.setToolTip("Mask opacity (0–100 %)")
        self.opacity_label = QLabel("45 %", parent)
        self.opacity_label.setMinimumWidth(self.opacity_label.fontMetrics().horizontalAdvance("100 %"))
        self.mode_combo = QComboBox(parent)
        self.mode_combo.setObjectName("datasetMaskMode")
        self.mode_combo.addItems(OVERLAY_MODES)
        self.mode_combo.setToolTip("fill: translucent regions; contour: outlines; both")
        for widget, stretch in ((self.show_mask_check, 0), (self.colour_combo, 0), (self.opacity_slider, 1),
                                (self.opacity_label, 0), (self.mode_combo, 0)):
            row.addWidget(widget, stretch)
        return row

    def _compact_combos(self) -> None:
        """Let the combo boxes shrink so the panel still fits a narrow dock."""
        for combo in (self.split_filter, self.move_combo, self.colour_combo, self.mode_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(4)
            combo.setMinimumWidth(60)

    def _route_drops_to_panel(self) -> None:
        """Views take drops by default and would swallow a dropped folder; let the panel have it."""
        for view in (self.canvas, self.table, self.stats_view, self.problems_view):
            view.setAcceptDrops(False)
            view.viewport().setAcceptDrops(False)

    def _connect(self) -> None:
        state = self.state
        state.datasetChanged.connect(self._on_dataset_changed)
        state.splitsChanged.connect(self._on_splits_changed)
        state.sampleSelected.connect(self._on_sample_selected)
        state.configChanged.connect(self._on_config_changed)
        state.trainingChanged.connect(self._on_training_changed)
        self._runner.busyChanged.connect(self._set_loading)
        self.model.splitEdited.connect(lambda name, split: self.move_samples([name], split))
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row_changed)
        self.table.selectionModel().selectionChanged.connect(self._update_move_enabled)
        self.move_button.clicked.connect(self.move_selected)
        self.filter_edit.textChanged.connect(self.proxy.set_text)
        self.split_filter.currentTextChanged.connect(self.proxy.set_split)
        self.show_mask_check.toggled.connect(self._update_overlay)
        self.colour_combo.currentTextChanged.connect(self._update_overlay)
        self.mode_combo.currentTextChanged.connect(self._update_overlay)
        self.opacity_slider.valueChanged.connect(self._on_opacity_changed)

    # -- opening -----------------------------------------------------------------------------
    def choose_folder(self) -> None:
        """Ask for a dataset folder, then open it."""
        start = str(self.state.dataset.root) if self.state.dataset is not None else ""
        folder = QFileDialog.getExistingDirectory(self, "Open dataset folder", start)
        if folder:
            self.open_folder(folder)

    def choose_stacks(self) -> None:
        """Ask for the image stack, then the label stack, then open them."""
        filters = "TIFF stacks (*.tif *.tiff);;All files (*)"
        image, _ = QFileDialog.getOpenFileName(self, "Open image TIFF stack", "", filters)
        if not image:
            return
        label, _ = QFileDialog.getOpenFileName(self, "Open label TIFF stack", str(Path(image).parent), filters)
        if label:
            self.open_stacks(image, label)

    def open_folder(self, path: str | Path) -> None:
        """Load the dataset in ``path`` in the background."""
        self._open(str(path), None)

    def open_stacks(self, image_path: str | Path, label_path: str | Path) -> None:
        """Load an image TIFF stack and its label stack (one sample per page) in the background."""
        self._open(str(image_path), str(label_path))

    def open_demo(self) -> None:
        """Generate the demo dataset if needed and load it; the experiment then points at it."""
        if not self._can_open():
            return
        self._start_load(None, None, keep_splits=False, demo=True, description="demo data")

    def load_from_config(self) -> None:
        """Load what the experiment's data section names (the demo data when it names none);
        during a training run, once the run has ended."""
        if self.state.training:
            self._reload_after_training = True
            return
        data = self.state.config.data
        self._start_load(data.path, data.label_stack, keep_splits=True, demo=False,
                         description=Path(data.path).name if data.path else "demo data")

    def drop_paths(self, paths: list[str | Path]) -> bool:
        """Open dropped paths: one folder, or two TIFF stacks. False (with a message) otherwise."""
        source = drop_source([Path(p) for p in paths])
        if source is None:
            self._show_error("Drop one dataset folder, or two TIFF stacks (the image stack and its label stack).")
            return False
        if not self._can_open():
            return False
        if isinstance(source, tuple):
            self.open_stacks(*source)
        else:
            self.open_folder(source)
        return True

    def cancel_loading(self) -> None:
        """Stop the load in progress; the dataset shown now stays."""
        self._load_generation += 1
        self._runner.cancel()
        self.progress_label.setText("Cancelling…")
        self.cancel_button.setEnabled(False)

    @property
    def loading(self) -> bool:
        """True while a dataset is being loaded (read-only)."""
        return self._runner.busy

    def _open(self, path: str, label_stack: str | None) -> None:
        if not self._can_open():
            return
        data = self.state.config.data
        same = (data.path is not None and _same_path(data.path, path) and _same_path(data.label_stack, label_stack))
        self._start_load(path, label_stack, keep_splits=same, demo=False, description=Path(path).name)

    def _can_open(self) -> bool:
        if self.state.training:
            self._show_error("A training run is in progress; stop it before opening another dataset.")
            return False
        return True

    def _start_load(self, path: str | None, label_stack: str | None, *, keep_splits: bool, demo: bool,
                    description: str) -> None:
        if self._closed or not self._can_open():
            return
        config = copy.deepcopy(self.state.config)
        if not keep_splits:
            config.data.splits = {}

        def job(ctx):
            target = str(ensure_demo_dataset()) if demo else path
            ctx.check()
            config.data.path, config.data.label_stack = target, label_stack

            def progress(done: int, total: int) -> None:
                ctx.check()
                ctx.progress(done, total)

            dataset = load_experiment_data(config, progress=progress)
            if not dataset.samples:
                raise DatasetError(no_samples_message(target, dataset))
            dataset.stats  # noqa: B018 - computed here, off the GUI thread, and cached
            return _Loaded(dataset, target, label_stack, dict(config.data.splits), keep_splits)

        self._load_generation += 1
        generation = self._load_generation
        task = self._runner.start(job, on_done=lambda result: self._on_loaded(result, generation),
                                  on_failed=lambda message: self._on_load_failed(message, generation),
                                  on_progress=self._on_progress)
        if task is not None:
            self._loading_text = f"Loading {description}…"
            self.progress_label.setText(self._loading_text)
            self.progress_bar.setRange(0, 0)
            self.cancel_button.setEnabled(True)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        self.progress_label.setText(f"{self._loading_text} {done}/{total}")

    def _on_loaded(self, result: _Loaded, generation: int) -> None:
        if generation != self._load_generation:
            return  # a newer load was started, or this one was cancelled
        if self.state.training:  # the run uses the dataset it started with: never swap it mid-run
            self._reload_after_training = True
            self._show_error("The dataset load finished during training; it was not applied — "
                             "reopen it after the run.")
            return
        splits = result.splits
        if result.keep_splits:  # split moves made while it loaded win over those it started with
            splits = dict(self.state.config.data.splits)
            apply_splits(result.dataset, splits)
        data = self.state.config.data
        fields = {"path": result.path, "label_stack": result.label_stack, "splits": splits}
        changes = {k: v for k, v in fields.items() if getattr(data, k) != v}
        if changes:
            self.state.update("data", self, **changes)
        self.error_banner.hide()
        self.state.set_dataset(result.dataset)
        self.loaded.emit()

    def _on_load_failed(self, message: str, generation: int) -> None:
        if generation != self._load_generation:
            return
        self._show_error(f"Could not load the dataset: {message}")
        self.loadFailed.emit(message)

    def _set_loading(self, busy: bool) -> None:
        self.progress_row.setVisible(busy)
        self.loadingChanged.emit(busy)

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setToolTip(text)
        self.error_banner.show()

    # -- reacting to the shared state --------------------------------------------------------
    def _on_config_changed(self, section: str, source) -> None:
        if source is self or section not in ("all", "data"):
            return
        if self.state.dataset is None:
            if section == "all":
                self.load_from_config()
            return
        if data_key(self.state.config.data) != self._loaded_key:
            self.load_from_config()

    def _on_dataset_changed(self) -> None:
        dataset = self.state.dataset
        self._loaded_key = data_key(self.state.config.data) if dataset is not None else None
        self.views.clear()  # views of the previous dataset's samples: free their memory
        self.model.set_dataset(dataset)
        self._show_problems(dataset)
        self._refresh_stats()
        self._select_row(self.state.selected_sample)
        self._show_sample()

    def _on_splits_changed(self, source) -> None:
        self.model.refresh_splits()
        if self.state.dataset is not None:
            self._loaded_key = data_key(self.state.config.data)
        self._refresh_stats()
        self._update_title()

    def _on_sample_selected(self, name: str) -> None:
        self._select_row(name or None)
        self._show_sample()

    def _on_training_changed(self, running: bool) -> None:
        for action in (self.open_folder_action, self.open_stacks_action, self.demo_action):
            action.setEnabled(not running)
        self.model.editable = not running
        self.move_combo.setEnabled(not running)
        self._update_move_enabled()
        if running and self.loading:  # the run keeps the dataset it starts with
            self._load_generation += 1
            self._runner.cancel()
            self._reload_after_training = True
            self._show_error("Loading the dataset was cancelled: a training run started. "
                             "Open it again after the run.")
        elif not running and self._reload_after_training:
            self._reload_after_training = False
            if self.state.dataset is None or data_key(self.state.config.data) != self._loaded_key:
                self.load_from_config()  # the experiment names other data than the loaded one

    # -- the table ---------------------------------------------------------------------------
    def move_samples(self, names: list[str], split: str) -> None:
        """Move the named samples to ``split`` (through the shared state, saved in the experiment)."""
        if names and not self.state.training and split in SPLITS:
            self.state.set_split(list(names), split, self)

    def move_selected(self) -> None:
        """Move the selected rows to the split chosen in the "Move selected to" box."""
        self.move_samples(self.selected_names(), self.move_combo.currentText())

    def selected_names(self) -> list[str]:
        rows = self.table.selectionModel().selectedRows()
        return [self.proxy.index(i.row(), 0).data(SampleTableModel.NAME_ROLE) for i in rows]

    def _update_move_enabled(self, *_) -> None:
        has_selection = self.table.selectionModel().hasSelection()
        self.move_button.setEnabled(has_selection and not self.state.training)

    def _on_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.state.select_sample(current.data(SampleTableModel.NAME_ROLE))

    def _select_row(self, name: str | None) -> None:
        row = self.model.row_of(name) if name else None
        if row is None:
            return
        index = self.proxy.mapFromSource(self.model.index(row, SampleTableModel.NAME))
        if not index.isValid() or self.table.currentIndex().row() == index.row():
            return
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().setCurrentIndex(index, flags)
        self.table.scrollTo(index)

    # -- the large view ----------------------------------------------------------------------
    def _show_sample(self) -> None:
        """Show the selected sample: at once when small or cached, else prepared in the background."""
        sample = self.state.sample()
        if sample is None:
            self._view_runner.cancel()
            self._view = self._overlay_key = None
            self.canvas.set_layer("mask", None, z=10)
            self.canvas.set_image(None)
            self._update_title()
            return
        view = self.views.get(sample)
        if view is None and sample.shape[0] * sample.shape[1] <= SYNC_VIEW_PIXELS:
            view = self.views.put(sample_view(sample))
        if view is not None:
            self._view_runner.cancel()
            self._show_view(view)
            return
        self._update_title()
        if not self._closed:  # newest wins: a quick walk through big samples prepares only the last
            self._view_runner.start(lambda ctx: sample_view(sample, ctx.check), on_done=self._on_view_ready)

    @property
    def preparing_view(self) -> bool:
        """True while the selected sample's display image is being prepared in the background."""
        return self._view_runner.busy

    def _on_view_ready(self, view: SampleView) -> None:
        self.views.put(view)
        if view.sample is self.state.sample():
            self._show_view(view)

    def _show_view(self, view: SampleView) -> None:
        self._view = view
        self.canvas.set_image(view.rgb)
        self._update_title()
        self._update_overlay()

    def _update_title(self) -> None:
        sample = self.state.sample()
        if sample is None:
            self.canvas.set_title("Sample")
            return
        height, width = sample.shape
        waiting = " (preparing…)" if self._view is None or self._view.sample is not sample else ""
        self.canvas.set_title(f"{sample.name} — {width}×{height}, {sample.split}{waiting}")

    def _update_overlay(self, *_) -> None:
        """Draw the mask; an opacity change only fades the layer when one level does it."""
        view = self._view
        if view is None or not self.show_mask_check.isChecked():
            self._overlay_key = None
            self.canvas.set_layer("mask", None, z=10)
            return
        mode, colour = self.mode_combo.currentText(), self.colour_combo.currentText()
        opacity = self.opacity_slider.value() / 100
        fade = MaskLayer.fade(mode, opacity)
        key = (view, mode, colour, opacity if fade is None else None)  # holds the view: no id reuse
        if key != self._overlay_key:
            rgba = view.mask.overlay(opacity if fade is None else 1.0, mode, OVERLAY_COLOURS[colour])
            self.canvas.set_layer("mask", rgba, z=10)
            self._overlay_key = key
        self.canvas.set_layer_opacity("mask", 1.0 if fade is None else fade)

    def _on_opacity_changed(self, value: int) -> None:
        self.opacity_label.setText(f"{value} %")
        self._update_overlay()

    # -- statistics and problems -------------------------------------------------------------
    def _refresh_stats(self) -> None:
        dataset = self.state.dataset
        if dataset is None:
            self.stats_view.setHtml("<i>No dataset loaded.</i>")
            return
        cached = dataset.__dict__.get("stats")
        pixels = sum(s.shape[0] * s.shape[1] for s in dataset.samples)
        if cached is not None or pixels <= SYNC_STATS_PIXELS:
            self._show_stats(dataset, dataset.stats)
            return
        counts = dataset.split_counts()
        self.stats_view.setHtml(f"<b>{len(dataset.samples)} samples</b> — "
                                + ", ".join(f"{counts[s]} {s}" for s in SPLITS) + "<br><i>Computing statistics…</i>")
        if self._closed:
            return
        self._stats_runner.start(lambda ctx: dataset_stats(dataset),
                                 on_done=lambda stats, d=dataset: self._on_stats_computed(d, stats))

    def _on_stats_computed(self, dataset, stats) -> None:
        if dataset is not self.state.dataset:
            return
        if all(s.split == t.split for s, t in zip(dataset.samples, stats.samples)):
            dataset.__dict__.setdefault("stats", stats)  # still current: cache it like Dataset.stats does
        self._show_stats(dataset, stats)

    def _show_stats(self, dataset, stats) -> None:
        self.stats_view.setHtml(stats_html(dataset, stats))
        self.model.set_fractions({s.name: s.foreground_fraction for s in stats.samples})

    def stats_text(self) -> str:
        """The statistics box as plain text."""
        return self.stats_view.toPlainText()

    def _show_problems(self, dataset) -> None:
        problems = list(dataset.problems) if dataset is not None else []
        self.problems_view.clear()
        root = dataset.root if dataset is not None else None
        for problem in problems:
            path = Path(problem.path)
            item = QTreeWidgetItem([shown_path(path, root), problem.reason])
            item.setToolTip(0, str(path))
            item.setToolTip(1, f"{path}\n{problem.reason}")
            self.problems_view.addTopLevelItem(item)
        index = self.tabs.indexOf(self.problems_view)
        self.tabs.setTabText(index, f"Problems ({len(problems)})")
        self.tabs.setTabToolTip(index, "Files left out when loading, and why" if problems else "No problems found")

    # -- drag and drop -----------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt naming
        paths = self._local_paths(event.mimeData())
        if paths and drop_source(paths) is not None and not self.state.training:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt naming
        paths = self._local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.drop_paths(paths)
        else:
            event.ignore()

    @staticmethod
    def _local_paths(mime) -> list[Path]:
        if mime is None or not mime.hasUrls():
            return []
        return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]

    # -- life cycle --------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Cancel loading, statistics and view preparation and wait for their threads; no slot
        starts background work afterwards (safe to call twice)."""
        self._closed = True
        self._load_generation += 1
        for runner in (self._runner, self._stats_runner, self._view_runner):
            runner.shutdown()
