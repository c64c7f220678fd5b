"""Widget layout of the augmentation panel, as a mixin of :class:`~app.ui.augment_panel.AugmentPanel`.

Builds the panel's widgets and stores them as the panel's attributes (banner, pipeline editor with
seed, reset and add controls, the row container, the original/augmented canvases with their
draw-selection and overlay controls, and the grid of :class:`DrawTile` next draws), connecting
them to the slots the panel defines. It holds no state and no behaviour of its own.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QScrollArea, QSlider, QSpinBox, QSplitter, QStackedWidget, QVBoxLayout, QWidget)

from app.core.augment import TRANSFORMS

from .augment_preview import DrawTile
from .augment_rows import BANNER_STYLE
from .image_view import ImageCanvas
from .styles import banner_style

GRID_DRAWS = 8
GRID_COLUMNS = 4
MASK_MODES = ("contour", "fill", "both", "off")
SEED_LIMIT = 2**31 - 1
NOTE_STYLE = banner_style("warning", "QLabel")


class AugmentLayout:
    """Builds the augmentation panel's widgets (mixed into the panel: ``self`` is the panel)."""

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.banner = QLabel()
        self.banner.setObjectName("augment_banner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        layout.addWidget(self.banner)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("augment_splitter")
        self.splitter.addWidget(self._build_editor())
        self.splitter.addWidget(self._build_preview())
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([340, 660])
        layout.addWidget(self.splitter, 1)
        shortcut = QShortcut(QKeySequence("Ctrl+Shift+N"), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self.new_sample)
        self.new_sample_shortcut = shortcut

    def _build_editor(self) -> QScrollArea:
        self.editor = QWidget()
        self.editor.setObjectName("augment_editor")
        column = QVBoxLayout(self.editor)
        column.setContentsMargins(2, 2, 2, 2)
        self.lock_label = QLabel("Training is running: the pipeline is locked until it ends.")
        self.lock_label.setWordWrap(True)
        self.lock_label.setStyleSheet(NOTE_STYLE)
        self.lock_label.hide()
        column.addWidget(self.lock_label)
        self.controls = QWidget()
        controls = QGridLayout(self.controls)
        controls.setContentsMargins(0, 0, 0, 0)
        seed_label = QLabel("Seed")
        self.seed_spin = QSpinBox()
        self.seed_spin.setObjectName("pipeline_seed")
        self.seed_spin.setRange(0, SEED_LIMIT)
        self.seed_spin.setKeyboardTracking(False)
        tip = "Pipeline seed: with the (epoch, index) key it fixes every random draw, in training and here"
        seed_label.setToolTip(tip)
        self.seed_spin.setToolTip(tip)
        self.seed_spin.valueChanged.connect(self._on_seed)
        self.reset_button = QPushButton("Reset to default")
        self.reset_button.setObjectName("reset_pipeline")
        self.reset_button.setToolTip("Replace the pipeline with SegStudio's recommended augmentation")
        self.reset_button.clicked.connect(self.reset_to_default)
        self.add_combo = QComboBox()
        self.add_combo.setObjectName("add_augmentation")
        self.add_combo.setToolTip("Append a transform to the pipeline (p = 0.5, default parameters)")
        self.add_combo.addItem("Add augmentation…", None)
        for name in TRANSFORMS.names():
            entry = TRANSFORMS.get(name)
            self.add_combo.addItem(f"{name}  ({entry.meta.get('kind', '')})", name)
            self.add_combo.setItemData(self.add_combo.count() - 1, entry.description, Qt.ItemDataRole.ToolTipRole)
        self.add_combo.activated.connect(self._on_add_activated)
        controls.addWidget(seed_label, 0, 0)
        controls.addWidget(self.seed_spin, 0, 1)
        controls.addWidget(self.reset_button, 0, 2)
        controls.addWidget(self.add_combo, 1, 0, 1, 3)
        controls.setColumnStretch(1, 1)
        column.addWidget(self.controls)
        self.rows_box = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_box)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.setSpacing(4)
        self.empty_label = QLabel("No augmentation: training sees plain random crops.")
        self.empty_label.setWordWrap(True)
        self.empty_label.setEnabled(False)
        self.rows_layout.addWidget(self.empty_label)
        column.addWidget(self.rows_box)
        column.addStretch(1)
        self.editor_scroll = QScrollArea()
        self.editor_scroll.setObjectName("augment_editor_scroll")
        self.editor_scroll.setWidgetResizable(True)
        self.editor_scroll.setWidget(self.editor)
        self.editor_scroll.setMinimumWidth(180)
        return self.editor_scroll

    def _build_preview(self) -> QStackedWidget:
        self.preview_stack = QStackedWidget()
        self.preview_stack.setObjectName("augment_preview")
        self.hint_label = QLabel()
        self.hint_label.setObjectName("augment_hint")
        self.hint_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint_label.setWordWrap(True)
        self.preview_stack.addWidget(self.hint_label)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self._build_main_preview())
        splitter.addWidget(self._build_grid())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([400, 300])
        self.preview_stack.addWidget(splitter)
        return self.preview_stack

    def _build_main_preview(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(self._preview_controls())
        canvases = QSplitter(Qt.Orientation.Horizontal)
        self.original_canvas = ImageCanvas("Original")
        self.original_canvas.setObjectName("original_canvas")
        self.augmented_canvas = ImageCanvas("Augmented")
        self.augmented_canvas.setObjectName("augmented_canvas")
        for canvas in (self.original_canvas, self.augmented_canvas):
            canvas.setMinimumSize(90, 90)
        canvases.addWidget(self.original_canvas)
        canvases.addWidget(self.augmented_canvas)
        column.addWidget(canvases, 1)
        self.applied_label = QLabel()
        self.applied_label.setObjectName("applied_label")
        self.applied_label.setWordWrap(True)
        self.applied_label.setToolTip("Which transforms this draw applied (their probability decides per draw)")
        column.addWidget(self.applied_label)
        return box

    def _preview_controls(self) -> QGridLayout:
        """Which draw to show and how: three short rows, so the panel stays usable when narrow."""
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        self.epoch_spin = QSpinBox()
        self.epoch_spin.setObjectName("preview_epoch")
        self.epoch_spin.setPrefix("epoch ")
        self.epoch_spin.setToolTip("Training epoch of the draw (sample order and augmentation depend on it)")
        self.index_spin = QSpinBox()
        self.index_spin.setObjectName("preview_index")
        self.index_spin.setPrefix("patch ")
        self.index_spin.setToolTip("Index of the patch within the epoch")
        for spin in (self.epoch_spin, self.index_spin):
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self.schedule_refresh)
        self.new_button = QPushButton("New sample")
        self.new_button.setObjectName("new_sample")
        self.new_button.setToolTip("Show the next draw (patch index + 1)  [Ctrl+Shift+N]")
        self.new_button.clicked.connect(self.new_sample)
        self.whole_box = QCheckBox("Whole image (before patch crop)")
        self.whole_box.setObjectName("whole_image")
        self.whole_box.setToolTip("Show the augmented source image before the final random crop to the patch size")
        self.whole_box.toggled.connect(self._render)
        self.padding_box = QCheckBox("Mark padding")
        self.padding_box.setObjectName("mark_padding")
        self.padding_box.setChecked(True)
        self.padding_box.setToolTip("Tint pixels that come from padding or outside the source (magenta); "
                                    "training gives them zero loss weight")
        self.padding_box.toggled.connect(self._render)
        self.busy_label = QLabel("updating…")
        self.busy_label.setEnabled(False)
        self.busy_label.hide()
        for runner in (self.runner, self.render_runner):
            runner.busyChanged.connect(self._update_busy)
        grid.addWidget(self.epoch_spin, 0, 0)
        grid.addWidget(self.index_spin, 0, 1)
        grid.addWidget(self.new_button, 0, 2)
        grid.addWidget(self.busy_label, 0, 3)
        grid.addWidget(self.whole_box, 1, 0, 1, 4)
        grid.addLayout(self._overlay_controls(), 2, 0, 1, 4)
        grid.setColumnStretch(3, 1)
        return grid

    def _overlay_controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        mask_label = QLabel("Mask")
        self.mask_mode_combo = QComboBox()
        self.mask_mode_combo.setObjectName("mask_mode")
        self.mask_mode_combo.addItems(list(MASK_MODES))
        tip = "How the label mask is drawn over both images"
        mask_label.setToolTip(tip)
        self.mask_mode_combo.setToolTip(tip)
        self.mask_mode_combo.currentIndexChanged.connect(self._update_masks)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setObjectName("mask_opacity")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.setToolTip("Mask overlay opacity (fill and contour)")
        self.opacity_slider.valueChanged.connect(self._update_masks)
        self.opacity_slider.setMinimumWidth(40)
        opacity_label = QLabel("Opacity")
        opacity_label.setToolTip(self.opacity_slider.toolTip())
        row.addWidget(mask_label)
        row.addWidget(self.mask_mode_combo)
        row.addWidget(opacity_label)
        row.addWidget(self.opacity_slider, 1)
        row.addWidget(self.padding_box)
        return row

    def _build_grid(self) -> QGroupBox:
        box = QGroupBox("Next draws (click one to inspect it)")
        box.setObjectName("draw_grid")
        grid = QGridLayout(box)
        grid.setContentsMargins(4, 4, 4, 4)
        grid.setSpacing(4)
        for position in range(GRID_DRAWS):
            tile = DrawTile()
            tile.setObjectName(f"draw_tile_{position}")
            tile.clicked.connect(self.show_draw)
            grid.addWidget(tile, position // GRID_COLUMNS, position % GRID_COLUMNS)
            self.grid_canvases.append(tile)
        return box
