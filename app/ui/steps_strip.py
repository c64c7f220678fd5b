"""The strip of clean-up step thumbnails under the Predictions panel's views: a horizontally
scrolling row of checkable buttons, one per watershed step, each showing the step's small RGB
image with its name underneath. Clicking one emits :attr:`StepsStrip.stepClicked` with the
step's name; the panel decides what is shown and checks the matching button.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLayout, QScrollArea, QToolButton, QWidget

from .render import thumbnail

THUMB_SIZE = 80


def to_pixmap(rgb: np.ndarray, size: int) -> QPixmap:
    """An RGB uint8 array as a pixmap whose longer side is ``size`` (nearest-neighbour when enlarging)."""
    small = np.ascontiguousarray(thumbnail(rgb, size))
    h, w = small.shape[:2]
    image = QImage(small.tobytes(), w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    pixmap = QPixmap.fromImage(image)
    if max(h, w) < size:
        pixmap = pixmap.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
    return pixmap


class StepsStrip(QScrollArea):
    """One clickable thumbnail per clean-up step; ``buttons`` are its step buttons in order."""

    stepClicked = Signal(str)  # the name of the step whose button was clicked

    def __init__(self, parent=None):
        super().__init__(parent)
        self.buttons: list[QToolButton] = []
        self.strip = QWidget()
        self.strip_layout = QHBoxLayout(self.strip)
        self.strip_layout.setContentsMargins(2, 2, 2, 2)
        self.strip_layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        self.strip_layout.addStretch(1)
        self.setWidget(self.strip)
        self.setWidgetResizable(True)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumHeight(THUMB_SIZE + 44)

    def set_steps(self, thumbs: list[tuple[str, np.ndarray]], checked: str | None) -> None:
        """One button per ``(name, small RGB)`` (its name underneath); ``checked`` is the step shown."""
        while len(self.buttons) > len(thumbs):
            button = self.buttons.pop()
            self.strip_layout.removeWidget(button)
            button.deleteLater()
        while len(self.buttons) < len(thumbs):
            button = QToolButton()
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.clicked.connect(lambda _checked=False, b=button: self.stepClicked.emit(b.text()))
            self.strip_layout.insertWidget(len(self.buttons), button)
            self.buttons.append(button)
        for button, (name, rgb) in zip(self.buttons, thumbs):
            button.setText(name)
            button.setMinimumWidth(max(THUMB_SIZE, button.fontMetrics().horizontalAdvance(name)) + 14)
            button.setObjectName(f"step_{name.replace(' ', '_')}")
            button.setIcon(QIcon(to_pixmap(rgb, THUMB_SIZE)))
            button.setToolTip(f"{name}: click to show it large in the After view (click again for the result)")
            button.setChecked(name == checked)

    def set_checked(self, name: str | None) -> None:
        """Check the button of step ``name`` only (None: none)."""
        for button in self.buttons:
            button.setChecked(button.text() == name)
