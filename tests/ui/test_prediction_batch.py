"""The Predictions panel's Predict folder…: off until a model is loaded, the files written with
the clean-up settings on screen, refusals in the banner, Stop, and a review made from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.core.batch_predict import BatchOutputs
from app.core.imageio import read_image
from app.core.postprocess import watershed_postprocess
from app.ui.prediction_batch import PredictFolderDialog
from app.ui.styles import banner_style

from .test_predictions_panel import WAIT, checkpoint, load, panel, run_dir, set_param  # noqa: F401 - fixtures


def run_batch(qtbot, panel, images, out, outputs) -> object:
    bar = panel.folder_bar
    with qtbot.waitSignal(bar.finished, timeout=WAIT) as finished:
        assert bar.start(str(images), str(out), outputs), panel.banner.text()
        assert not bar.action.isEnabled() and not bar.progress.isHidden() and not bar.stop_button.isHidden()
    qtbot.waitUntil(lambda: not bar.runner.busy, timeout=WAIT)
    assert bar.action.isEnabled() and bar.progress.isHidden()
    return finished.args[0]


def test_a_folder_is_predicted_with_the_clean_up_settings_shown(qtbot, panel, checkpoint, demo_folder, tmp_path):
    bar = panel.folder_bar
    assert not bar.action.isEnabled() and "open a checkpoint first" in bar.action.toolTip()
    load(qtbot, panel, checkpoint)
    assert bar.action.isEnabled()
    set_param(qtbot, panel, "foreground_fraction", 0.3)
    images = demo_folder / "train" / "images"
    result = run_batch(qtbot, panel, images, tmp_path / "out", BatchOutputs(watershed=True, probabilities=True))
    stems = sorted(p.stem for p in images.iterdir())
    assert sorted(p.stem for p in result.written) == stems and not result.skipped
    for stem in stems:
        probability = read_image(tmp_path / "out" / f"{stem}_probability.png")
        expected = watershed_postprocess(probability, panel.params(), keep_steps=False).mask
        assert np.array_equal(read_image(tmp_path / "out" / f"{stem}_watershed.png") > 0, expected > 0), stem
    manifest = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert manifest["postprocess"]["foreground_fraction"] == 0.3
    assert manifest["checkpoint"] == str(checkpoint.resolve())
    assert f"Predicted {len(stems)} of {len(stems)} images" in panel.banner.text()
    assert panel.banner.styleSheet() == banner_style("success", "QLabel")

    assert not bar.start(str(images), str(images / "masks"), BatchOutputs())  # inside the input: refused
    assert "never writes there" in panel.banner.text() and not (images / "masks").exists()
    assert panel.banner.styleSheet() == banner_style("error", "QLabel")


def test_stop_keeps_what_was_written(qtbot, panel, checkpoint, demo_folder, tmp_path, monkeypatch):
    import app.ui.prediction_batch as batch_module

    load(qtbot, panel, checkpoint)
    real = batch_module.predict_folder

    def slow(*args, should_stop, **kwargs):  # stop is asked for once the first image is done
        kwargs["progress"] = lambda done, total: panel.folder_bar.stop()
        return real(*args, should_stop=should_stop, **kwargs)

    monkeypatch.setattr(batch_module, "predict_folder", slow)
    result = run_batch(qtbot, panel, demo_folder / "train" / "images", tmp_path / "out", BatchOutputs())
    assert result.cancelled and len(result.written) == 1 and result.total > 1
    assert "stopped" in panel.banner.text()
    assert json.loads((tmp_path / "out" / "predictions.json").read_text())["stopped_after"] == 1


def test_the_dialog_offers_probability_maps_only_for_binary_models(qtbot):
    dialog = PredictFolderDialog("/data/images", "", binary=True)
    qtbot.addWidget(dialog)
    assert dialog.values() == ("/data/images", "", BatchOutputs(watershed=True, probabilities=True))
    dialog = PredictFolderDialog("", "", binary=False)
    qtbot.addWidget(dialog)
    assert not dialog.probabilities.isEnabled() and dialog.values()[2] == BatchOutputs(watershed=True)


def test_the_dialog_needs_two_full_folder_paths(qtbot, monkeypatch):
    """An empty 'Write to' was the working folder: the masks went wherever the app was started."""
    import app.ui.prediction_batch as batch_module

    warnings = []
    monkeypatch.setattr(batch_module.QMessageBox, "warning", lambda *args: warnings.append(args[2]))
    dialog = PredictFolderDialog("/data/images", "", binary=True)
    qtbot.addWidget(dialog)
    dialog.show()
    for out, problem in (("", "Write to: choose a folder"), ("relative/out", "Write to: give the folder's full path")):
        dialog.out.setText(out)
        dialog.accept()
        assert dialog.isVisible() and warnings[-1].startswith(problem)
    dialog.images.setText("  ")
    assert dialog.problem() == "Images: choose a folder"
    dialog.images.setText("~/images")
    dialog.out.setText("/data/out")
    dialog.accept()
    assert not dialog.isVisible() and len(warnings) == 2 and dialog.result() == dialog.DialogCode.Accepted
    assert dialog.values()[:2] == (str(Path("~/images").expanduser()), "/data/out")


def test_empty_folders_are_refused_and_nothing_is_written_where_the_app_runs(qtbot, panel, checkpoint, demo_folder,
                                                                             tmp_path, monkeypatch):
    load(qtbot, panel, checkpoint)
    monkeypatch.chdir(tmp_path)
    assert not panel.folder_bar.start(str(demo_folder / "train" / "images"), "", BatchOutputs())
    assert not panel.folder_bar.start("", str(tmp_path / "out"), BatchOutputs())
    assert "choose the images and the folder to write to" in panel.banner.text()
    assert list(tmp_path.iterdir()) == []


def test_stop_says_it_is_stopping_and_a_skipped_image_is_named_once(qtbot, panel, checkpoint, demo_folder, tmp_path,
                                                                    monkeypatch):
    import app.ui.prediction_batch as batch_module

    load(qtbot, panel, checkpoint)
    images = tmp_path / "images"
    images.mkdir()
    for source in sorted((demo_folder / "train" / "images").iterdir())[:3]:
        (images / source.name).write_bytes(source.read_bytes())
    (images / "zz_bad.png").write_bytes(b"not a picture")
    result = run_batch(qtbot, panel, images, tmp_path / "out", BatchOutputs())
    assert len(result.skipped) == 1 and panel.banner.text().count("zz_bad.png") == 1, panel.banner.text()

    bar, states = panel.folder_bar, []
    real = batch_module.predict_folder

    def slow(*args, should_stop, **kwargs):
        kwargs["progress"] = lambda done, total: None
        return real(*args, should_stop=should_stop, **kwargs)

    monkeypatch.setattr(batch_module, "predict_folder", slow)
    with qtbot.waitSignal(bar.finished, timeout=WAIT):
        assert bar.start(str(images), str(tmp_path / "out2"), BatchOutputs())
        bar.stop()
        states.append((bar.stop_button.isEnabled(), bar.stop_button.text()))
    assert states == [(False, "Stopping…")]
    qtbot.waitUntil(lambda: not bar.busy, timeout=WAIT)
    assert bar.stop_button.isEnabled() and bar.stop_button.text() == "Stop"
