"""The Review panel: a clinician's workspace to accept, reject or correct predicted masks.

A queue of cases on the left, the image with its mask in the middle, and on the right what is
shown, the correction tools and the decision. Everything is saved at once by the review's
store; opening, predicting and exporting run in background tasks with a progress bar and a
Cancel button. See :mod:`app.ui.review_actions` for the keys.
"""

from __future__ import annotations

import errno
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QApplication, QComboBox, QInputDialog, QLineEdit,
                               QPlainTextEdit, QWidget)

from app.core.review import ReviewError, ReviewLockedError, ReviewStore, state_label

from .review_actions import build_review_actions
from .review_dialogs import ReviewDialogHooks
from .review_editing import VIEW_COLOURS, CorrectionTools
from .review_jobs import ReviewJobs
from .review_layout import build_review_layout
from .review_queue import STATE_COLOURS
from .review_session import VIEW_LABELS, ReviewSession
from .settings import AppSettings
from .styles import banner_style

REVIEWER_KEY = "review/reviewer"
LAST_OPEN_KEY = "review/last_open"
COMMENT_SAVE_MS = 1000
TEXT_INPUTS = (QPlainTextEdit, QLineEdit, QAbstractSpinBox, QComboBox)  # Space is typed there


class ReviewPanel(ReviewDialogHooks, QWidget):
    """Review a set of predicted masks; ``reviewOpened(path)`` fires when one is on screen."""

    title = "Review"
    reviewOpened = Signal(str)

    def __init__(self, state=None, parent=None):
        super().__init__(parent)
        self.state = state
        self.settings: AppSettings = getattr(parent, "settings", None) or AppSettings()
        self.session = ReviewSession(self)
        self.session.reviewer = str(self.settings.value(REVIEWER_KEY, "") or "")
        self.jobs = ReviewJobs(self)
        self._raw_only = False
        self._render_pending = False
        build_review_layout(self)
        self.editing = CorrectionTools(self)
        self.actions_by_name = build_review_actions(self)
        self._connect()
        self._refresh_all()

    def _connect(self) -> None:
        s = self.session
        s.opened.connect(self._on_opened)
        s.currentChanged.connect(self._on_current)
        s.caseLoaded.connect(self._on_loaded)
        s.caseUpdated.connect(self._on_case_updated)
        s.maskChanged.connect(self.schedule_render)
        s.failed.connect(self.show_error)
        self.queue.activated.connect(self.go_to)
        self.display.viewChosen.connect(self.choose_view)
        self.display.styleChanged.connect(self.schedule_render)
        self.display.cleanup_button.clicked.connect(self.edit_cleanup)
        self.decision.decided.connect(self.decide)
        self.decision.reason_combo.lineEdit().editingFinished.connect(self._reasons_edited)
        self.canvas.hovered.connect(self._hovered)
        for widget in self.findChildren(QAbstractButton):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space and Enter never press a button by accident
        self.decision.comment.installEventFilter(self)
        self._comment_timer = QTimer(self)  # a comment is saved a moment after typing stops, too
        self._comment_timer.setSingleShot(True)
        self._comment_timer.setInterval(COMMENT_SAVE_MS)
        self._comment_timer.timeout.connect(self._save_comment)
        self.decision.comment.textChanged.connect(self._comment_timer.start)

    # -- hooks (dialogs; tests replace them) -------------------------------------------------
    def ask_reviewer(self, force: bool = False) -> str:
        """The reviewer's name, asked once and remembered."""
        if self.session.reviewer and not force:
            return self.session.reviewer
        name, ok = QInputDialog.getText(self, "Reviewer", "Your name, recorded with every decision:",
                                        text=self.session.reviewer)
        if ok and name.strip():
            self.set_reviewer(name.strip())
        return self.session.reviewer

    def set_reviewer(self, name: str) -> None:
        self.session.reviewer = name
        self.settings.set_value(REVIEWER_KEY, name)
        self._refresh_reviewer()

    # -- opening and closing -----------------------------------------------------------------
    def new_review(self) -> None:
        values = self.ask_new_review()
        if values:
            self.jobs.create(values)

    def open_review_dialog(self) -> None:
        folder = self.ask_review_folder()
        if folder:
            self.open_review(folder)

    def open_review(self, folder: str | Path) -> bool:
        """Open a review folder (read-only, after asking, when another window has it open)."""
        current = self.session.store
        if current is not None and current.folder.resolve() == Path(folder).resolve():
            if not current.read_only:
                return True  # already open here
            self.session.set_store(None)  # open read-only here: try for the lock again
        try:
            store = ReviewStore.open(folder)
        except ReviewLockedError as exc:
            if not self.ask_read_only(str(exc)):
                return False
            try:
                store = ReviewStore.open(folder, read_only=True)
            except ReviewError as inner:
                self.show_error(str(inner))
                return False
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                self.show_error(f"Cannot open the review: {exc}")
                return False
            # an archived or shared review this user may read but not change
            if not self.ask_read_only(f"{folder} cannot be written here ({exc.strerror or exc}).",
                                      title="Review folder not writable"):
                return False
            try:
                store = ReviewStore.open(folder, read_only=True)
            except (ReviewError, OSError) as inner:
                self.show_error(f"Cannot open the review: {inner}")
                return False
        except ReviewError as exc:
            self.show_error(f"Cannot open the review: {exc}")
            return False
        self.set_store(store)
        return True

    def set_store(self, store: ReviewStore | None) -> None:
        self._end_stroke_now()
        self._save_comment()
        self.show_error(None)
        self.session.set_store(store)
        if store is not None:
            self.settings.add_recent("reviews", str(store.folder))
            self.readonly_label.setVisible(store.read_only)
            self.reviewOpened.emit(str(store.folder))
            self.canvas.setFocus()

    def close_review(self) -> None:
        self._end_stroke_now()
        self._save_comment()
        self.session.set_store(None)

    def restore_last(self) -> None:
        """Reopen the review that was open when the window last closed (never asks: a review in
        use elsewhere is just not reopened)."""
        folder = str(self.settings.value(LAST_OPEN_KEY, "") or "")
        if not folder or self.session.store is not None or not (Path(folder) / "review.json").is_file():
            return
        try:
            self.set_store(ReviewStore.open(folder))
        except ReviewLockedError:
            self.show_message(f"The review {folder} is open in another window; use File ▸ Open review to look at it "
                              "read-only.", "info")
        except (ReviewError, OSError) as exc:
            self.show_error(f"Cannot reopen the last review: {exc}")

    def shutdown(self) -> None:
        store = self.session.store
        self.settings.set_value(LAST_OPEN_KEY, str(store.folder) if store is not None and not store.read_only else "")
        self._save_comment()
        self.jobs.shutdown()
        self.queue.shutdown()
        self.session.shutdown()

    # -- navigation and decisions ------------------------------------------------------------
    def go_to(self, name: str) -> None:
        self._end_stroke_now()
        self._save_comment()
        self.session.go_to(name)

    def step(self, offset: int) -> None:
        self._end_stroke_now()
        self._save_comment()
        if not self.session.step(offset, self.queue.visible_names()):
            self.show_message("End of the queue." if offset > 0 else "Start of the queue.", "info", 2500)

    def decide(self, state: str, reason: str | None = None) -> None:
        """Record ``state`` for the case on screen (rejections with the reason shown, or ``reason``)."""
        self._end_stroke_now()
        s = self.session
        if s.store is None or s.current is None:
            return
        if s.read_only:
            self.show_message("Read-only: decisions cannot be recorded in this window.", "warning", 3000)
            return
        if s.data is None:
            self.show_message("Still loading this case; decide once it is on screen.", "info", 2500)
            return
        if not self.ask_reviewer():
            self.show_message("A decision needs your name; it was not recorded.", "warning")
            return
        if state == "accepted" and s.working is not None and s.view != "correction":
            choice = self.ask_accept_corrected()
            if choice is None:
                return
            if choice == "correction":
                self.choose_view("correction")
            else:
                s.revert()
        listed = True
        if state == "rejected":
            reason = (reason or self.decision.reason_combo.currentText()).strip()
            if reason:
                listed = self._remember_reason(reason)
        else:
            reason = ""
        saved = s.decide(state, reason, self.decision.comment.toPlainText())
        if saved and listed and self.decision.advance.isChecked() and state != "unreviewed":
            if not s.step(1, self.queue.visible_names()):
                self.show_message("That was the last case in the queue.", "info", 3000)

    def reject_with_reason(self, number: int) -> None:
        """Reject with the ``number``-th reason of the list (Alt+1…9)."""
        reasons = self.decision.reasons()
        if 1 <= number <= len(reasons):
            self.decision.reason_combo.setCurrentIndex(number - 1)
            self.decide("rejected", reasons[number - 1])

    def _save_comment(self) -> None:
        self._comment_timer.stop()
        s = self.session
        if s.store is None or s.current is None or s.read_only:
            return
        text = self.decision.comment.toPlainText()
        if text != s.store.case(s.current).comment and self.ask_reviewer():
            s.set_comment(text)

    def _reasons_edited(self) -> None:
        text = self.decision.reason_combo.currentText().strip()
        if text:
            self._remember_reason(text)

    def _remember_reason(self, reason: str) -> bool:
        """Add a new rejection reason to the list; False (and a message) when it cannot be saved."""
        store = self.session.store
        if store is not None and not store.read_only and reason not in store.record.reasons:
            try:
                store.set_reasons(store.record.reasons + [reason])
            except (OSError, ReviewError) as exc:
                self.show_error(f"The new reason was not added to the list: {exc}")
                return False
            self.decision.set_reasons(store.record.reasons)
            self.decision.reason_combo.setCurrentText(reason)
        return True

    # -- what is shown -----------------------------------------------------------------------
    def choose_view(self, view: str) -> None:
        self.session.set_view(view)
        self._refresh_view_buttons()
        self._refresh_info()

    def edit_cleanup(self) -> bool:
        """Show the clean-up settings and take new ones; the case on screen is cleaned up again and
        shown after watershed."""
        s = self.session
        if s.store is None:
            return False
        params = self.ask_cleanup(s.params, s.store.watershed_exports(), s.read_only)
        if params is None or params == s.params or not s.set_params(params):
            return False
        self.choose_view("watershed")
        return True

    def toggle_watershed(self) -> None:
        self.choose_view("prediction" if self.session.view == "watershed" else "watershed")

    def cycle_overlay_mode(self) -> None:
        combo = self.display.mode_combo
        combo.setCurrentIndex((combo.currentIndex() + 1) % combo.count())

    def set_raw_only(self, raw: bool) -> None:
        """Hide the mask (hold Space) to see the image alone."""
        if raw != self._raw_only:
            self._raw_only = raw
            self.schedule_render()

    def schedule_render(self) -> None:
        if not self._render_pending:  # several changes in one event-loop turn draw once
            self._render_pending = True
            self._render_timer.start(0)

    def overlay_opacity(self) -> float:
        return max(0.05, self.display.opacity.value() / 100)

    def render_now(self) -> None:
        self._render_pending = False
        s = self.session
        mask = s.mask()
        if mask is None or self._raw_only:
            self.canvas.set_layer("mask", None)
        else:
            # the slider's opacity goes into the overlay, so "fill and contour" keeps an opaque outline
            rgba = s.mask_layer().overlay(self.overlay_opacity(), self.display.mode, VIEW_COLOURS.get(s.view),
                                          out=self.canvas.buffer("mask"))  # in place: no new 4096² buffer
            self.canvas.set_layer("mask", rgba, z=20)
        self._refresh_view_buttons()
        self._refresh_info()
        self._refresh_tools()

    # -- correction tools (see review_editing) -----------------------------------------------
    def choose_tool(self, tool: str) -> None:
        self.editing.choose_tool(tool)

    def change_radius(self, delta: int) -> None:
        self.editing.change_radius(delta)

    def _end_stroke_now(self) -> None:
        self.editing.end_stroke()

    def undo(self) -> None:
        self.session.undo()

    def redo(self) -> None:
        self.session.redo()

    def revert(self) -> None:
        self.editing.revert()

    # -- reactions to the session ------------------------------------------------------------
    def _on_opened(self) -> None:
        store = self.session.store
        self.queue.set_store(store)
        if store is not None:
            self.decision.set_reasons(store.record.reasons)
            problems = store.record.problems
            self.problems_label.setText(
                f"<b>Problems ({len(problems)})</b> — left out of the review:<br>"
                + "<br>".join(f"{Path(p['path']).name}: {p['reason']}" for p in problems[:50])
                + ("<br>…" if len(problems) > 50 else "") if problems else "")
        else:
            self.canvas.set_image(None)
            self.canvas.set_layer("mask", None)
            self.problems_label.setText("")
            self.readonly_label.hide()
        self._refresh_all()

    def _on_current(self, name: str) -> None:
        self.queue.select(name)
        case = self.session.store.case(name)
        self.decision.comment.blockSignals(True)
        self.decision.comment.setPlainText(case.comment)
        self.decision.comment.blockSignals(False)
        reasons = self.decision.reasons()
        if case.state == "rejected" and case.reason:
            self.decision.reason_combo.setCurrentText(case.reason)
        elif reasons:
            self.decision.reason_combo.setCurrentIndex(-1)  # no reason until the reviewer picks one
        self.show_error(None)
        self._refresh_info()

    def _on_loaded(self, name: str) -> None:
        self.canvas.set_image(self.session.display_image)
        self.schedule_render()

    def _on_case_updated(self, name: str) -> None:
        self.queue.update_case(name)
        self.queue.refresh_thumbnail(name)
        self._refresh_info()
        self._refresh_tools()

    # -- refreshing --------------------------------------------------------------------------
    def _refresh_all(self) -> None:
        self._refresh_reviewer()
        self._refresh_view_buttons()
        self._refresh_info()
        self._refresh_tools()
        has, writable = self.session.store is not None, not self.session.read_only
        self.export_action.setEnabled(has)
        self.close_action.setEnabled(has)
        self.display.cleanup_button.setEnabled(has)  # read-only: shown, not changeable
        for button in self.decision.buttons.values():
            button.setEnabled(writable)
        self.decision.comment.setReadOnly(not writable)
        self.decision.reason_combo.setEnabled(writable)
        for tool, button in self.tools.tool_buttons.items():
            button.setEnabled(writable or tool == "navigate")
        if not writable and self.canvas.tool != "navigate":
            self.choose_tool("navigate")

    def _refresh_reviewer(self) -> None:
        name = self.session.reviewer
        self.reviewer_button.setText(f"Reviewer: {name}" if name else "Reviewer: (not set)")

    def _refresh_view_buttons(self) -> None:
        self.display.show_view(self.session.view, self.session.working is not None)

    def _refresh_tools(self) -> None:
        s = self.session
        editing = not s.read_only and s.data is not None
        self.tools.undo_button.setEnabled(editing and s.history.can_undo)
        self.tools.redo_button.setEnabled(editing and s.history.can_redo)
        self.tools.revert_button.setEnabled(editing and s.working is not None)

    def _refresh_info(self) -> None:
        s = self.session
        if s.store is None:
            self.info.setText("<b>No review open.</b><br>File ▸ New review… to review predicted masks, or "
                              "File ▸ Open review… to go on with one.")
            return
        if s.current is None:
            self.info.setText("")
            return
        case = s.store.case(s.current)
        names = s.names()
        colour = STATE_COLOURS[case.state]
        lines = [f"<b style='font-size:11pt'>{case.name}</b> &nbsp; {names.index(case.name) + 1} of {len(names)}"
                 f" &nbsp; <span style='color:{self.palette().color(QPalette.ColorRole.PlaceholderText).name()}'>"
                 f"{Path(case.image).name}</span>",
                 f"<span style='color:{colour}'><b>{state_label(case.state)}</b></span>"
                 + (f" — {case.reason}" if case.reason else "")
                 + (f" &nbsp;·&nbsp; {case.reviewer}, {case.decided_at.replace('T', ' ')[:16]}" if case.decided_at else "")]
        stats = s.stats()
        if stats is None:
            lines.append("Loading…")
        else:
            area, objects = stats
            total = s.data.prediction.size
            lines.append(f"{VIEW_LABELS[s.view]}: area {area:,} px ({100 * area / max(1, total):.1f} %), "
                         f"{objects} object{'s' if objects != 1 else ''}")
            kept = s.cleanup_kept(area)
            if kept is not None and kept < 0.5:
                if s.read_only:
                    hint = "this review is read-only"
                elif s.store.watershed_exports():
                    hint = "its settings are locked while accepted cases export the watershed mask"
                else:
                    hint = "a lower foreground fraction in Clean-up settings… keeps more"
                lines.append(f"<span style='color:#b35c00'>The clean-up keeps {kept:.0%} of the predicted area: "
                             f"check it before accepting ({hint}).</span>")
        self.info.setText("<br>".join(lines))

    def _hovered(self, x: int, y: int) -> None:
        self.hover_label.setText(f"x {x}, y {y}" if x >= 0 else "")

    # -- messages ----------------------------------------------------------------------------
    def show_error(self, message: str | None) -> None:
        self.show_message(message, "error")

    def show_message(self, message: str | None, kind: str = "info", timeout_ms: int = 0) -> None:
        self.banner.setText(message or "")
        self.banner.setStyleSheet(banner_style(kind, "QLabel"))
        self.banner.setVisible(bool(message))
        self._banner_timer.stop()
        if message and timeout_ms:
            self._banner_timer.start(timeout_ms)  # owned by the panel: never fires after it is gone

    # -- export ------------------------------------------------------------------------------
    def export_review(self) -> None:
        if self.session.store is None:
            return
        self._save_comment()
        choice = self.ask_export()
        if choice:
            folder, fmt = choice
            self.settings.set_value("review/export_folder", folder)
            self.jobs.export(folder, fmt)

    # -- keys --------------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        QApplication.instance().installEventFilter(self)  # Space (hold to hide) wherever the focus is

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt naming
        QApplication.instance().removeEventFilter(self)
        self.set_raw_only(False)
        super().hideEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        kind = event.type()
        if watched is self.decision.comment:
            if kind == QEvent.Type.FocusOut:
                self._save_comment()
            return False
        if kind not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) or event.key() != Qt.Key.Key_Space:
            return False
        focus = QApplication.focusWidget()
        if focus is None or not (focus is self or self.isAncestorOf(focus)) or isinstance(focus, TEXT_INPUTS) \
                or not isinstance(watched, QWidget) or watched is not focus:
            return False
        if not event.isAutoRepeat():
            self.set_raw_only(kind == QEvent.Type.KeyPress)
        return True
