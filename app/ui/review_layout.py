"""The Review panel's widgets: the top bar, banners and job row, the queue | image | controls
splitter and the foot line with the keys. :func:`build_review_layout` stores them on the panel."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QSplitter, QVBoxLayout, QWidget

from .review_canvas import ReviewCanvas
from .review_controls import CaseInfo, DecisionBox, DisplayBox, ToolsBox, stack
from .review_queue import ReviewQueue
from .styles import banner_style

KEYS_HINT = ("A accept · R reject (Alt+1…9 with reason n) · E needs edit · U undecided · ←/→ move · W watershed · "
             "C fill/contour · Space hold to hide · B/X/F/D/V tools · [ ] brush · Ctrl+Z undo")


def build_review_layout(panel) -> None:
    layout = QVBoxLayout(panel)
    layout.setContentsMargins(4, 4, 4, 4)
    bar = QHBoxLayout()
    panel.new_action = QAction("&New review…", panel, triggered=panel.new_review,
                              toolTip="Review predicted masks: from folders, or predicted now by a run's checkpoint")
    panel.open_action = QAction("Open &review…", panel, triggered=panel.open_review_dialog)
    panel.export_action = QAction("&Export review…", panel, triggered=panel.export_review,
                                 toolTip="Write the accepted and corrected masks and the report")
    panel.close_action = QAction("Close review", panel, triggered=panel.close_review)
    for action in (panel.new_action, panel.open_action, panel.export_action, panel.close_action):
        button = QPushButton(action.text().replace("&", ""))
        button.setToolTip(action.toolTip())
        button.clicked.connect(action.trigger)
        action.changed.connect(lambda b=button, a=action: b.setEnabled(a.isEnabled()))
        bar.addWidget(button)
    bar.addStretch(1)
    panel.reviewer_button = QPushButton()
    panel.reviewer_button.setFlat(True)
    panel.reviewer_button.setToolTip("The name recorded with every decision; click to change it")
    panel.reviewer_button.clicked.connect(lambda: panel.ask_reviewer(force=True))
    bar.addWidget(panel.reviewer_button)
    layout.addLayout(bar)
    panel.banner = QLabel()
    panel.banner.setObjectName("review_banner")
    panel.banner.setWordWrap(True)
    panel.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    panel.banner.hide()
    layout.addWidget(panel.banner)
    panel.readonly_label = QLabel("Read-only: this review is open in another SegStudio window. You can look, but "
                                 "decisions and corrections are not possible here. Open it again once it is "
                                 "closed there to make changes.")
    panel.readonly_label.setObjectName("review_readonly")
    panel.readonly_label.setWordWrap(True)
    panel.readonly_label.setStyleSheet(banner_style("warning", "QLabel"))
    panel.readonly_label.hide()
    layout.addWidget(panel.readonly_label)
    panel._render_timer = QTimer(panel)
    panel._render_timer.setSingleShot(True)
    panel._render_timer.timeout.connect(panel.render_now)
    panel._banner_timer = QTimer(panel)
    panel._banner_timer.setSingleShot(True)
    panel._banner_timer.timeout.connect(panel.banner.hide)
    panel.job_row = QWidget()
    row = QHBoxLayout(panel.job_row)
    row.setContentsMargins(0, 0, 0, 0)
    panel.job_label = QLabel()
    panel.job_progress = QProgressBar()
    panel.job_cancel = QPushButton("Cancel")
    panel.job_cancel.clicked.connect(panel.jobs.cancel)
    row.addWidget(panel.job_label)
    row.addWidget(panel.job_progress, 1)
    row.addWidget(panel.job_cancel)
    panel.job_row.hide()
    layout.addWidget(panel.job_row)

    panel.queue = ReviewQueue()
    panel.canvas = ReviewCanvas()
    panel.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    panel.display = DisplayBox()
    panel.tools = ToolsBox()
    panel.decision = DecisionBox()
    panel.info = CaseInfo()
    panel.problems_label = QLabel()
    panel.problems_label.setObjectName("review_problems")
    panel.problems_label.setWordWrap(True)
    panel.problems_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    for button in (list(panel.display.view_buttons.values()) + list(panel.tools.tool_buttons.values())
                   + list(panel.decision.buttons.values())):
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space must never press a button
    side = QScrollArea()
    side.setWidgetResizable(True)
    side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    side.setWidget(stack(panel.info, panel.decision, panel.display, panel.tools, panel.problems_label))
    side.setMinimumWidth(330)
    panel.splitter = QSplitter(Qt.Orientation.Horizontal)
    panel.splitter.addWidget(panel.queue)
    panel.splitter.addWidget(panel.canvas)
    panel.splitter.addWidget(side)
    panel.splitter.setStretchFactor(0, 0)
    panel.splitter.setStretchFactor(1, 1)
    panel.splitter.setStretchFactor(2, 0)
    panel.splitter.setSizes([240, 800, 340])
    layout.addWidget(panel.splitter, 1)
    foot = QHBoxLayout()
    fit = QPushButton("Fit image")
    fit.setToolTip("Show the whole image (Ctrl+0, or double-click with the Navigate tool)")
    fit.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    fit.clicked.connect(lambda: panel.canvas.fit())
    foot.addWidget(fit)
    panel.hover_label = QLabel()
    panel.hover_label.setObjectName("review_hover")
    panel.hover_label.setMinimumWidth(110)
    foot.addWidget(panel.hover_label)
    keys = QLabel(KEYS_HINT)
    keys.setObjectName("review_keys")
    keys.setStyleSheet("color: #6b7075;")
    keys.setWordWrap(True)  # never sets the window's minimum width (every tabbed panel shares it)
    foot.addWidget(keys, 1)
    layout.addLayout(foot)
