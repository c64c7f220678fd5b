"""The Review panel's clean-up settings: the dialog, redoing the clean-up of the case on screen
(and of cases loaded later), and the lock while accepted cases export the current clean-up."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from app.core.postprocess import WatershedParams, watershed_postprocess
from app.core.review import ReviewStore
from app.ui.review_dialogs import CleanupDialog

from .test_review_panel import WAIT, make_panel, open_and_wait, wait_loaded

SPLIT = WatershedParams(foreground_fraction=0.9)  # two seeds in two overlapping discs: two objects


def two_discs(offset: int) -> np.ndarray:
    yy, xx = np.mgrid[:48, :64]
    return ((((yy - 24) ** 2 + (xx - 22 - offset) ** 2) < 144) | (((yy - 24) ** 2 + (xx - 42) ** 2) < 144)
            ).astype(np.uint8) * 255


@pytest.fixture
def review_dir(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "predicted"
    images.mkdir()
    masks.mkdir()
    for offset, name in enumerate(("a", "b", "c")):
        Image.fromarray(np.full((48, 64), 100, np.uint8)).save(images / f"{name}.png")
        Image.fromarray(two_discs(offset)).save(masks / f"{name}.png")
    folder = tmp_path / "review"
    ReviewStore.create_from_folders(folder, images, masks).close()
    return folder


@pytest.fixture
def panel(qtbot):
    widget = make_panel(qtbot)
    yield widget
    widget.shutdown()


def objects(mask: np.ndarray, params: WatershedParams) -> int:
    return watershed_postprocess(mask, params, keep_steps=False).object_count


def test_new_settings_redo_the_clean_up_on_screen_and_of_later_cases(qtbot, panel, review_dir):
    assert objects(two_discs(0), WatershedParams()) == 1 and objects(two_discs(0), SPLIT) == 2
    open_and_wait(qtbot, panel, review_dir, "a")
    panel.choose_view("watershed")
    assert panel.session.stats()[1] == 1
    panel.render_now()
    drawn = panel.canvas.buffer("mask")  # one object: both discs in one colour
    assert tuple(drawn[24, 22, :3]) == tuple(drawn[24, 42, :3]) and drawn[24, 22, 3] > 0
    qtbot.waitUntil(lambda: "b" in panel.session._cache, timeout=WAIT)  # b was prefetched with the old settings
    asked = []
    panel.ask_cleanup = lambda params, exports, read_only: asked.append((params, exports, read_only)) or SPLIT
    assert panel.edit_cleanup()
    assert asked == [(WatershedParams(), [], False)]
    qtbot.waitUntil(lambda: panel.session.cleaned is not None and panel.session.cleaned.object_count == 2,
                    timeout=WAIT)
    QApplication.processEvents()
    assert panel.session.view == "watershed" and panel.session.stats()[1] == 2
    labels = panel.session.cleaned.labels
    assert len(np.unique(labels[labels > 0])) == 2
    assert panel.session.mask_layer() is panel.session._layer_memo[id(labels)][1]  # the new labels' overlay
    panel.render_now()
    drawn = panel.canvas.buffer("mask")  # one colour per object: the two discs' centres now differ
    assert drawn[24, 22, 3] > 0 and drawn[24, 42, 3] > 0
    assert tuple(drawn[24, 22, :3]) != tuple(drawn[24, 42, :3])
    assert ReviewStore.open(review_dir, read_only=True).watershed_params == SPLIT  # saved at once
    assert "2 objects" in panel.info.text()

    panel.session.step(1)  # the prefetched copy of b had the old clean-up: it is made again
    wait_loaded(qtbot, panel, "b")
    assert panel.session.cleaned.object_count == objects(two_discs(1), SPLIT) == 2


def test_the_dialog_shows_the_settings_and_restores_defaults(qtbot):
    dialog = CleanupDialog(SPLIT, [])
    qtbot.addWidget(dialog)
    assert dialog.params() == SPLIT
    dialog.form.set_values({"foreground_fraction": 0.25, "fill_holes": True})
    assert dialog.params() == WatershedParams(foreground_fraction=0.25, fill_holes=True)
    buttons = dialog.findChild(QDialogButtonBox)
    buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).click()
    assert dialog.params() == WatershedParams()


def test_settings_are_locked_while_accepted_cases_export_the_clean_up(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    panel.choose_view("watershed")
    panel.decide("accepted")
    assert ReviewStore.open(review_dir, read_only=True).case("a").variant == "watershed"
    dialog = CleanupDialog(WatershedParams(), ["a"])
    qtbot.addWidget(dialog)
    buttons = dialog.findChild(QDialogButtonBox)
    assert dialog.form.isEnabled()  # legible, at full contrast, but nothing can change
    assert buttons.button(QDialogButtonBox.StandardButton.Ok).isHidden()
    assert buttons.button(QDialogButtonBox.StandardButton.Cancel).text() == "Close"
    fraction = dialog.form.editor("foreground_fraction")
    assert fraction.isReadOnly()
    fraction.setFocus()
    QTest.keyClicks(fraction, "9")
    QTest.keyClick(fraction, Qt.Key.Key_Up)
    dialog.show()
    qtbot.waitExposed(dialog)
    fill = dialog.form.editor("fill_holes")
    QTest.mouseClick(fill, Qt.MouseButton.LeftButton, pos=fill.rect().center())
    fill.setFocus()
    QTest.keyClick(fill, Qt.Key.Key_Space)
    assert dialog.params() == WatershedParams()
    assert "1 accepted case(s) export the watershed mask made with these settings (a)" in dialog.note.text()

    asked = []
    panel.ask_cleanup = lambda params, exports, read_only: asked.append(exports) or None
    assert not panel.edit_cleanup() and asked == [["a"]]
    # the store refuses too, should a change reach it: what was accepted keeps its export
    assert not panel.session.set_params(SPLIT)
    assert "accepted case exports the watershed mask" in panel.banner.text()
    assert ReviewStore.open(review_dir, read_only=True).watershed_params == WatershedParams()


def test_no_decision_or_edit_on_the_watershed_view_while_it_is_redone(qtbot, panel, review_dir):
    open_and_wait(qtbot, panel, review_dir, "a")
    panel.choose_view("watershed")
    assert panel.session.set_params(SPLIT)  # no event is handled before the decision below
    assert panel.session.mask() is None and panel.session.stats() is None
    assert not panel.session.decide("accepted")
    assert "being redone" in panel.banner.text()
    assert not panel.session.begin_edit()
    assert ReviewStore.open(review_dir, read_only=True).case("a").state == "unreviewed"
    qtbot.waitUntil(lambda: panel.session.cleaned is not None, timeout=WAIT)
    assert panel.session.decide("accepted")  # now on what is shown: its stats are those it exports
    store = ReviewStore.open(review_dir, read_only=True)
    case = store.case("a")
    exported = store.export_mask(case)
    assert (case.variant, case.area, case.objects) == ("watershed", int(exported.sum()), 2)


def test_a_failed_redo_shows_the_prediction_and_says_why(qtbot, panel, review_dir, monkeypatch):
    from app.core.review.case_data import CaseData

    open_and_wait(qtbot, panel, review_dir, "a")
    panel.choose_view("watershed")

    def broken(self, params):
        raise RuntimeError("clean-up exploded")
    monkeypatch.setattr(CaseData, "watershed", broken)
    assert panel.session.set_params(SPLIT)
    qtbot.waitUntil(lambda: "Cannot redo the clean-up of a: " in panel.banner.text(), timeout=WAIT)
    assert "clean-up exploded" in panel.banner.text()
    assert panel.session.view == "prediction" and panel.session.mask() is panel.session.data.prediction


def test_new_settings_while_the_case_still_loads_load_it_with_them(qtbot, panel, review_dir):
    assert panel.open_review(review_dir)
    assert panel.session.data is None  # still loading
    assert panel.session.set_params(SPLIT)
    wait_loaded(qtbot, panel, "a")
    assert panel.session.cleaned.object_count == 2


def test_a_read_only_review_shows_its_settings_without_changing_them(qtbot, review_dir):
    holder = ReviewStore.open(review_dir)
    viewer = make_panel(qtbot)
    try:
        viewer.ask_read_only = lambda message: True
        open_and_wait(qtbot, viewer, review_dir, "a")
        assert viewer.session.read_only and viewer.display.cleanup_button.isEnabled()
        asked = []
        viewer.ask_cleanup = lambda params, exports, read_only: asked.append(read_only) or SPLIT
        assert not viewer.edit_cleanup()
        assert asked == [True]
        assert not viewer.session.set_params(SPLIT)
        dialog = CleanupDialog(WatershedParams(), [], read_only=True)
        qtbot.addWidget(dialog)
        assert dialog.locked and dialog.form.editor("threshold").isReadOnly() and "read-only" in dialog.note.text()
    finally:
        viewer.shutdown()
        holder.close()
    assert ReviewStore.open(review_dir, read_only=True).watershed_params == WatershedParams()


def test_the_real_question_returns_nothing_while_locked(qtbot, panel, monkeypatch):
    monkeypatch.setattr(CleanupDialog, "exec", lambda self: 1)  # the user presses OK
    assert panel.ask_cleanup(SPLIT, []) == SPLIT
    assert panel.ask_cleanup(SPLIT, ["a"]) is None
    assert panel.ask_cleanup(SPLIT, [], read_only=True) is None


def test_a_clean_up_that_drops_most_of_the_prediction_is_flagged(qtbot, panel, tmp_path):
    """One large cell and 36 small ones: the default seeds (70 % of the largest distance) are in
    the large cell only, so the watershed view keeps about 28 % of the predicted area."""
    yy, xx = np.mgrid[:96, :96]
    mask = (yy - 30) ** 2 + (xx - 30) ** 2 < 144
    for cy in range(60, 92, 10):
        for cx in range(6, 92, 10):
            mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < 9
    images, masks = tmp_path / "images", tmp_path / "predicted"
    images.mkdir()
    masks.mkdir()
    Image.fromarray(np.full((96, 96), 100, np.uint8)).save(images / "many.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(masks / "many.png")
    ReviewStore.create_from_folders(tmp_path / "review", images, masks).close()
    kept = np.count_nonzero(watershed_postprocess(mask, WatershedParams(), keep_steps=False).mask) / mask.sum()
    assert kept < 0.3
    open_and_wait(qtbot, panel, tmp_path / "review", "many")
    assert panel.session.cleanup_kept() is None and "clean-up keeps" not in panel.info.text()  # prediction view
    panel.choose_view("watershed")
    assert panel.session.cleanup_kept() == pytest.approx(kept)
    assert f"The clean-up keeps {kept:.0%} of the predicted area" in panel.info.text()
    assert "a lower foreground fraction in Clean-up settings… keeps more" in panel.info.text()
    panel.decide("accepted")  # on the watershed view: the settings are now locked
    assert panel.session.current == "many"  # the only case: it stays on screen
    panel._refresh_info()
    assert "its settings are locked while accepted cases export the watershed mask" in panel.info.text()
    assert "Clean-up settings… keeps more" not in panel.info.text()
