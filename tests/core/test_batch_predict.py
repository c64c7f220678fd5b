"""Predicting a folder (app.core.batch_predict): the files, the clean-up settings given, a bad
image skipped, stopping half-way, and the refusals before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.batch_predict import BatchError, BatchOutputs, batch_inputs, predict_folder
from app.core.demo_data import write_demo_dataset
from app.core.imageio import read_image
from app.core.postprocess import WatershedParams, watershed_postprocess

from .helpers import train_tiny_run


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from app.core.predictor import Predictor

    root = tmp_path_factory.mktemp("batch")
    data = write_demo_dataset(root / "data", count=5, size=48, val_fraction=0.4)
    checkpoint = train_tiny_run(data, root / "run") / "checkpoints" / "best.pt"
    return data / "train" / "images", checkpoint, Predictor.from_checkpoint(checkpoint, "cpu")


def test_every_file_with_the_clean_up_settings_given(model, tmp_path):
    images, checkpoint, predictor = model
    params = WatershedParams(foreground_fraction=0.3, min_object_size=5)
    seen = []
    result = predict_folder(predictor, checkpoint, images, tmp_path / "out",
                            BatchOutputs(watershed=True, overlay=True, probabilities=True), params,
                            progress=lambda done, total: seen.append((done, total)))
    stems = sorted(p.stem for p in images.iterdir())
    assert [p.name for p in result.written] == [f"{s}.png" for s in stems]
    assert seen == [(i + 1, len(stems)) for i in range(len(stems))] and not result.cancelled
    for stem in stems:
        probability = read_image(tmp_path / "out" / f"{stem}_probability.png")
        expected = watershed_postprocess(probability, params, keep_steps=False).mask
        assert np.array_equal(read_image(tmp_path / "out" / f"{stem}_watershed.png") > 0, expected > 0), stem
        assert read_image(tmp_path / "out" / f"{stem}_overlay.png").shape == (48, 48, 3)
    manifest = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert manifest["postprocess"] == params.to_dict() and manifest["skipped"] == []
    assert "stopped_after" not in manifest


def test_a_bad_image_is_skipped_and_stopping_keeps_what_was_written(model, tmp_path):
    _, checkpoint, predictor = model
    folder = tmp_path / "in"
    folder.mkdir()
    for i, source in enumerate(sorted(model[0].iterdir())):
        (folder / f"{i}.png").write_bytes(source.read_bytes())
    (folder / "1.png").write_bytes(b"not a picture")
    heard = []
    result = predict_folder(predictor, checkpoint, folder, tmp_path / "out",
                            on_image=lambda path, mask, reason: heard.append((path.name, mask is None, reason)))
    assert [s["path"] for s in result.skipped] == [str(folder / "1.png")]
    assert heard[1][:2] == ("1.png", True) and "1.png" in heard[1][2]
    assert len(result.written) == len(heard) - 1

    calls = []
    stopped = predict_folder(predictor, checkpoint, folder, tmp_path / "stopped",
                             should_stop=lambda: calls.append(1) or len(calls) > 3)
    assert stopped.cancelled and 0 < len(stopped.written) < stopped.total
    manifest = json.loads((tmp_path / "stopped" / "predictions.json").read_text())
    assert manifest["stopped_after"] == len(stopped.written) + len(stopped.skipped)


def test_refusals_name_the_folder_and_write_nothing(model, tmp_path):
    images, checkpoint, predictor = model
    with pytest.raises(BatchError, match="never writes there"):
        batch_inputs(images, images / "masks")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("x")
    with pytest.raises(BatchError, match="is not an empty folder"):
        batch_inputs(images, tmp_path / "full")
    (tmp_path / "empty_in").mkdir()
    with pytest.raises(BatchError, match="no images in"):
        batch_inputs(tmp_path / "empty_in", tmp_path / "out")
    with pytest.raises(BatchError, match="does not exist"):
        predict_folder(predictor, checkpoint, tmp_path / "nowhere", tmp_path / "out")
    assert not (images / "masks").exists() and not (tmp_path / "out").exists()


def test_the_record_says_which_files_are_whose_and_a_skipped_image_still_counts(model, tmp_path):
    """A review pairs predict's masks and maps with their images by this record: an input named
    like another's output (a.png beside a_probability.png) must not lend it its map."""
    images, checkpoint, predictor = model
    folder = tmp_path / "in"
    folder.mkdir()
    first, second = sorted(images.iterdir())[:2]
    (folder / "a.png").write_bytes(first.read_bytes())
    (folder / "a_probability.png").write_bytes(second.read_bytes())
    (folder / "z.png").write_bytes(b"")  # skipped, and last
    seen = []
    predict_folder(predictor, checkpoint, folder, tmp_path / "out", BatchOutputs(probabilities=True),
                   progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]  # the bar reaches the end though the last image was skipped
    outputs = json.loads((tmp_path / "out" / "predictions.json").read_text())["outputs"]
    assert [o["image"] for o in outputs] == ["a.png", "a_probability.png"]
    by_image = {o["image"]: o for o in outputs}
    assert by_image["a.png"]["probability"] != by_image["a_probability.png"]["mask"]
    for output in outputs:
        assert (tmp_path / "out" / output["mask"]).is_file() and (tmp_path / "out" / output["probability"]).is_file()


def test_an_image_with_nan_pixels_is_skipped_with_the_reason(model, tmp_path):
    """A float image with NaN pixels was predicted silently: NaN probabilities, a wrong mask."""
    import tifffile

    _, checkpoint, predictor = model
    folder = tmp_path / "in"
    folder.mkdir()
    good = read_image(sorted(model[0].iterdir())[0]).astype(np.float32)
    bad = good.copy()
    bad[3, 4] = np.nan
    tifffile.imwrite(folder / "good.tif", good)
    tifffile.imwrite(folder / "holes.tif", bad)
    with pytest.raises(ValueError, match=r"1 pixel\(s\) are NaN or infinite"):
        predictor.predict(bad)
    result = predict_folder(predictor, checkpoint, folder, tmp_path / "out")
    assert [p.name for p in result.written] == ["good.png"]
    assert result.skipped == [{"path": str(folder / "holes.tif"),
                               "reason": "1 pixel(s) are NaN or infinite; fill them before predicting"}]
