"""Correcting a binary mask: brush and eraser strokes, filling holes, removing an object,
with undo and redo. Masks are uint8 0/1, edited in place; coordinates are (x, y) pixels."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

HISTORY_LIMIT = 64


def paint_stroke(mask: np.ndarray, points: Sequence[tuple[float, float]], radius: int, value: int) -> None:
    """Paint (``value`` 1) or erase (0) a round brush of ``radius`` along ``points``."""
    if not len(points):
        return
    radius = max(0, int(radius))
    value = 1 if value else 0
    pts = [(int(round(x)), int(round(y))) for x, y in points]
    # OpenCV draws a thick line as a swept disc of radius thickness/2, so a brush of radius r
    # is a line of thickness 2r (2r + 1 painted one pixel beyond the brush on each side).
    for start, end in zip(pts, pts[1:]):
        cv2.line(mask, start, end, value, thickness=max(1, 2 * radius), lineType=cv2.LINE_8)
    for point in (pts[0], pts[-1]):  # round ends (a line of thickness 1 has none)
        cv2.circle(mask, point, radius, value, thickness=-1, lineType=cv2.LINE_8)


def _inside(mask: np.ndarray, x: int, y: int) -> bool:
    return 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1]


def fill_hole(mask: np.ndarray, x: int, y: int) -> bool:
    """Fill the hole at (x, y): a background region that does not reach the image border.
    Clicked on an object instead, fill every hole inside that object. True if anything changed."""
    x, y = int(x), int(y)
    if not _inside(mask, x, y):
        return False
    if mask[y, x]:
        _, objects = cv2.connectedComponents(mask, connectivity=8)
        target = (objects == objects[y, x]).view(np.uint8)
        region = _enclosed_background(target)
        region &= mask == 0
    else:
        _, background = cv2.connectedComponents((mask == 0).view(np.uint8), connectivity=4)
        region = background == background[y, x]
        if region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any():
            return False  # open to the border: background, not a hole
    if not region.any():
        return False
    mask[region] = 1
    return True


def _enclosed_background(obj: np.ndarray) -> np.ndarray:
    """Background pixels of ``obj`` (0/1) that the border cannot reach (its holes)."""
    framed = cv2.copyMakeBorder(obj, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    flood = framed.copy()
    cv2.floodFill(flood, None, (0, 0), 1)  # reach every background pixel open to the outside
    return (flood[1:-1, 1:-1] == 0)


def remove_object(mask: np.ndarray, x: int, y: int) -> bool:
    """Remove the 8-connected object under (x, y); True if there was one."""
    x, y = int(x), int(y)
    if not _inside(mask, x, y) or not mask[y, x]:
        return False
    _, objects = cv2.connectedComponents(mask, connectivity=8)
    mask[objects == objects[y, x]] = 0
    return True


class EditHistory:
    """Undo and redo for one mask: snapshots taken before each edit (at most ``limit``)."""

    def __init__(self, limit: int = HISTORY_LIMIT):
        self.limit = limit
        self._undo: list[np.ndarray] = []
        self._redo: list[np.ndarray] = []

    def record(self, before: np.ndarray) -> None:
        """Call with a copy of the mask as it was before an edit."""
        self._undo.append(before.copy())
        del self._undo[:-self.limit]
        self._redo.clear()

    def undo(self, current: np.ndarray) -> np.ndarray | None:
        """The mask before the last edit (None when there is nothing to undo)."""
        if not self._undo:
            return None
        self._redo.append(current.copy())
        return self._undo.pop()

    def redo(self, current: np.ndarray) -> np.ndarray | None:
        if not self._redo:
            return None
        self._undo.append(current.copy())
        return self._redo.pop()

    def discard_last(self) -> np.ndarray | None:
        """Forget the last snapshot (its edit changed nothing) and return it; redo is kept."""
        return self._undo.pop() if self._undo else None

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
