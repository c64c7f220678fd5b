"""The dataset browser: open a dataset, browse its samples, edit splits, see statistics and problems.

Loading runs in a background task (progress bar, Cancel); a failure is shown in a banner and
the previously loaded dataset stays. The sample table edits splits through the shared state,
so every panel sees the change; the large view shows the selected image with its mask.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QComboBox, QFileDialog, QSplitter, QStyle, QToolBar, QVBoxLayout, QWidget

from app.core.experiment_data import load_experiment_data
from app.core.pairing import SPLITS, looks_like_labels, order_stack_pair
from app.core.stats import dataset_stats

from .dataset_sources import (PROBLEMS_IN_MESSAGE, Loaded, apply_splits, data_key, drop_source, load_job,
                              no_samples_message, same_path, shown_path)
from .dataset_viewer import SampleViewer
from .dataset_widgets import BANNER_STYLE, DatasetInfoTabs, ErrorBanner, LoadProgressRow, SampleTablePane
from .sample_table import SampleFilterProxy, SampleTableModel, stats_html
from .tasks import TaskRunner

# Names callers and tests reach through this module (tests patch SYNC_*_PIXELS and load_experiment_data here).
__all__ = ["BANNER_STYLE", "DatasetPanel", "PROBLEMS_IN_MESSAGE", "SYNC_STATS_PIXELS", "SYNC_VIEW_PIXELS",
           "apply_splits", "data_key", "drop_source", "load_experiment_data", "looks_like_labels",
           "no_samples_message", "order_stack_pair", "shown_path"]

# Below this many pixels in the whole dataset, statistics are computed at once on the GUI thread.
SYNC_STATS_PIXELS = 1_000_000
# Up to this many pixels a sample's display image and mask are prepared at once; larger ones off the GUI thread.
SYNC_VIEW_PIXELS = 1_000_000


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
        self._load_generation = 0  # results of older loads (superseded or cancelled) are dropped
        self._reload_after_training = False
        self._closed = False
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
        self.error_banner = ErrorBanner(self)
        self.error_label, self.error_dismiss = self.error_banner.label, self.error_banner.dismiss
        return self.error_banner

    def _build_progress_row(self) -> QWidget:
        self.progress_row = LoadProgressRow(self)
        self.progress_label, self.progress_bar = self.progress_row.label, self.progress_row.bar
        self.cancel_button = self.progress_row.cancel_button
        self.cancel_button.clicked.connect(self.cancel_loading)
        return self.progress_row

    def _build_table_pane(self) -> QWidget:
        self.model = SampleTableModel(self)
        self.proxy = SampleFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        pane = SampleTablePane(self.proxy, self)
        self.filter_edit, self.split_filter, self.table = pane.filter_edit, pane.split_filter, pane.table
        self.move_button, self.move_combo = pane.move_button, pane.move_combo
        return pane

    def _build_view_pane(self) -> QWidget:
        self.view_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.view_splitter.setObjectName("datasetViewSplitter")
        self.viewer = SampleViewer(self.state.sample, self._view_runner, self.view_splitter)
        viewer = self.viewer
        self.canvas, self.views = viewer.canvas, viewer.views
        self.show_mask_check, self.colour_combo = viewer.show_mask_check, viewer.colour_combo
        self.opacity_slider, self.opacity_label, self.mode_combo = (viewer.opacity_slider, viewer.opacity_label,
                                                                    viewer.mode_combo)
        self.tabs = DatasetInfoTabs(self.view_splitter)
        self.stats_view, self.problems_view = self.tabs.stats_view, self.tabs.problems_view
        self.view_splitter.addWidget(viewer)
        self.view_splitter.addWidget(self.tabs)
        self.view_splitter.setStretchFactor(0, 3)
        self.view_splitter.setStretchFactor(1, 2)
        self.view_splitter.setChildrenCollapsible(False)
        return self.view_splitter

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
        self.progress_row.cancelling()

    @property
    def loading(self) -> bool:
        """True while a dataset is being loaded (read-only)."""
        return self._runner.busy

    def _open(self, path: str, label_stack: str | None) -> None:
        if not self._can_open():
            return
        data = self.state.config.data
        same = (data.path is not None and same_path(data.path, path) and same_path(data.label_stack, label_stack))
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
        # ``load`` looks load_experiment_data up here when the job runs, so patching this module's name works
        job = load_job(self.state.config, path, label_stack, keep_splits=keep_splits, demo=demo,
                       load=lambda config, progress: load_experiment_data(config, progress=progress))
        self._load_generation += 1
        generation = self._load_generation
        task = self._runner.start(job, on_done=lambda result: self._on_loaded(result, generation),
                                  on_failed=lambda message: self._on_load_failed(message, generation),
                                  on_progress=self.progress_row.set_progress)
        if task is not None:
            self.progress_row.start(f"Loading {description}…")

    def _on_loaded(self, result: Loaded, generation: int) -> None:
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
        self.error_banner.show_message(text)

    # -- reacting to the shared state --------------------------------------------------------
    def _on_config_changed(self, section: str, source) -> None:
        if source is self or section not in ("all", "data"):
            return
        if self.state.dataset is None:
            if section == "all":
                self.load_from_config()
            return
        if data_key(self.state.config.data) != self.state.dataset_key:
            self.load_from_config()

    def _on_dataset_changed(self) -> None:
        dataset = self.state.dataset
        self.views.clear()  # views of the previous dataset's samples: free their memory
        self.model.set_dataset(dataset)
        self.tabs.show_problems(dataset)
        self._refresh_stats()
        self._select_row(self.state.selected_sample)
        self._show_sample()

    def _on_splits_changed(self, source) -> None:
        self.model.refresh_splits()
        self._refresh_stats()
        self.viewer.update_title()

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
            if self.state.dataset is None or data_key(self.state.config.data) != self.state.dataset_key:
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
        self.viewer.show_sample(SYNC_VIEW_PIXELS, background=not self._closed)

    @property
    def preparing_view(self) -> bool:
        """True while the selected sample's display image is being prepared in the background."""
        return self.viewer.preparing

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
