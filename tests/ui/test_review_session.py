"""The review session model on its own: a copy of a case read before its correction was saved
never comes back on screen (the prefetch / load race)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

import app.ui.review_session as review_session
from app.core.review import ReviewStore
from app.core.review.edit import remove_object

WAIT = 20000


@pytest.fixture
def store(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "predicted"
    images.mkdir()
    masks.mkdir()
    for name in "abc":
        Image.fromarray(np.full((48, 48), 100, np.uint8)).save(images / f"{name}.png")
        mask = np.zeros((48, 48), np.uint8)
        mask[4:16, 4:16] = mask[30:44, 30:44] = 255
        Image.fromarray(mask).save(masks / f"{name}.png")
    opened = ReviewStore.create_from_folders(tmp_path / "review", images, masks)
    yield opened
    opened.close()


@pytest.fixture
def gated_loads(monkeypatch):
    """Every case load waits for its own gate: ``gates[name]`` lists them in start order."""
    gates: dict[str, list[threading.Event]] = {}
    real = review_session.load_case_job

    def gated(folder, case, params):
        inner, gate = real(folder, case, params), threading.Event()
        gates.setdefault(case.name, []).append(gate)

        def job(ctx):
            assert gate.wait(10), "gate never opened"
            return inner(ctx)
        return job

    monkeypatch.setattr(review_session, "load_case_job", gated)
    return gates


def test_a_copy_read_before_a_correction_was_saved_never_replaces_it(qtbot, store, gated_loads):
    session = review_session.ReviewSession()
    session.reviewer = "Dr Test"
    try:
        session.set_store(store)
        gated_loads["a"][0].set()
        qtbot.waitUntil(lambda: session.data is not None and "b" in gated_loads, timeout=WAIT)  # b prefetching
        session.go_to("b")  # Next before the prefetch landed: the loader reads b a second time
        assert len(gated_loads["b"]) == 2
        gated_loads["b"][0].set()  # the prefetched copy arrives first and is shown
        qtbot.waitUntil(lambda: session.data is not None, timeout=WAIT)
        assert session.edit(remove_object, 10, 10)  # the square at the top left is removed and saved
        assert store.case("b").corrected
        corrected = session.working.copy()
        assert corrected[10, 10] == 0 and corrected[35, 35] == 1

        gated_loads["b"][1].set()  # the loader's copy, read before the save, lands now
        qtbot.waitUntil(lambda: not session._loader.busy, timeout=WAIT)
        session.go_to("c")
        gated_loads["c"][-1].set()
        qtbot.waitUntil(lambda: session.current == "c" and session.data is not None, timeout=WAIT)
        session.go_to("b")  # back: b shows its correction, not the stale prediction
        for gate in gated_loads["b"]:
            gate.set()
        qtbot.waitUntil(lambda: session.current == "b" and session.data is not None, timeout=WAIT)
        assert session.view == "correction" and np.array_equal(session.mask(), corrected)

        # so one more edit and its undo leave the saved correction where it was
        assert session.edit(remove_object, 35, 35)
        session.undo()
        assert store.case("b").corrected and (store.folder / store.case("b").corrected).exists()
        assert np.array_equal(session.mask(), corrected)
    finally:
        for gate in (g for waiting in gated_loads.values() for g in waiting):
            gate.set()  # let the prefetches still waiting finish
        session.shutdown()


def test_the_image_is_prepared_for_the_screen_in_the_worker(qtbot, store, monkeypatch):
    threads = []
    real = review_session.to_display
    monkeypatch.setattr(review_session, "to_display",
                        lambda image: threads.append(threading.current_thread()) or real(image))
    session = review_session.ReviewSession()
    try:
        session.set_store(store)
        qtbot.waitUntil(lambda: session.data is not None, timeout=WAIT)
        assert threads and threading.main_thread() not in threads
        assert session.display_image.shape == (48, 48, 3) and session.display_image.dtype == np.uint8
        assert (session.display_image == 100).all()
    finally:
        session.shutdown()


def test_overlay_codes_and_counts_of_a_case_are_made_in_the_worker(qtbot, store, monkeypatch):
    """Showing a case and switching between its prediction and watershed views computes no
    overlay code and counts no objects on the GUI thread; an edit does, once per change."""
    from app.ui.render import mask_overlay

    on_gui = []
    real_layer, real_stats = review_session.MaskLayer, review_session.mask_stats

    def layer(mask):
        on_gui.append(("layer", threading.current_thread() is threading.main_thread()))
        return real_layer(mask)

    def stats(mask):
        on_gui.append(("stats", threading.current_thread() is threading.main_thread()))
        return real_stats(mask)

    monkeypatch.setattr(review_session, "MaskLayer", layer)
    monkeypatch.setattr(review_session, "mask_stats", stats)
    session = review_session.ReviewSession()
    session.reviewer = "Dr Test"
    try:
        session.set_store(store)
        qtbot.waitUntil(lambda: session.data is not None, timeout=WAIT)
        for view in ("prediction", "watershed", "prediction"):
            session.set_view(view)
            code = session.mask_layer()
            shown = session.cleaned.labels if view == "watershed" else session.mask()
            np.testing.assert_array_equal(code.overlay(0.6, "both"), mask_overlay(shown, 0.6, "both"))
            session.stats()
        assert on_gui and not any(gui for _, gui in on_gui)  # all of it in the loading worker
        on_gui.clear()
        assert session.edit(remove_object, 10, 10)
        session.stats()
        session.stats()
        code = session.mask_layer()
        assert on_gui.count(("stats", True)) == 1 and on_gui.count(("layer", True)) == 1
        np.testing.assert_array_equal(code.overlay(1.0, "fill"), mask_overlay(session.working, 1.0, "fill"))
    finally:
        session.shutdown()


def test_the_case_cache_keeps_within_its_memory_budget(qtbot, store, monkeypatch):
    session = review_session.ReviewSession()
    try:
        session.set_store(store)
        qtbot.waitUntil(lambda: session.data is not None and "b" in session._cache, timeout=WAIT)  # a, b prefetched
        one_case = session._cache["a"].nbytes
        assert one_case == 48 * 48 * (3 + 1 + 1 + 1 + 1 + 4 + 2)  # display, image, 4 masks, labels, 2 overlay codes
        monkeypatch.setattr(review_session, "CACHE_BYTES", int(one_case * 1.5))
        session.go_to("b")
        qtbot.waitUntil(lambda: session.data is not None and "c" in session._cache, timeout=WAIT)
        assert list(session._cache) == ["c"]  # a and b left to keep within the budget; the newest stays
        assert session.current == "b" and session.mask() is not None  # the case on screen is unaffected
        session.mask_layer(), session.stats()
        session.close()
        assert session._memos() == ({}, {})  # a closed review's masks are let go
    finally:
        session.shutdown()
