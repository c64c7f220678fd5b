"""The Review panel's clean-up settings: the dialog, redoing the clean-up of the case on screen
(and of cases loaded later), and the lock while accepted cases export the current clean-up."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
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
    qtbot.waitUntil(lambda: "b" in panel.session._cache, timeout=WAIT)  # b was prefetched with the old settings
    asked = []
    panel.ask_cleanup = lambda params, exports: asked.append((params, exports)) or SPLIT
    assert panel.edit_cleanup()
    assert asked == [(WatershedParams(), [])]
    qtbot.waitUntil(lambda: panel.session.cleaned is not None and panel.session.cleaned.object_count == 2,
                    timeout=WAIT)
    QApplication.processEvents()
    assert panel.session.view == "watershed" and panel.session.stats()[1] == 2
    labels = panel.session.cleaned.labels
    assert panel.session.mask_layer().code.shape == labels.shape
    assert len(np.unique(labels[labels > 0])) == 2
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
    assert not dialog.form.isEnabled() and not buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert "1 accepted case(s) export the watershed mask made with these settings (a)" in dialog.note.text()

    asked = []
    panel.ask_cleanup = lambda params, exports: asked.append(exports) or None
    assert not panel.edit_cleanup() and asked == [["a"]]
    # the store refuses too, should a change reach it: what was accepted keeps its export
    assert not panel.session.set_params(SPLIT)
    assert "accepted case exports the watershed mask" in panel.banner.text()
    assert ReviewStore.open(review_dir, read_only=True).watershed_params == WatershedParams()
