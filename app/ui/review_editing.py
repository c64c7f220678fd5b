"""Mask correction in the Review panel: tool choice, brush and eraser strokes (drawn piece by
piece while the pointer moves), one-click fill and remove, undo, redo and revert.

:class:`CorrectionTools` turns the canvas's pointer signals into edits of the
:class:`~app.ui.review_session.ReviewSession`; the panel owns one and forwards its actions.
"""

from __future__ import annotations

from app.core.review.edit import fill_hole, remove_object

from .render import mask_overlay

VIEW_COLOURS = {"prediction": (255, 80, 80), "correction": (64, 200, 255)}  # watershed: one colour per object


class CorrectionTools:
    """The correction tools of ``panel`` (its canvas, tools box, session and messages)."""

    def __init__(self, panel):
        self.panel = panel
        self.session, self.canvas, self.tools = panel.session, panel.canvas, panel.tools
        self._stroke_active = False
        self._stroke_case: str | None = None
        self._last_point = (0.0, 0.0)
        self.canvas.strokeStarted.connect(self._stroke_started)
        self.canvas.strokeMoved.connect(self._stroke_moved)
        self.canvas.strokeEnded.connect(self.end_stroke)
        self.canvas.clicked.connect(self._clicked)
        self.tools.toolChosen.connect(self.choose_tool)
        self.tools.radiusChanged.connect(self.canvas.set_brush_radius)
        self.tools.undo_button.clicked.connect(self.session.undo)
        self.tools.redo_button.clicked.connect(self.session.redo)
        self.tools.revert_button.clicked.connect(self.revert)

    def choose_tool(self, tool: str) -> None:
        if tool != "navigate" and self.session.read_only and self.session.store is not None:
            self.panel.show_message("Read-only: corrections are not possible in this window.", "warning", 3000)
            tool = "navigate"
        self.canvas.set_tool(tool)
        self.tools.show_tool(tool)

    def change_radius(self, delta: int) -> None:
        value = self.tools.radius.value()
        self.tools.radius.setValue(value + delta * max(1, value // 5))

    def _editable(self) -> bool:
        if self.session.read_only or self.session.data is None:
            return False
        return bool(self.panel.ask_reviewer())

    def end_stroke(self) -> None:
        """Finish a stroke in progress on its own case (before anything moves to another)."""
        self.canvas._stroking = False
        if self._stroke_active:
            self._stroke_active = False
            if self.session.current == self._stroke_case:
                self.session.end_edit(redraw=False)  # render_region kept the overlay up to date

    def _stroke_started(self, x: float, y: float) -> None:
        self._stroke_active = self._editable() and self.session.begin_edit()
        self._stroke_case = self.session.current
        if self._stroke_active:
            self._last_point = (x, y)
            self.panel.render_now()  # the view switches to the correction
            self.render_region(self.session.stroke([(x, y)], self.tools.radius.value(), self.canvas.tool == "brush"))

    def _stroke_moved(self, x: float, y: float) -> None:
        if self._stroke_active and self.session.current == self._stroke_case:
            box = self.session.stroke([self._last_point, (x, y)], self.tools.radius.value(), self.canvas.tool == "brush")
            self._last_point = (x, y)
            self.render_region(box)

    def render_region(self, box) -> None:
        """Redraw only ``box`` of the overlay while a stroke goes on (a whole redraw of a large
        image per pointer move would lag behind the pointer)."""
        rgba = self.canvas.layer("mask")
        mask = self.session.mask()
        if box is None or rgba is None or mask is None or rgba.shape[:2] != mask.shape:
            self.panel.schedule_render()
            return
        h, w = mask.shape
        # an outline pixel depends on its neighbours: the pixels one beyond the painted box can
        # change too, and drawing them right needs one more around them (cut off afterwards)
        x0, y0, x1, y1 = max(0, box[0] - 1), max(0, box[1] - 1), min(w, box[2] + 1), min(h, box[3] + 1)
        X0, Y0, X1, Y1 = max(0, x0 - 1), max(0, y0 - 1), min(w, x1 + 1), min(h, y1 + 1)
        part = mask_overlay(mask[Y0:Y1, X0:X1], self.panel.overlay_opacity(), self.panel.display.mode,
                            VIEW_COLOURS.get(self.session.view))
        rgba[y0:y1, x0:x1] = part[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0]
        self.canvas.set_layer("mask", rgba)  # area and objects are counted when the stroke ends

    def _clicked(self, tool: str, x: int, y: int) -> None:
        if not self._editable():
            return
        operation = fill_hole if tool == "fill" else remove_object
        if not self.session.edit(operation, x, y):
            what = "no enclosed hole there" if tool == "fill" else "no object there"
            self.panel.show_message(f"Nothing changed: {what}.", "info", 2500)

    def revert(self) -> None:
        if self._editable() and self.session.working is not None and self.panel.ask_revert():
            self.session.revert()
