"""The review's image view: the case with its mask overlaid, and the correction tools.

Tools: navigate (drag pans), brush and eraser (drag paints; the brush outline follows the
pointer), fill a hole and remove an object (one click). The canvas only turns mouse input
into image coordinates; the :class:`~app.ui.review_session.ReviewSession` edits the mask.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem

from .image_view import ImageCanvas

TOOLS = ("navigate", "brush", "eraser", "fill", "remove")
TOOL_LABELS = {"navigate": "Navigate", "brush": "Brush", "eraser": "Eraser", "fill": "Fill hole",
               "remove": "Remove object"}
TOOL_KEYS = {"navigate": "V", "brush": "B", "eraser": "X", "fill": "F", "remove": "D"}


class ReviewCanvas(ImageCanvas):
    """Emits image coordinates: ``strokeStarted/strokeMoved/strokeEnded`` for brush and
    eraser drags, ``clicked`` for the one-click tools."""

    strokeStarted = Signal(float, float)
    strokeMoved = Signal(float, float)
    strokeEnded = Signal()
    clicked = Signal(str, int, int)  # tool, x, y
    hovered = Signal(int, int)  # pixel under the pointer (-1, -1 outside the image)

    def __init__(self, parent=None):
        super().__init__("", parent)
        self.tool = "navigate"
        self.brush_radius = 4
        self._stroking = False
        self.setMouseTracking(True)
        self.cursor_item = QGraphicsEllipseItem()
        pen = QPen(QColor(255, 255, 255, 220))
        pen.setCosmetic(True)
        pen.setWidthF(1.2)
        self.cursor_item.setPen(pen)
        self.cursor_item.setZValue(100)
        self.cursor_item.hide()
        self.view.addItem(self.cursor_item, ignoreBounds=True)

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; valid: {', '.join(TOOLS)}")
        if self._stroking:
            self._finish_stroke()
        self.tool = tool
        self.setCursor(Qt.CursorShape.OpenHandCursor if tool == "navigate" else Qt.CursorShape.CrossCursor)
        self.cursor_item.setVisible(False)

    def set_brush_radius(self, radius: int) -> None:
        self.brush_radius = max(0, int(radius))

    # -- mouse -------------------------------------------------------------------------------
    def image_point(self, position) -> QPointF:
        """Widget coordinates → image coordinates (pixel centres at whole numbers)."""
        scene = self.mapToScene(position.toPoint() if hasattr(position, "toPoint") else position)
        point = self.view.mapSceneToView(scene)
        return QPointF(point.x() - 0.5, point.y() - 0.5)

    def _in_image(self, point: QPointF) -> bool:
        image = self.image()
        return image is not None and -0.5 <= point.x() < image.shape[1] - 0.5 and \
            -0.5 <= point.y() < image.shape[0] - 0.5

    def _update_cursor(self, point: QPointF) -> None:
        painting = self.tool in ("brush", "eraser") and self.image() is not None
        if painting:
            r = self.brush_radius + 0.5
            self.cursor_item.setRect(point.x() + 0.5 - r, point.y() + 0.5 - r, 2 * r, 2 * r)
        self.cursor_item.setVisible(painting)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if event.button() == Qt.MouseButton.LeftButton and self.tool != "navigate" and self.image() is not None:
            point = self.image_point(event.position())
            if self.tool in ("brush", "eraser"):
                self._stroking = True
                self.strokeStarted.emit(point.x(), point.y())
            elif self._in_image(point):
                self.clicked.emit(self.tool, round(point.x()), round(point.y()))
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt naming
        point = self.image_point(event.position())
        self._update_cursor(point)
        self.hovered.emit(*((round(point.x()), round(point.y())) if self._in_image(point) else (-1, -1)))
        if self._stroking:
            self.strokeMoved.emit(point.x(), point.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if self._stroking and event.button() == Qt.MouseButton.LeftButton:
            self._finish_stroke()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if self.tool != "navigate" and event.button() == Qt.MouseButton.LeftButton:
            event.accept()  # a quick second click paints; fitting is for the navigate tool and the F key
            return
        super().mouseDoubleClickEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self.cursor_item.hide()
        self.hovered.emit(-1, -1)
        super().leaveEvent(event)

    def _finish_stroke(self) -> None:
        self._stroking = False
        self.strokeEnded.emit()
