"""The widgets of the Predictions panel and how they are filled in: the toolbar, banner and
status line, the linked Before/After views with their overlay options, the clean-up step strip,
the scores table with the watershed settings beside them, the colour legend and the scores
table's contents. :class:`PredictionsLayoutMixin` builds them as attributes of
:class:`~app.ui.predictions_panel.PredictionsPanel`, whose handlers they are connected to.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QLayout, QProgressBar, QPushButton, QScrollArea, QSizePolicy, QSlider, QSplitter,
                               QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout, QWidget)

from app.core.postprocess import POSTPROCESS_PARAMS

from .image_view import ImageCanvas
from .param_form import ParamForm
from .prediction_batch import FolderPredictionBar
from .render import CLASS_COLOURS, FALSE_NEGATIVE, FALSE_POSITIVE
from .steps_strip import StepsStrip
from .styles import banner_style

TRUTH_COLOUR = (255, 230, 0)
LAYER_Z = {"prediction": 20, "outline": 25, "truth": 30}
METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
    ("pixel_accuracy", "Pixel accuracy", "fraction of pixels whose foreground/background call matches the truth"),
    ("iou", "IoU (foreground)", "intersection over union of predicted and true foreground (1 = perfect)"),
    ("dice", "Dice (foreground)", "Dice overlap of predicted and true foreground (1 = perfect)"),
    ("adapted_rand_error", "Adapted Rand error",
     "ISBI 2012 instance error of the connected objects against the true objects (0 = perfect)"),
    ("objects", "Objects", "number of separate objects"),
)


def cleanup_kept(metrics: dict, below: float = 0.5) -> float | None:
    """The share of the predicted foreground the clean-up kept, when it is under ``below`` (the
    reference defaults can drop most cells of a good prediction); None otherwise."""
    before = metrics.get("before", {}).get("foreground") if metrics else None
    after = metrics.get("after", {}).get("foreground") if metrics else None
    if not before or after is None:
        return None
    kept = after / before
    return kept if kept < below else None


class PredictionsLayoutMixin:
    """Builds and fills the widgets of :class:`~app.ui.predictions_panel.PredictionsPanel`."""

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self._build_toolbar())
        self.banner = QLabel()
        self.banner.setObjectName("predictions_banner")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.PlainText)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setStyleSheet(banner_style("error", "QLabel"))
        self.banner.hide()
        layout.addWidget(self.banner)
        self.status_label = QLabel()
        self.status_label.setObjectName("predictions_status")
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.status_label)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self._build_views())
        self.splitter.addWidget(self._build_side())
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([700, 300])
        layout.addWidget(self.splitter, 1)

    def _build_toolbar(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.open_checkpoint_action = QAction("Open checkpoint…", self)
        self.open_checkpoint_action.setToolTip("Load a trained model from a SegStudio checkpoint (.pt)")
        self.open_checkpoint_action.triggered.connect(self._ask_checkpoint)
        self.open_image_action = QAction("Open image…", self)
        self.open_image_action.setToolTip("Predict any image file (no ground truth, so only object counts)")
        self.open_image_action.triggered.connect(self._ask_image)
        checkpoint_button = QToolButton()
        checkpoint_button.setDefaultAction(self.open_checkpoint_action)
        self.checkpoint_label = QLabel("No model loaded")
        self.checkpoint_label.setObjectName("predictions_checkpoint")
        self.checkpoint_label.setToolTip("The checkpoint whose predictions are shown")
        self.checkpoint_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.image_combo = QComboBox()
        self.image_combo.setObjectName("predictions_image")
        self.image_combo.setToolTip("The image to predict: validation images first, then test, then training")
        self.image_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.image_combo.setMinimumContentsLength(12)
        image_button = QToolButton()
        image_button.setDefaultAction(self.open_image_action)
        self.busy_bar = QProgressBar()
        self.busy_bar.setObjectName("predictions_busy")
        self.busy_bar.setToolTip("Loading the model or predicting the image")
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.hide()
        row.addWidget(checkpoint_button)
        row.addWidget(self.checkpoint_label, 1)
        row.addWidget(QLabel("Image:"))
        row.addWidget(self.image_combo)
        row.addWidget(image_button)
        row.addWidget(self.busy_bar)
        self.folder_bar = FolderPredictionBar(self)
        row.addWidget(self.folder_bar)
        return row

    def _build_views(self) -> QWidget:
        self.before_canvas = ImageCanvas("Before clean-up")
        self.before_canvas.setObjectName("predictions_before")
        self.after_canvas = ImageCanvas("After watershed")
        self.after_canvas.setObjectName("predictions_after")
        self.before_canvas.link(self.after_canvas)
        canvases = QSplitter(Qt.Orientation.Horizontal)
        canvases.addWidget(self.before_canvas)
        canvases.addWidget(self.after_canvas)

        top = QWidget()
        column = QVBoxLayout(top)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(canvases, 1)
        self.legend = QLabel()
        self.legend.setObjectName("predictions_legend")
        self.legend.setWordWrap(True)
        self.legend.setToolTip("What the colours in the two views mean")
        for row in self._build_view_options():
            column.addLayout(row)

        views = QSplitter(Qt.Orientation.Vertical)
        views.addWidget(top)
        views.addWidget(self._build_steps())
        views.setStretchFactor(0, 5)
        views.setStretchFactor(1, 1)
        views.setCollapsible(0, False)
        return views

    def _build_view_options(self) -> tuple[QHBoxLayout, QHBoxLayout]:
        """Two rows: the overlay toggles, then the opacity slider and the colour legend."""
        toggles, opacity = QHBoxLayout(), QHBoxLayout()
        self.truth_check = QCheckBox("Ground truth")
        self.truth_check.setObjectName("predictions_truth")
        self.truth_check.setChecked(True)
        self.truth_check.setToolTip("Outline the ground-truth objects (yellow) on both views")
        self.errors_check = QCheckBox("Errors")
        self.errors_check.setObjectName("predictions_errors")
        self.errors_check.setToolTip("Show false positives (red) and false negatives (blue) instead of the prediction")
        self.objects_check = QCheckBox("Colour objects")
        self.objects_check.setObjectName("predictions_objects")
        self.objects_check.setChecked(True)
        self.objects_check.setToolTip("Colour each object of the cleaned result by its instance label")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setObjectName("predictions_opacity")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.setToolTip("Opacity of the prediction overlay (0–100 %)")
        self.opacity_slider.setMinimumWidth(60)
        self.opacity_slider.setMaximumWidth(140)
        for widget in (self.truth_check, self.errors_check, self.objects_check):
            toggles.addWidget(widget)
        toggles.addStretch(1)
        opacity.addWidget(QLabel("Opacity"))
        opacity.addWidget(self.opacity_slider)
        opacity.addWidget(self.legend, 1)
        return toggles, opacity

    def _build_steps(self) -> QWidget:
        self.steps_area = StepsStrip()
        self.steps_area.setObjectName("predictions_steps")
        self.steps_area.setToolTip("Every step of the watershed clean-up; click one to show it large on the right")
        self.steps_widget, self.steps_layout = self.steps_area.strip, self.steps_area.strip_layout
        self.steps_area.stepClicked.connect(self._on_step_clicked)
        return self.steps_area

    def _build_side(self) -> QWidget:
        side = QWidget()
        column = QVBoxLayout(side)
        column.setContentsMargins(2, 0, 2, 0)
        column.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        metrics_box = QGroupBox("Scores on this image")
        box_layout = QVBoxLayout(metrics_box)
        self.metrics_table = QTableWidget(len(METRIC_ROWS), 2)
        self.metrics_table.setObjectName("predictions_metrics")
        self.metrics_table.setHorizontalHeaderLabels(["Before", "After"])
        self.metrics_table.setVerticalHeaderLabels([label for _, label, _ in METRIC_ROWS])
        for row, (_, _, tip) in enumerate(METRIC_ROWS):
            self.metrics_table.verticalHeaderItem(row).setToolTip(tip)
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.metrics_table.horizontalHeader().setMinimumSectionSize(52)
        self.metrics_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.metrics_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.metrics_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.metrics_table.setSizeAdjustPolicy(QAbstractItemView.SizeAdjustPolicy.AdjustToContents)
        self.metrics_table.setToolTip("Scores of the raw prediction (before) and of the cleaned result (after)")
        box_layout.addWidget(self.metrics_table)
        self.cleanup_warning = QLabel()
        self.cleanup_warning.setObjectName("predictions_cleanup_warning")
        self.cleanup_warning.setWordWrap(True)
        self.cleanup_warning.setStyleSheet(banner_style("warning", "QLabel"))
        self.cleanup_warning.hide()
        box_layout.addWidget(self.cleanup_warning)
        self._fit_table_height()
        column.addWidget(metrics_box)

        params_box = QGroupBox("Watershed clean-up")
        params_layout = QVBoxLayout(params_box)
        self.params_form = ParamForm(POSTPROCESS_PARAMS, self._params.to_dict())
        self.params_form.setObjectName("predictions_params")
        params_layout.addWidget(self.params_form)
        self.reset_button = QPushButton("Reset defaults")
        self.reset_button.setObjectName("predictions_reset")
        self.reset_button.setToolTip("Restore the reference project's clean-up settings")
        params_layout.addWidget(self.reset_button)
        column.addWidget(params_box)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(170)
        return scroll

    def _update_legend(self, has_truth: bool, errors: bool) -> None:
        def swatch(colour, text):
            r, g, b = (int(c) for c in colour)
            return f"<span style='color: rgb({r}, {g}, {b})'>■</span> {text}"

        parts = [swatch(FALSE_POSITIVE, "false positive"), swatch(FALSE_NEGATIVE, "false negative")] if errors \
            else [swatch(CLASS_COLOURS[1], "predicted foreground")]
        if not errors and self.objects_check.isChecked():
            parts.append("after: one colour per object")
        if has_truth and self.truth_check.isChecked():
            parts.append(swatch(TRUTH_COLOUR, "ground-truth outline"))
        if not has_truth:
            parts.append("no ground truth for this image")
        self.legend.setText(" &nbsp; ".join(parts))

    def _show_metrics(self) -> None:
        metrics, source = self.metrics(), self._source(self._current_key)
        has_truth = "iou" in metrics["before"] if metrics else (source is not None and source[2] is not None)
        for row, (key, _label, _tip) in enumerate(METRIC_ROWS):
            self.metrics_table.setRowHidden(row, key != "objects" and not has_truth)
            for column, side in enumerate(("before", "after")):
                value = metrics.get(side, {}).get(key)
                text = "—" if value is None else (f"{int(value)}" if key == "objects" else f"{value:.3f}")
                item = self.metrics_table.item(row, column)
                if item is None:
                    item = QTableWidgetItem()
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    self.metrics_table.setItem(row, column, item)
                if item.text() != text:
                    item.setText(text)
        self._fit_table_height()
        kept = cleanup_kept(metrics)
        self.cleanup_warning.setVisible(kept is not None)
        if kept is not None:
            self.cleanup_warning.setText(
                f"The clean-up kept {kept:.0%} of the predicted foreground. To keep more, lower the foreground "
                "fraction: only places farther from the background than that fraction of the largest such "
                "distance seed an object.")

    def _fit_table_height(self) -> None:
        """Size the table to its visible rows so it neither scrolls nor leaves a gap."""
        table = self.metrics_table
        rows = sum(table.verticalHeader().sectionSize(r) for r in range(table.rowCount()) if not table.isRowHidden(r))
        table.setFixedHeight(table.horizontalHeader().sizeHint().height() + rows + 2 * table.frameWidth())
        table.setMinimumWidth(table.verticalHeader().sizeHint().width() + 2 * 56 + 2 * table.frameWidth())
