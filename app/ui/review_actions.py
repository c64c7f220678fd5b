"""The review workspace's keyboard: one key per decision, tool and view, arrows to move.

Single-letter keys act only while the focus is in the review panel and not in a text box
(a text box takes the letters it is typed), so a whole set can be reviewed from the keyboard.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from .review_canvas import TOOL_KEYS, TOOL_LABELS
from .review_controls import DECISIONS, VIEW_KEYS
from .review_session import VIEW_LABELS


def _action(panel, text: str, keys, slot, tip: str = "") -> QAction:
    action = QAction(text, panel)
    sequences = [QKeySequence(k) if isinstance(k, str) else QKeySequence(k) for k in
                 (keys if isinstance(keys, (list, tuple)) else [keys])]
    action.setShortcuts(sequences)
    action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    action.triggered.connect(slot)
    if tip:
        action.setToolTip(tip)
    panel.addAction(action)
    return action


def build_review_actions(panel) -> dict[str, QAction]:
    """Create the panel's keyboard actions (also listed in Help ▸ Keyboard shortcuts)."""
    actions: dict[str, QAction] = {}
    for state, label, key, _colour in DECISIONS:
        actions[state] = _action(panel, f"Review: {label}", key, lambda _=False, s=state: panel.decide(s))
        actions[state].setAutoRepeat(False)  # holding A must not accept cases unseen
    for number in range(1, 10):
        actions[f"reason_{number}"] = _action(panel, f"Review: reject with reason {number}", f"Alt+{number}",
                                              lambda _=False, n=number: panel.reject_with_reason(n))
        actions[f"reason_{number}"].setAutoRepeat(False)
    actions["next"] = _action(panel, "Review: next case", [QKeySequence(Qt.Key.Key_Right), QKeySequence("N")],
                              lambda: panel.step(1))
    actions["previous"] = _action(panel, "Review: previous case", [QKeySequence(Qt.Key.Key_Left), QKeySequence("P")],
                                  lambda: panel.step(-1))
    for tool, key in TOOL_KEYS.items():
        actions[f"tool_{tool}"] = _action(panel, f"Review: {TOOL_LABELS[tool].lower()} tool", key,
                                          lambda _=False, t=tool: panel.choose_tool(t))
    for view, key in VIEW_KEYS.items():
        actions[f"view_{view}"] = _action(panel, f"Review: show {VIEW_LABELS[view].lower()}", key,
                                          lambda _=False, v=view: panel.choose_view(v))
    actions["toggle_view"] = _action(panel, "Review: prediction / after watershed", "W", panel.toggle_watershed)
    actions["cycle_mode"] = _action(panel, "Review: fill / contour", "C", panel.cycle_overlay_mode)
    actions["smaller"] = _action(panel, "Review: smaller brush", "[", lambda: panel.change_radius(-1))
    actions["larger"] = _action(panel, "Review: larger brush", "]", lambda: panel.change_radius(1))
    actions["undo"] = _action(panel, "Review: undo correction", QKeySequence.StandardKey.Undo, panel.undo)
    actions["redo"] = _action(panel, "Review: redo correction",
                              [QKeySequence.StandardKey.Redo, QKeySequence("Ctrl+Shift+Z")], panel.redo)
    actions["fit"] = _action(panel, "Review: fit image", "Ctrl+0", lambda: panel.canvas.fit())
    actions["comment"] = _action(panel, "Review: write a comment", "Ctrl+M", lambda: panel.decision.comment.setFocus())
    return actions
