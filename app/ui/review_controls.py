"""The review workspace's side controls: what is shown, the correction tools, the decision,
and the case's facts. Plain widgets with signals; the panel connects them to the session."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout,
                               QLabel, QPlainTextEdit, QPushButton, QSizePolicy, QSlider, QSpinBox, QToolButton, QVBoxLayout,
                               QWidget)

from .review_canvas import TOOL_KEYS, TOOL_LABELS, TOOLS
from .review_session import VIEW_LABELS, VIEWS

VIEW_KEYS = {"prediction": "1", "watershed": "2", "correction": "3"}
DECISIONS = (("accepted", "Accept", "A", "#43a047"), ("rejected", "Reject", "R", "#e53935"),
             ("needs_edit", "Needs edit", "E", "#f5a623"), ("unreviewed", "Undecided", "U", "#7a7f85"))


class DisplayBox(QGroupBox):
    """Which mask is shown (prediction, after watershed, correction), fill or contour, opacity."""

    viewChosen = Signal(str)
    styleChanged = Signal()

    def __init__(self, parent=None):
        super().__init__("Show", parent)
        grid = QGridLayout(self)
        self.view_buttons: dict[str, QToolButton] = {}
        self.view_group = QButtonGroup(self)
        row = QHBoxLayout()
        for view in VIEWS:
            button = QToolButton()
            button.setText(VIEW_LABELS[view])
            button.setCheckable(True)
            button.setObjectName(f"view_{view}")
            button.setToolTip(f"Show the {VIEW_LABELS[view].lower()} mask ({VIEW_KEYS[view]}; W switches "
                              "between prediction and watershed)")
            button.clicked.connect(lambda _=False, v=view: self.viewChosen.emit(v))
            self.view_group.addButton(button)
            self.view_buttons[view] = button
            row.addWidget(button)
        grid.addLayout(row, 0, 0, 1, 2)
        grid.addWidget(QLabel("Overlay"), 1, 0)
        self.mode_combo = QComboBox()
        self.mode_combo.setObjectName("review_overlay_mode")
        for mode, label in (("fill", "Fill"), ("contour", "Contour"), ("both", "Fill and contour")):
            self.mode_combo.addItem(label, mode)
        self.mode_combo.setCurrentIndex(2)
        self.mode_combo.setToolTip("How the mask is drawn (C cycles)")
        self.mode_combo.currentIndexChanged.connect(lambda _i: self.styleChanged.emit())
        grid.addWidget(self.mode_combo, 1, 1)
        grid.addWidget(QLabel("Opacity"), 2, 0)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setObjectName("review_opacity")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.setToolTip("Mask opacity; hold Space to hide the mask and see the raw image")
        self.opacity.valueChanged.connect(lambda _v: self.styleChanged.emit())
        grid.addWidget(self.opacity, 2, 1)
        hint = QLabel("Hold <b>Space</b> to see the raw image")
        hint.setObjectName("review_hint")
        grid.addWidget(hint, 3, 0, 1, 2)
        self.cleanup_button = QPushButton("Clean-up settings…")
        self.cleanup_button.setObjectName("review_cleanup")
        self.cleanup_button.setToolTip("The watershed clean-up of this review: what \"After watershed\" shows and "
                                       "what a case accepted on it exports")
        grid.addWidget(self.cleanup_button, 4, 0, 1, 2)

    def show_view(self, view: str, correction_available: bool) -> None:
        self.view_buttons["correction"].setEnabled(correction_available)
        self.view_buttons[view].setChecked(True)

    @property
    def mode(self) -> str:
        return self.mode_combo.currentData()


class ToolsBox(QGroupBox):
    """Correction tools, brush size, undo, redo and revert."""

    toolChosen = Signal(str)
    radiusChanged = Signal(int)

    def __init__(self, parent=None):
        super().__init__("Correct", parent)
        layout = QVBoxLayout(self)
        grid = QGridLayout()
        self.tool_buttons: dict[str, QToolButton] = {}
        group = QButtonGroup(self)
        for i, tool in enumerate(TOOLS):
            button = QToolButton()
            button.setText(f"{TOOL_LABELS[tool]} ({TOOL_KEYS[tool]})")
            button.setCheckable(True)
            button.setObjectName(f"tool_{tool}")
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            button.clicked.connect(lambda _=False, t=tool: self.toolChosen.emit(t))
            group.addButton(button)
            self.tool_buttons[tool] = button
            grid.addWidget(button, i // 2, i % 2)
        self.tool_buttons["navigate"].setChecked(True)
        layout.addLayout(grid)
        size_row = QHBoxLayout()
        size_row.addWidget(QLabel("Brush radius"))
        self.radius = QSpinBox()
        self.radius.setObjectName("review_brush_radius")
        self.radius.setRange(0, 200)
        self.radius.setValue(4)
        self.radius.setSuffix(" px")
        self.radius.setToolTip("Brush and eraser radius ([ and ] change it)")
        self.radius.valueChanged.connect(self.radiusChanged)
        size_row.addWidget(self.radius, 1)
        layout.addLayout(size_row)
        history = QHBoxLayout()
        self.undo_button = QPushButton("Undo")
        self.redo_button = QPushButton("Redo")
        self.revert_button = QPushButton("Revert to prediction")
        self.revert_button.setToolTip("Drop this case's correction")
        for button in (self.undo_button, self.redo_button, self.revert_button):
            history.addWidget(button)
        layout.addLayout(history)

    def show_tool(self, tool: str) -> None:
        self.tool_buttons[tool].setChecked(True)


class DecisionBox(QGroupBox):
    """Accept, reject (with a reason), needs edit; a comment; advance after deciding."""

    decided = Signal(str)
    commentEdited = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Decide", parent)
        layout = QVBoxLayout(self)
        row = QGridLayout()
        self.buttons: dict[str, QPushButton] = {}
        for i, (state, label, key, colour) in enumerate(DECISIONS):
            button = QPushButton(f"{label}  ({key})")
            button.setObjectName(f"decide_{state}")
            button.setStyleSheet(f"QPushButton {{ border-left: 4px solid {colour}; padding: 5px 8px; }}")
            button.clicked.connect(lambda _=False, s=state: self.decided.emit(s))
            self.buttons[state] = button
            row.addWidget(button, i // 2, i % 2)
        layout.addLayout(row)
        form = QFormLayout()
        self.reason_combo = QComboBox()
        self.reason_combo.setObjectName("review_reason")
        self.reason_combo.setEditable(True)
        self.reason_combo.setInsertPolicy(QComboBox.InsertPolicy.InsertAtBottom)
        self.reason_combo.setToolTip("The reason recorded when you reject this case (R; Alt+1…9 picks the n-th); "
                                     "type a new one to add it to the list. A case's recorded reason is shown "
                                     "above, beside its state.")
        self.reason_combo.lineEdit().setPlaceholderText("none (pick, type, Alt+1…9)")
        form.addRow("Reason if rejected", self.reason_combo)
        layout.addLayout(form)
        self.comment = QPlainTextEdit()
        self.comment.setObjectName("review_comment")
        self.comment.setPlaceholderText("Comment (saved when you leave the box or move on)")
        self.comment.setMaximumHeight(70)
        self.comment.setTabChangesFocus(True)
        layout.addWidget(self.comment)
        self.advance = QCheckBox("Go to the next case after deciding")
        self.advance.setObjectName("review_advance")
        self.advance.setChecked(True)
        layout.addWidget(self.advance)

    def set_reasons(self, reasons: list[str]) -> None:
        current = self.reason_combo.currentText()
        self.reason_combo.blockSignals(True)
        self.reason_combo.clear()
        self.reason_combo.addItems(reasons)
        self.reason_combo.setCurrentIndex(self.reason_combo.findText(current) if current else -1)
        self.reason_combo.blockSignals(False)

    def reasons(self) -> list[str]:
        return [self.reason_combo.itemText(i) for i in range(self.reason_combo.count())]


class CaseInfo(QLabel):
    """Name, state, who decided and when, and the area and object count of the mask on screen."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("review_case_info")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setMinimumHeight(64)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)


def stack(*widgets: QWidget) -> QWidget:
    holder = QWidget()
    layout = QVBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addStretch(1)
    return holder
