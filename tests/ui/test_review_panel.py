"""The review workspace: keyboard-only review, brush correction, undo/redo, resume after
re-opening, the lock, hold-to-hide, export."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.core.review import ReviewStore
from app.core.review.edit import paint_stroke
from app.ui.render import mask_overlay
from app.ui.review_editing import VIEW_COLOURS
from app.ui.review_panel import ReviewPanel
from app.ui.styles import banner_style

WAIT = 20000
SIZE = 32
NAMES = ("a", "b", "c", "d")


def _mask(i: int) -> np.ndarray:
    """A 12×12 square object with a 2×2 hole, and a small separate blob."""
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[4 + i:16 + i, 4:16] = 255
    mask[9 + i:11 + i, 9:11] = 0
    mask[24:27, 24:27] = 255
    return mask


@pytest.fixture
def sources(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "predicted"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i, name in enumerate(NAMES):
        Image.fromarray(rng.integers(0, 255, (SIZE, SIZE), dtype=np.uint8)).save(images / f"{name}.png")
        Image.fromarray(_mask(i)).save(masks / f"{name}.png")
    return images, masks


@pytest.fixture
def review_dir(sources, tmp_path):
    folder = tmp_path / "review"
    ReviewStore.create_from_folders(folder, *sources).close()
    return folder


def make_panel(qtbot, reviewer="Dr Test"):
    panel = ReviewPanel(None)
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.ask_revert = lambda: True
    panel.ask_accept_corrected = lambda: pytest.fail("unexpected question: accept which mask?")
    if reviewer:
        panel.set_reviewer(reviewer)
    return panel


@pytest.fixture
def panel(qtbot):
    widget = make_panel(qtbot)
    yield widget
    widget.shutdown()


def open_and_wait(qtbot, panel, folder, name=None):
    assert panel.open_review(folder)
    wait_loaded(qtbot, panel, name)


def wait_loaded(qtbot, panel, name=None):
    qtbot.waitUntil(lambda: panel.session.data is not None and (name is None or panel.session.data.name == name),
                    timeout=WAIT)
    QApplication.processEvents()
    panel.render_now()


def activate(qtbot, panel):
    with qtbot.waitActive(panel):
        panel.show()
        panel.activateWindow()
    panel.canvas.setFocus()


def key(qtbot, panel, k, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(panel.canvas, k, modifier)


def on_disk(folder):
    store = ReviewStore.open(folder, read_only=True)
    return {c.name: c for c in store.cases}, store.record


def widget_point(canvas, x: float, y: float) -> QPoint:
    scene = canvas.view.mapViewToScene(QPointF(x + 0.5, y + 0.5))
    return canvas.mapFromScene(scene)


def mouse(canvas, kind, point: QPoint, buttons=Qt.MouseButton.LeftButton):
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    held = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else buttons
    event = QMouseEvent(kind, QPointF(point), QPointF(canvas.viewport().mapToGlobal(point)), button, held,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(canvas.viewport(), event)


def drag(canvas, points):
    wp = [widget_point(canvas, x, y) for x, y in points]
    mouse(canvas, QEvent.Type.MouseButtonPress, wp[0])
    for p in wp[1:]:
        mouse(canvas, QEvent.Type.MouseMove, p)
    mouse(canvas, QEvent.Type.MouseButtonRelease, wp[-1])


def click(canvas, x, y):
    p = widget_point(canvas, x, y)
    mouse(canvas, QEvent.Type.MouseButtonPress, p)
    mouse(canvas, QEvent.Type.MouseButtonRelease, p)


def test_opening_shows_first_case_with_its_mask_and_stats(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    assert panel.session.current == "a"
    assert panel.canvas.image().shape == (SIZE, SIZE, 3)
    layer = panel.canvas.layer("mask")
    assert layer is not None and layer.shape == (SIZE, SIZE, 4)
    assert np.array_equal(layer[..., 3] > 0, _mask(0) > 0)  # fill and contour cover exactly the mask
    area = int(np.count_nonzero(_mask(0)))
    assert f"area {area:,} px" in panel.info.text() and "2 objects" in panel.info.text()
    assert panel.queue.progress_label.text().startswith("0 of 4 reviewed")
    assert panel.queue.list.count() == 4


def test_keyboard_only_review_of_a_small_set(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    activate(qtbot, panel)
    key(qtbot, panel, Qt.Key.Key_A)  # accept a → b
    wait_loaded(qtbot, panel, "b")
    key(qtbot, panel, Qt.Key.Key_R)  # reject b (no reason picked: none recorded) → c
    wait_loaded(qtbot, panel, "c")
    key(qtbot, panel, Qt.Key.Key_E)  # c needs edit → d
    wait_loaded(qtbot, panel, "d")
    key(qtbot, panel, Qt.Key.Key_Left)  # back to c
    wait_loaded(qtbot, panel, "c")
    key(qtbot, panel, Qt.Key.Key_Right)
    wait_loaded(qtbot, panel, "d")
    key(qtbot, panel, Qt.Key.Key_W)  # after watershed, then accept: the watershed mask is what was accepted
    assert panel.session.view == "watershed"
    key(qtbot, panel, Qt.Key.Key_A)
    cases, record = on_disk(review_dir)
    assert [cases[n].state for n in NAMES] == ["accepted", "rejected", "needs_edit", "accepted"]
    assert cases["b"].reason == ""  # "Poor boundary" was recorded though nobody chose it
    assert {cases[n].reviewer for n in NAMES} == {"Dr Test"}
    assert cases["d"].variant == "watershed" and cases["a"].variant == "prediction"
    assert all(cases[n].decided_at for n in NAMES)
    assert panel.queue.progress_label.text().startswith("3 of 4 reviewed")
    # filter: only the cases still to decide
    panel.queue.set_filter("open")
    assert panel.queue.visible_names() == ["c", "d"]  # the case on screen stays listed
    panel.queue.set_filter("rejected")
    assert "b" in panel.queue.visible_names() and "a" not in panel.queue.visible_names()


def test_typing_a_comment_does_not_trigger_decision_keys(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    activate(qtbot, panel)
    panel.decision.comment.setFocus()
    qtbot.keyClicks(panel.decision.comment, "Area ok")
    assert panel.session.current == "a" and panel.decision.comment.toPlainText() == "Area ok"
    panel.canvas.setFocus()  # leaving the box saves the comment
    cases, _ = on_disk(review_dir)
    assert cases["a"].comment == "Area ok" and cases["a"].state == "unreviewed"


def test_brush_stroke_produces_the_expected_pixels_and_is_saved(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    activate(qtbot, panel)
    panel.choose_tool("brush")
    panel.tools.radius.setValue(1)
    drag(panel.canvas, [(20, 22), (24, 22), (28, 22)])
    expected = (_mask(0) > 0).astype(np.uint8)
    paint_stroke(expected, [(20, 22), (24, 22), (28, 22)], 1, 1)
    assert np.array_equal(panel.session.working, expected)
    saved = Image.open(review_dir / "corrections" / "a.png")
    assert saved.mode == "1"  # a 1-bit PNG: fast to write after every stroke; 0/255 to other programs
    assert np.array_equal(np.asarray(saved.convert("L")), expected * 255)
    # the overlay drawn piece by piece during the stroke is exactly the whole mask's overlay
    overlay = mask_overlay(expected, panel.overlay_opacity(), panel.display.mode, VIEW_COLOURS["correction"])
    assert np.array_equal(panel.canvas.layer("mask"), overlay)
    cases, _ = on_disk(review_dir)
    assert cases["a"].state == "corrected" and cases["a"].corrected == "corrections/a.png"
    assert cases["a"].area == int(expected.sum())
    assert panel.session.view == "correction"
    assert f"area {int(expected.sum()):,} px" in panel.info.text()
    # the eraser removes what the brush painted
    panel.choose_tool("eraser")
    drag(panel.canvas, [(20, 22), (28, 22)])
    erased = expected.copy()
    paint_stroke(erased, [(20, 22), (28, 22)], 1, 0)
    assert np.array_equal(panel.session.working, erased)
    assert np.array_equal(panel.canvas.layer("mask"),
                          mask_overlay(erased, panel.overlay_opacity(), panel.display.mode, VIEW_COLOURS["correction"]))


def test_a_stroke_leaves_the_outline_overlay_exactly_as_a_whole_redraw(qtbot, panel, review_dir):
    """The stroke is drawn piece by piece and not redrawn at its end: the outline pixels just
    beyond the painted box must be right too (a point at x 1.6 paints up to x 3)."""
    open_and_wait(qtbot, panel, review_dir, "a")
    activate(qtbot, panel)
    panel.display.mode_combo.setCurrentIndex(panel.display.mode_combo.findData("contour"))
    assert panel.display.mode == "contour"
    panel.choose_tool("brush")
    panel.tools.radius.setValue(1)
    expected = (_mask(0) > 0).astype(np.uint8)
    for start, end in (((1.6, 6.0), (1.6, 12.0)), ((20.4, 2.5), (27.6, 2.5)), ((30.5, 30.5), (30.5, 30.5))):
        panel.editing._stroke_started(*start)
        panel.editing._stroke_moved(*end)
        panel.editing.end_stroke()
        paint_stroke(expected, [start], 1, 1)
        paint_stroke(expected, [start, end], 1, 1)
        assert np.array_equal(panel.session.working, expected)
        whole = mask_overlay(expected, panel.overlay_opacity(), "contour", VIEW_COLOURS["correction"])
        assert np.argwhere((panel.canvas.layer("mask") != whole).any(-1)).tolist() == []


def test_fill_and_contour_shows_an_opaque_outline_over_a_translucent_fill(qtbot, panel, review_dir):
    """The default overlay drew exactly what "Fill" draws: one alpha inside and on the outline."""
    open_and_wait(qtbot, panel, review_dir, "a")
    panel.display.mode_combo.setCurrentIndex(panel.display.mode_combo.findData("both"))
    panel.render_now()
    alpha = panel.canvas.layer("mask")[..., 3]
    levels = sorted(set(np.unique(alpha).tolist()) - {0})
    assert len(levels) == 2 and levels[0] == round(255 * panel.overlay_opacity()) and levels[1] >= 229
    panel.display.opacity.setValue(80)
    panel.render_now()
    assert round(255 * 0.8) in np.unique(panel.canvas.layer("mask")[..., 3])


def test_undo_redo_and_revert(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    activate(qtbot, panel)
    original = (_mask(0) > 0).astype(np.uint8)
    panel.choose_tool("fill")
    click(panel.canvas, 9, 9)  # the square's hole
    filled = original.copy()
    filled[9:11, 9:11] = 1
    assert np.array_equal(panel.session.working, filled)
    panel.choose_tool("remove")
    click(panel.canvas, 25, 25)  # the small blob
    removed = filled.copy()
    removed[24:27, 24:27] = 0
    assert np.array_equal(panel.session.working, removed)
    assert "1 object" in panel.info.text()
    key(qtbot, panel, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(panel.session.working, filled)
    key(qtbot, panel, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # every edit undone: no correction
    assert panel.session.working is None
    cases, _ = on_disk(review_dir)
    assert cases["a"].state == "unreviewed" and not cases["a"].corrected
    assert not (review_dir / "corrections" / "a.png").exists()
    key(qtbot, panel, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(panel.session.working, filled)
    key(qtbot, panel, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(panel.session.working, removed)
    assert np.array_equal(np.asarray(Image.open(review_dir / "corrections" / "a.png")) > 0, removed > 0)
    panel.revert()
    cases, _ = on_disk(review_dir)
    assert panel.session.working is None and cases["a"].state == "unreviewed"
    # a click on background open to the border changes nothing and says so
    panel.choose_tool("fill")
    click(panel.canvas, 1, 1)
    assert panel.session.working is None and "Nothing changed" in panel.banner.text()


def test_resume_after_reopening_restores_decisions_comment_correction_and_position(qtbot, review_dir):
    first = make_panel(qtbot)
    open_and_wait(qtbot, first, review_dir, "a")
    first.decide("accepted")
    wait_loaded(qtbot, first, "b")
    first.decision.comment.setPlainText("check the left edge")
    first.choose_tool("brush")
    drag(first.canvas, [(2, 2)])
    first.step(1)
    wait_loaded(qtbot, first, "c")
    corrected = first.session.store.case("b")
    first.shutdown()  # closes the review and releases its lock

    second = make_panel(qtbot, reviewer="")
    open_and_wait(qtbot, second, review_dir, "c")
    assert second.session.current == "c"
    store = second.session.store
    assert store.case("a").state == "accepted"
    assert store.case("b").state == "corrected" and store.case("b").comment == "check the left edge"
    assert store.case("b").corrected == corrected.corrected
    second.go_to("b")
    wait_loaded(qtbot, second, "b")
    assert second.session.view == "correction" and second.session.working[2, 2] == 1
    assert second.decision.comment.toPlainText() == "check the left edge"
    second.shutdown()


def test_a_review_folder_that_cannot_be_written_opens_read_only_after_asking(qtbot, panel, review_dir,
                                                                            monkeypatch):
    """An archived review (readable, not writable) could not be opened at all: 'Permission denied:
    review.lock'. (Root ignores permissions, so the lock's refusal is simulated.)"""
    from app.core.review.lock import ReviewLock

    before = {p.name: p.read_bytes() for p in review_dir.iterdir() if p.is_file()}
    monkeypatch.setattr(ReviewLock, "acquire", lambda self: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied", str(review_dir / "review.lock"))))
    asked = []
    panel.ask_read_only = lambda message, title="": asked.append((title, message)) or False
    assert not panel.open_review(review_dir) and panel.session.store is None
    assert asked[0][0] == "Review folder not writable" and "cannot be written here (Permission denied)" in asked[0][1]
    panel.ask_read_only = lambda message, title="": True
    assert panel.open_review(review_dir)
    wait_loaded(qtbot, panel, "a")
    assert panel.session.read_only and not panel.decision.buttons["accepted"].isEnabled()
    assert {p.name: p.read_bytes() for p in review_dir.iterdir() if p.is_file()} == before


def test_second_window_opens_read_only_or_not_at_all(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    other = make_panel(qtbot)
    asked = []
    other.ask_read_only = lambda message: asked.append(message) or False
    assert not other.open_review(review_dir)
    assert other.session.store is None and "already open" in asked[0]
    other.ask_read_only = lambda message: True
    assert other.open_review(review_dir)
    wait_loaded(qtbot, other, "a")
    assert other.session.read_only and other.readonly_label.isVisibleTo(other)
    assert not other.decision.buttons["accepted"].isEnabled()
    other.decide("accepted")
    assert "Read-only" in other.banner.text()
    other.choose_tool("brush")
    assert other.canvas.tool == "navigate"
    drag(other.canvas, [(1, 1), (5, 1)])
    assert other.session.working is None
    other.step(1)
    wait_loaded(qtbot, other, "b")
    assert other.readonly_label.isVisibleTo(other)  # stays in view while moving through the queue
    cases, _ = on_disk(review_dir)
    assert cases["a"].state == "unreviewed" and not cases["a"].corrected
    panel.close_review()  # the first window lets go: opening again makes it writable
    assert other.open_review(review_dir)
    wait_loaded(qtbot, other)
    assert not other.session.read_only and not other.readonly_label.isVisibleTo(other)
    other.shutdown()


def test_hold_space_hides_the_mask(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    activate(qtbot, panel)
    qtbot.keyPress(panel.canvas, Qt.Key.Key_Space)
    panel.render_now()
    assert panel.canvas.layer("mask") is None
    qtbot.keyRelease(panel.canvas, Qt.Key.Key_Space)
    panel.render_now()
    assert panel.canvas.layer("mask") is not None


def test_views_and_overlay_modes(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    panel.choose_view("watershed")
    panel.render_now()
    ws = panel.session.cleaned
    assert ws is not None and panel.session.mask() is ws.mask
    assert f"{ws.object_count} object" in panel.info.text()
    panel.display.mode_combo.setCurrentIndex(1)  # contour only
    panel.render_now()
    alpha = panel.canvas.layer("mask")[..., 3]
    assert 0 < np.count_nonzero(alpha) < np.count_nonzero(ws.mask)
    assert not panel.display.view_buttons["correction"].isEnabled()
    # the next case opens in the view chosen last
    panel.step(1)
    wait_loaded(qtbot, panel, "b")
    assert panel.session.view == "watershed"


def test_asks_the_reviewer_name_once(qtbot, review_dir):
    panel = make_panel(qtbot, reviewer="")
    panel.session.reviewer = ""
    open_and_wait(qtbot, panel, review_dir, "a")
    asked = []

    def ask(force=False):
        asked.append(force)
        if not panel.session.reviewer:
            panel.set_reviewer("Dr Who")
        return panel.session.reviewer

    panel.ask_reviewer = ask
    panel.decide("accepted")
    wait_loaded(qtbot, panel, "b")
    panel.decide("accepted")
    cases, _ = on_disk(review_dir)
    assert cases["a"].reviewer == "Dr Who" and cases["b"].reviewer == "Dr Who"
    assert make_panel(qtbot, reviewer="").session.reviewer == "Dr Who"  # remembered in the settings
    panel.shutdown()


def test_new_review_from_folders_runs_in_the_background(qtbot, panel, sources, tmp_path):
    images, masks = sources
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(masks / "a_extra.png")  # no image: a problem, not a case
    (masks / "b.png").write_bytes(b"not a png")  # unreadable: left out
    panel.ask_new_review = lambda: {"kind": "folders", "images": str(images), "masks": str(masks),
                                    "checkpoint": "", "review": str(tmp_path / "new")}
    with qtbot.waitSignal(panel.reviewOpened, timeout=WAIT):
        panel.new_review()
    assert panel.session.names() == ["a", "c", "d"]
    assert "Problems (2)" in panel.problems_label.text() and "b.png" in panel.problems_label.text()
    # the review folder is refused inside a source folder, with a message
    panel.ask_new_review = lambda: {"kind": "folders", "images": str(images), "masks": str(masks),
                                    "checkpoint": "", "review": str(images / "review")}
    panel.new_review()
    qtbot.waitUntil(lambda: not panel.jobs.busy, timeout=WAIT)
    qtbot.waitUntil(lambda: "never writes there" in panel.banner.text(), timeout=WAIT)
    assert not (images / "review").exists()


def test_export_from_the_panel(qtbot, panel, review_dir, tmp_path):
    open_and_wait(qtbot, panel, review_dir, "a")
    panel.decide("accepted")
    wait_loaded(qtbot, panel, "b")
    panel.decide("rejected")
    out = tmp_path / "export"
    panel.ask_export = lambda: (str(out), "png")
    panel.export_review()
    qtbot.waitUntil(lambda: panel.jobs.last_export is not None, timeout=WAIT)
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "review_report.csv", "review_summary.html"]
    assert np.array_equal(np.asarray(Image.open(out / "a.png")), np.where(_mask(0) > 0, 255, 0).astype(np.uint8))
    rows = list(csv.DictReader((out / "review_report.csv").open()))
    assert [(r["name"], r["state"], r["reviewer"]) for r in rows] == [
        ("a", "accepted", "Dr Test"), ("b", "rejected", "Dr Test"), ("c", "unreviewed", ""), ("d", "unreviewed", "")]
    assert "Exported 1 mask" in panel.banner.text()
    # exporting again asks before replacing; "no" writes nothing
    panel.jobs.last_export = None
    asked = []
    panel.ask_overwrite = lambda conflicts: asked.append(conflicts) or False
    before = (out / "review_report.csv").stat().st_mtime_ns
    panel.export_review()
    assert asked == [f"An earlier export is in {out}: 3 file(s) would be replaced (a.png, review_report.csv, "
                     "review_summary.html)."] and panel.jobs.last_export is None
    assert (out / "review_report.csv").stat().st_mtime_ns == before
    # a source mask changed since: its mask is not exported, and the banner says so as a warning
    Image.fromarray(np.full(_mask(0).shape, 255, np.uint8)).save(Path(panel.session.store.record.cases[0].mask))
    panel.ask_overwrite = lambda conflicts: True
    panel.export_review()
    qtbot.waitUntil(lambda: panel.jobs.last_export is not None, timeout=WAIT)
    assert "1 approved mask(s) NOT exported" in panel.banner.text() and "has changed" in panel.banner.text()
    assert panel.banner.styleSheet() == banner_style("warning", "QLabel")
    assert not (out / "a.png").exists()


def test_a_click_that_changes_nothing_keeps_redo(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    panel.choose_tool("remove")
    click(panel.canvas, 25, 25)
    panel.undo()
    assert panel.session.history.can_redo
    click(panel.canvas, 30, 1)  # background: nothing to remove
    assert panel.session.history.can_redo
    panel.redo()
    assert panel.session.working is not None and panel.session.working[25, 25] == 0


def test_a_case_whose_image_vanished_is_reported_and_the_queue_goes_on(qtbot, panel, review_dir, sources):
    images, _ = sources
    (images / "b.png").unlink()
    open_and_wait(qtbot, panel, review_dir, "a")
    panel.step(1)
    qtbot.waitUntil(lambda: "Cannot show b" in panel.banner.text(), timeout=WAIT)
    assert "b.png" in panel.banner.text() and "does not exist" in panel.banner.text()
    panel.step(1)
    wait_loaded(qtbot, panel, "c")
    assert panel.banner.isHidden() or "Cannot show" not in panel.banner.text()  # the panel is never shown:
    # isVisible() would be False whatever the banner's own state


def test_a_decision_that_cannot_be_saved_says_so(qtbot, panel, review_dir, monkeypatch):
    from app.core.review import store as store_module

    open_and_wait(qtbot, panel, review_dir, "a")
    monkeypatch.setattr(store_module, "atomic_write_text",
                        lambda path, text: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    panel.decide("accepted")
    assert "not saved" in panel.banner.text() and "No space" in panel.banner.text()
    assert panel.session.store.case("a").state == "unreviewed"
    assert panel.queue.progress_label.text().startswith("0 of 4")


def test_a_correction_that_failed_to_save_is_saved_before_its_case_is_accepted(qtbot, panel, review_dir,
                                                                              monkeypatch):
    """Accepting after a correction's save had failed recorded the decision without the
    correction: the export then wrote the prediction instead of the mask on screen."""
    from app.core.review import ReviewStore

    open_and_wait(qtbot, panel, review_dir, "a")
    session, real = panel.session, ReviewStore.save_correction
    monkeypatch.setattr(ReviewStore, "save_correction",
                        lambda *a, **k: (_ for _ in ()).throw(OSError(13, "Permission denied")))
    assert session.begin_edit()
    session.stroke([(0, 0), (20, 20)], 2, 1)
    session.end_edit()
    assert "correction was not saved" in panel.banner.text()
    panel.decide("accepted")  # the folder still cannot be written
    assert "still not saved" in panel.banner.text() and session.store.case("a").state == "unreviewed"
    shown = session.working.copy()
    monkeypatch.setattr(ReviewStore, "save_correction", real)
    panel.decide("accepted")
    case = session.store.case("a")
    assert case.state == "accepted" and case.corrected
    assert np.array_equal(session.store.load_case("a").corrected, shown) and shown[10, 10] == 1


def test_a_new_reason_that_cannot_be_added_to_the_list_says_so_and_the_rejection_still_counts(
        qtbot, panel, review_dir, monkeypatch):
    open_and_wait(qtbot, panel, review_dir, "a")
    store = panel.session.store
    before = list(store.record.reasons)

    def full_disk(reasons):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "set_reasons", full_disk)
    panel.decision.reason_combo.setCurrentText("Wrong organ")
    panel.decide("rejected")
    assert "reason was not added" in panel.banner.text() and "No space" in panel.banner.text()
    assert store.record.reasons == before
    assert (store.case("a").state, store.case("a").reason) == ("rejected", "Wrong organ")
    assert panel.session.current == "a"  # it stays on the case, so the message is seen


def test_a_comment_is_saved_shortly_after_typing_stops(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    activate(qtbot, panel)
    panel.decision.comment.setFocus()
    qtbot.keyClicks(panel.decision.comment, "faint edge")
    assert on_disk(review_dir)[0]["a"].comment == ""  # not yet: still typing
    qtbot.waitUntil(lambda: on_disk(review_dir)[0]["a"].comment == "faint edge", timeout=5000)
    assert panel.decision.comment.hasFocus()


def test_no_decision_for_a_case_not_yet_on_screen(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    panel.session._cache.clear()
    panel.go_to("c")  # loads in the background
    assert panel.session.data is None
    panel.decide("accepted")
    assert "Still loading" in panel.banner.text()
    wait_loaded(qtbot, panel, "c")
    assert on_disk(review_dir)[0]["c"].state == "unreviewed"
    assert not panel.actions_by_name["accepted"].autoRepeat()


def test_a_stroke_in_progress_ends_on_its_own_case(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    wait_loaded(qtbot, panel, "a")
    qtbot.waitUntil(lambda: "b" in panel.session._cache, timeout=WAIT)  # the next case is prefetched
    panel.choose_tool("brush")
    panel.tools.radius.setValue(0)
    canvas = panel.canvas
    mouse(canvas, QEvent.Type.MouseButtonPress, widget_point(canvas, 20, 30))
    mouse(canvas, QEvent.Type.MouseMove, widget_point(canvas, 22, 30))
    panel.step(1)  # → pressed mid-stroke
    mouse(canvas, QEvent.Type.MouseMove, widget_point(canvas, 28, 30))
    mouse(canvas, QEvent.Type.MouseButtonRelease, widget_point(canvas, 28, 30))
    cases, _ = on_disk(review_dir)
    assert cases["a"].state == "corrected" and cases["b"].state == "unreviewed"
    saved = np.asarray(Image.open(review_dir / "corrections" / "a.png")) > 0
    assert saved[30, 20:23].all() and not saved[30, 24:29].any()
    assert panel.session.current == "b" and panel.session.working is None


def test_accepting_a_corrected_case_on_the_prediction_asks_which_mask(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    panel.decision.advance.setChecked(False)
    panel.choose_tool("remove")
    click(panel.canvas, 25, 25)
    panel.choose_view("prediction")
    panel.ask_accept_corrected = lambda: None  # cancel: nothing recorded
    panel.decide("accepted")
    assert on_disk(review_dir)[0]["a"].state == "corrected"
    panel.ask_accept_corrected = lambda: "correction"
    panel.decide("accepted")
    case = on_disk(review_dir)[0]["a"]
    assert case.state == "accepted" and case.corrected and panel.session.view == "correction"
    panel.choose_view("prediction")
    panel.ask_accept_corrected = lambda: "discard"
    panel.decide("accepted")
    case = on_disk(review_dir)[0]["a"]
    assert case.state == "accepted" and not case.corrected and case.variant == "prediction"
    assert not (review_dir / "corrections" / "a.png").exists()


def test_reject_with_a_numbered_reason_and_each_case_starts_with_none(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    activate(qtbot, panel)
    key(qtbot, panel, Qt.Key.Key_3, Qt.KeyboardModifier.AltModifier)
    wait_loaded(qtbot, panel, "b")
    cases, record = on_disk(review_dir)
    assert cases["a"].state == "rejected" and cases["a"].reason == record.reasons[2]
    assert panel.decision.reason_combo.currentIndex() == -1 and panel.decision.reason_combo.currentText() == ""


def test_space_is_caught_even_after_a_button_was_clicked(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    activate(qtbot, panel)
    assert panel.tools.undo_button.focusPolicy() == Qt.FocusPolicy.NoFocus
    panel.queue.list.setFocus()
    qtbot.keyPress(panel.queue.list, Qt.Key.Key_Space)
    panel.render_now()
    assert panel.canvas.layer("mask") is None
    qtbot.keyRelease(panel.queue.list, Qt.Key.Key_Space)
    panel.render_now()
    assert panel.canvas.layer("mask") is not None


def test_the_queue_stays_narrow_once_a_review_is_open(qtbot, panel, review_dir):
    """The one-line summary ("0 of 4 reviewed · 0 accepted · …") set the queue's width: at
    1024 px the image got a quarter of the window."""
    before = panel.queue.minimumSizeHint().width()
    open_and_wait(qtbot, panel, review_dir, "a")
    assert panel.queue.progress_label.text().startswith("0 of 4 reviewed")
    assert panel.queue.minimumSizeHint().width() <= max(before, 260)
