"""The window's shared pieces: experiment state, background tasks, rendering, parameter forms, settings."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.core.config import ExperimentConfig
from app.core.postprocess import POSTPROCESS_PARAMS
from app.core.registry import Param
from app.ui import render
from app.ui.param_form import ParamForm
from app.ui.settings import AppSettings
from app.ui.state import ExperimentState
from app.ui.tasks import TaskRunner


# -- state ---------------------------------------------------------------------------------
def test_update_changes_the_config_and_names_the_section_and_source(qtbot):
    state = ExperimentState(ExperimentConfig())
    seen = []
    state.configChanged.connect(lambda section, source: seen.append((section, source)))
    source = object()
    state.update("training", source, epochs=3, batch_size=2)
    state.update("postprocess", None, value={"foreground_fraction": 0.4})
    assert state.config.training.epochs == 3 and state.config.training.batch_size == 2
    assert state.config.postprocess == {"foreground_fraction": 0.4}
    assert seen == [("training", source), ("postprocess", None)]
    assert state.dirty


def test_update_rejects_unknown_sections_and_fields(qtbot):
    state = ExperimentState(ExperimentConfig())
    with pytest.raises(ValueError, match="valid: data"):
        state.update("nonsense", None, x=1)
    with pytest.raises(ValueError, match="no field 'epochz'"):
        state.update("training", None, epochz=1)
    with pytest.raises(ValueError, match="replaced whole"):
        state.update("augmentation", None, seed=1)


def test_snapshot_is_a_validated_independent_copy(qtbot):
    state = ExperimentState(ExperimentConfig())
    copy = state.snapshot()
    state.update("training", None, epochs=9)
    assert copy.training.epochs != 9
    state.update("training", None, epochs=0)
    with pytest.raises(ValueError, match="training.epochs"):
        state.snapshot()


def test_set_split_moves_samples_and_records_it_in_the_experiment(state, qtbot):
    name = state.dataset.split("train")[0].name
    with qtbot.waitSignal(state.splitsChanged):
        state.set_split([name], "test", None)
    assert state.sample(name).split == "test"
    assert state.config.data.splits == {name: "test"}


def test_dataset_selects_its_first_sample_and_set_run_prefers_best(state, tmp_path, qtbot):
    assert state.selected_sample == state.dataset.samples[0].name
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"x")
    state.set_run(tmp_path)
    assert state.checkpoint.name == "last.pt"
    (tmp_path / "checkpoints" / "best.pt").write_bytes(b"x")
    with qtbot.waitSignal(state.runChanged):
        state.set_run(tmp_path)
    assert state.checkpoint.name == "best.pt"


# -- tasks ---------------------------------------------------------------------------------
def test_task_result_and_progress_arrive_on_the_gui_thread(qtbot):
    runner = TaskRunner("test")
    main = threading.get_ident()
    seen = {}

    def job(ctx):
        seen["job_thread"] = threading.get_ident()
        ctx.progress(1, 2)
        return 42

    def done(value):
        seen["done"] = (value, threading.get_ident())

    with qtbot.waitSignal(runner.busyChanged, check_params_cb=lambda busy: not busy, timeout=5000):
        runner.start(job, on_done=done, on_progress=lambda d, t: seen.setdefault("progress", (d, t)))
    assert seen["done"] == (42, main) and seen["job_thread"] != main
    assert seen["progress"] == (1, 2)
    assert not runner.busy


def test_task_errors_become_messages_and_newest_task_wins(qtbot):
    runner = TaskRunner("test")
    failures, results = [], []
    release = threading.Event()

    def slow(ctx):
        release.wait(5)
        return "old"

    runner.start(slow, on_done=results.append)
    runner.start(lambda ctx: (_ for _ in ()).throw(OSError("disk on fire")), on_failed=failures.append)
    qtbot.waitUntil(lambda: failures == ["disk on fire"], timeout=5000)
    release.set()
    assert runner.shutdown(5000)
    qtbot.wait(50)
    assert results == []  # the cancelled task's result is dropped
    assert not runner.busy


def test_a_result_already_sent_when_the_task_is_cancelled_is_dropped(qtbot):
    runner = TaskRunner("test")
    results, failures = [], []
    task = runner.start(lambda ctx: "done", on_done=results.append)
    failing = TaskRunner("test-failing").start(lambda ctx: (_ for _ in ()).throw(OSError("late")),
                                                on_failed=failures.append)
    assert task.wait(5000) and failing.wait(5000)  # both results are queued for the GUI thread, not yet delivered
    task.cancel()
    failing.cancel()
    qtbot.wait(50)
    assert results == [] and failures == []


# -- rendering -----------------------------------------------------------------------------
def test_to_display_stretches_16_bit_and_keeps_8_bit():
    image = np.array([[0, 1000], [2000, 4000]], np.uint16)
    shown = render.to_display(image, 0, 4000)
    assert shown.shape == (2, 2, 3) and shown[1, 1, 0] == 255 and shown[0, 0, 0] == 0
    gray8 = np.array([[10, 20]], np.uint8)
    assert render.to_display(gray8)[0, 1].tolist() == [20, 20, 20]


@pytest.mark.parametrize("shape", [(33, 17), (1, 1), (0, 5), (8, 12)])
def test_gray_images_are_shown_as_three_equal_channels(shape):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, shape).astype(np.uint8)
    strided = gray[:, ::2]  # a view, not contiguous
    for image in (gray, strided):
        shown = render.to_display(image)
        assert shown.dtype == np.uint8 and shown.flags.c_contiguous
        np.testing.assert_array_equal(shown, np.repeat(image[:, :, None], 3, axis=2))


def test_mask_overlay_fill_and_contour():
    mask = np.zeros((7, 7), np.uint8)
    mask[2:5, 2:5] = 1
    fill = render.mask_overlay(mask, 0.5, "fill")
    assert fill[3, 3, 3] == 128 and fill[0, 0, 3] == 0
    contour = render.mask_overlay(mask, 0.5, "contour")
    assert contour[2, 2, 3] > 0 and contour[3, 3, 3] == 0  # border drawn, inside empty
    with pytest.raises(ValueError, match="valid: fill"):
        render.mask_overlay(mask, 0.5, "dots")


def _plain_contour(labels: np.ndarray) -> np.ndarray:
    """The outline by definition: a labelled pixel whose 3×3 neighbourhood (edges repeated)
    holds another value."""
    padded = np.pad(labels.astype(np.int64), 1, mode="edge")
    h, w = labels.shape
    differs = np.zeros((h, w), bool)
    for dy in range(3):
        for dx in range(3):
            differs |= padded[dy:dy + h, dx:dx + w] != labels
    return differs & (labels > 0)


def _plain_overlay(labels: np.ndarray, opacity: float, mode: str, colour) -> np.ndarray:
    """mask_overlay by its definition, pixel by pixel in NumPy (the fast version must equal it)."""
    palette = render.CLASS_COLOURS
    wide = labels.astype(np.int64)
    rgba = np.zeros(labels.shape + (4,), np.uint8)
    index = np.where(wide > 0, 1 + (wide - 1) % (len(palette) - 1), 0)
    rgba[..., :3] = palette[index] if colour is None else colour
    alpha = np.zeros(labels.shape, np.float32)
    if mode in ("fill", "both"):
        alpha[wide > 0] = opacity
    if mode in ("contour", "both"):
        alpha[_plain_contour(labels)] = max(opacity, 0.9) if mode == "both" else min(1.0, opacity * 2 + 0.2)
    rgba[..., 3] = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    return rgba


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.uint16, np.int32, np.int64])
def test_mask_overlay_equals_its_definition(dtype):
    rng = np.random.default_rng(3)
    high = {np.bool_: 2, np.uint8: 14}.get(dtype, 70000 if dtype in (np.int32, np.int64) else 300)
    blocks = rng.integers(0, high, (12, 10))
    if dtype in (np.int32, np.int64):
        blocks[0, :3] = (-5, 2**40 if dtype == np.int64 else 2**30, 65535)  # negative, huge, uint16's end
    labels = np.kron(blocks, np.ones((3, 4), np.int64)).astype(dtype)  # regions, so inside ≠ outline
    assert render.contour_of(labels).tolist() == _plain_contour(labels.astype(np.int64)).tolist()
    for mode in render.OVERLAY_MODES:
        for colour in (None, (9, 8, 7)):
            for opacity in (0.0, 0.07, 0.45, 1.0):
                np.testing.assert_array_equal(render.mask_overlay(labels, opacity, mode, colour),
                                              _plain_overlay(labels.astype(np.int64), opacity, mode, colour))
        for tiny in (labels[:1, :1], labels[2:3, 5:9], labels[:, 3:4]):  # 1×1, one row, one column
            np.testing.assert_array_equal(render.mask_overlay(tiny, 0.5, mode),
                                          _plain_overlay(tiny.astype(np.int64), 0.5, mode, None))
        assert render.mask_overlay(labels[:0], 0.5, mode).shape == (0, labels.shape[1], 4)  # empty


def test_error_overlay_colours_false_positives_and_negatives():
    pred = np.array([[1, 0], [1, 0]], np.uint8)
    true = np.array([[1, 1], [0, 0]], np.uint8)
    rgba = render.error_overlay(pred, true)
    assert tuple(rgba[1, 0, :3]) == render.FALSE_POSITIVE and tuple(rgba[0, 1, :3]) == render.FALSE_NEGATIVE
    assert rgba[0, 0, 3] == 0 and rgba[1, 1, 3] == 0


def test_composite_blends_layers():
    base = np.zeros((1, 1, 3), np.uint8)
    layer = np.array([[[255, 255, 255, 128]]], np.uint8)
    assert render.composite(base, layer, None)[0, 0, 0] == 128


# -- parameter forms -----------------------------------------------------------------------
def test_param_form_edits_emit_values_and_ranges_are_enforced(qtbot):
    form = ParamForm(POSTPROCESS_PARAMS)
    qtbot.addWidget(form)
    with qtbot.waitSignal(form.changed) as blocker:
        form.editor("foreground_fraction").setValue(0.3)
    assert blocker.args[0]["foreground_fraction"] == pytest.approx(0.3)
    form.editor("close_kernel").setValue(99)  # max 31
    assert form.values()["close_kernel"] == 31
    form.editor("distance_mask").setCurrentIndex(2)
    assert form.values()["distance_mask"] == 0
    assert "main tuning knob" in form.editor("foreground_fraction").toolTip()


def test_every_registered_number_editor_stays_inside_its_declared_range(qtbot):
    """Spin boxes rounded limits they cannot show (1e-8 to 0, 0.9999 to 1 at 6 and 3 decimals):
    the lowest Dice smoothing or highest Adam beta was reachable and then refused at Start."""
    from app.core.augment.base import TRANSFORMS
    from app.core.losses import LOSSES
    from app.core.models import MODELS
    from app.core.optim import OPTIMIZERS, SCHEDULES

    checked = 0
    for registry in (MODELS, LOSSES, OPTIMIZERS, SCHEDULES, TRANSFORMS):
        for name in registry.names():
            params = [p for p in registry.get(name).params if p.type in ("float", "float_range")]
            form = ParamForm(params)
            qtbot.addWidget(form)
            for param in params:
                editors = form.editor(param.name)
                for spin in editors if isinstance(editors, tuple) else (editors,):
                    low, high = spin.minimum(), spin.maximum()
                    if param.minimum is not None:
                        assert low >= param.minimum, (name, param.name, low)
                    if param.maximum is not None:
                        assert high <= param.maximum, (name, param.name, high)
                    checked += 1
    assert checked > 20


def test_param_form_pairs_keep_low_below_high_and_set_values_is_silent(qtbot):
    params = [Param("sigma", "float_range", (0.5, 1.0), 0.0, 5.0), Param("size", "int_pair", (3, 4), 1, 9),
              Param("on", "bool", True)]
    form = ParamForm(params)
    qtbot.addWidget(form)
    low, high = form.editor("sigma")
    low.setValue(2.0)
    assert form.values()["sigma"] == [2.0, 2.0]
    emitted = []
    form.changed.connect(emitted.append)
    form.set_values({"size": [5, 6], "on": False})
    assert emitted == [] and form.values()["size"] == [5, 6] and form.values()["on"] is False


# -- settings ------------------------------------------------------------------------------
def test_recent_files_newest_first_existing_only(tmp_path, qtbot):
    settings = AppSettings(tmp_path / "settings.ini")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("{}")
    b.write_text("{}")
    settings.add_recent("experiments", a)
    settings.add_recent("experiments", b)
    settings.add_recent("experiments", a)
    assert settings.recent("experiments") == [str(a), str(b)]
    b.unlink()
    assert AppSettings(tmp_path / "settings.ini").recent("experiments") == [str(a)]


# -- the Qt binding ------------------------------------------------------------------------
def test_qt_calls_do_not_leak_references_to_none(qtbot):
    """PySide6 6.12.0 dropped a reference to None on every void call and aborted the app after
    ~16k calls; pyproject excludes it. This guards against such a binding coming back."""
    import sys

    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(2000):
        probe.setObjectName("probe")
    assert abs(sys.getrefcount(None) - before) < 100


def test_finished_tasks_release_what_their_jobs_captured(qtbot):
    import gc
    import weakref

    runner = TaskRunner("test")
    refs = []

    class Payload:
        pass

    for _ in range(5):
        payload = Payload()
        refs.append(weakref.ref(payload))
        runner.start(lambda ctx, p=payload: p, on_done=lambda result: None)
        del payload
        qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    qtbot.wait(20)  # ended tasks are dropped from the event loop
    gc.collect()
    assert sum(ref() is not None for ref in refs) == 0


def test_runner_refuses_new_jobs_after_shutdown(qtbot):
    runner = TaskRunner("test")
    assert runner.shutdown()
    ran = []
    assert runner.start(lambda ctx: ran.append(1)) is None
    qtbot.wait(50)
    assert ran == [] and not runner.busy


def test_a_checked_toggle_is_drawn_in_the_highlight_colour_in_a_dark_palette(qtbot):
    """In a dark palette the checked view and tool buttons differed by 9 grey levels from the others."""
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QPushButton, QWidget

    from app.ui.resources import load_style

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    before = app.palette()
    palette = QPalette(before)
    for role, colour in ((QPalette.ColorRole.Button, "#353535"), (QPalette.ColorRole.Window, "#2b2b2b"),
                         (QPalette.ColorRole.Highlight, "#2a82da"), (QPalette.ColorRole.ButtonText, "#eeeeee")):
        palette.setColor(role, QColor(colour))
    app.setPalette(palette)  # as a system dark theme does
    holder = QWidget()
    qtbot.addWidget(holder)
    holder.setStyleSheet(load_style())
    on, off = QPushButton("Prediction", holder), QPushButton("Watershed", holder)
    for button, x in ((on, 0), (off, 120)):
        button.setCheckable(True)
        button.setGeometry(x, 0, 110, 30)
    on.setChecked(True)
    holder.show()
    centre = lambda button: button.grab().toImage().pixelColor(6, 15)  # noqa: E731 - beside the text
    try:
        assert centre(on).name() == "#2a82da" and centre(off).name() != "#2a82da"
    finally:
        app.setPalette(before)
