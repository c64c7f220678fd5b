"""The researcher's comparison flow in the real main window: train with loss-surface slices,
find the run in the Runs panel, overlay its curves, open it, step through its slices and
compute a landscape around its weights."""

from __future__ import annotations

import numpy as np
import pytest

from app.ui.self_test import drive


def test_train_compare_open_and_view_the_loss_surface(window, qtbot):
    window.state.update("training", None, landscape_every=1, landscape_steps=5, landscape_losses="dice,bce")
    drive(window, log=lambda line: None, timeout=240)
    state = window.state
    run_dir = state.run_dir
    assert sorted(p.name for p in (run_dir / "landscapes").iterdir()) == ["epoch_001.npz"]

    # the Runs panel lists the new run (it rescans when training ends) and overlays its curves
    runs = window.panel("Runs")
    window.show_panel("Runs")
    runs.set_folder(run_dir.parent)
    qtbot.waitUntil(lambda: any(r.path == run_dir for r in runs.model.runs()), timeout=20000)
    with qtbot.waitSignal(runs.curvesShown, timeout=20000):
        runs.select_runs([run_dir])
    assert runs.curves.legend_names() == [run_dir.name]

    # opening it from the Runs panel shows its predictions
    state.set_run(None)
    runs.open_selected()
    assert state.run_dir == run_dir
    assert window.docks["Predictions"].isVisible()

    # the Loss landscape panel follows the run: its training-time slice is on the slider
    landscape = window.panel("Loss landscape")
    window.show_panel("Loss landscape")
    qtbot.waitUntil(lambda: len(landscape.snapshots) == 1, timeout=20000)
    assert landscape.snapshots[0][0] == 1
    landscape.show_snapshot(0)
    qtbot.waitUntil(lambda: landscape.shown_result is not None, timeout=20000)
    stored = landscape.shown_result
    assert stored.losses == ["dice", "bce"] and stored.meta["epoch"] == 1
    assert [row.name for row in landscape.plots.rows] == ["dice", "bce"]

    # and computes a fresh 1-D landscape around the weights, centred on the stored slice's centre
    landscape.set_losses("dice,bce")
    landscape.dims_combo.setCurrentIndex(landscape.dims_combo.findData(1))
    landscape.steps_spin.setValue(5)
    landscape.images_spin.setValue(4)
    with qtbot.waitSignal(landscape.computed, timeout=120000) as computed:
        assert landscape.compute()
    result = computed.args[0]
    assert result.values.shape == (2, 5) and np.isfinite(result.values).all()
    shown = landscape.plots.rows[0].curve_values
    assert np.allclose(shown, result.values[0])
    # both slices are centred on the same weights (best.pt is the only epoch's) and 4 images
    assert result.values[:, 2] == pytest.approx(stored.values[:, 2], rel=1e-4)
