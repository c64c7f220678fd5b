"""train / predict / evaluate through the command line, on a tiny demo dataset."""

import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.core.demo_data import write_demo_dataset
from app.core.imageio import read_image, write_image
from app.core.postprocess import WatershedParams

from .helpers import one_line_error, train_tiny_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = write_demo_dataset(root / "data", count=5, size=48, val_fraction=0.4)
    return data, train_tiny_run(data, root / "run")


def test_train_writes_a_run_folder(trained, capsys):
    _, run = trained
    assert (run / "checkpoints" / "best.pt").exists()
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 2
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["epochs"] == 1 and config["data"]["patch_size"] == 32
    assert config["model"]["params"] == {"depth": 2, "base_width": 4}


def test_predict_writes_binary_masks_and_never_into_the_input(trained, tmp_path, capsys):
    data, run = trained
    images = data / "val" / "images"
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(run / "checkpoints/best.pt"), "--input", str(images),
                 "--out", str(out), "--watershed", "--overlay", "--device", "cpu"]) == 0
    names = sorted(p.name for p in out.iterdir())
    stems = sorted(p.stem for p in images.iterdir())
    assert names == sorted([f"{s}.png" for s in stems] + [f"{s}_watershed.png" for s in stems]
                           + [f"{s}_overlay.png" for s in stems] + ["predictions.json"])
    manifest = json.loads((out / "predictions.json").read_text())  # read by a review of these masks
    assert manifest["model"] == "unet" and manifest["checkpoint"] == str((run / "checkpoints/best.pt").resolve())
    assert manifest["postprocess"] == WatershedParams().to_dict()  # every setting, not only the changed ones
    mask = read_image(out / f"{stems[0]}.png")
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255} and mask.shape == (48, 48)
    assert read_image(out / f"{stems[0]}_overlay.png").shape == (48, 48, 3)
    before = sorted(p.name for p in images.iterdir())
    assert main(["predict", "--checkpoint", str(run / "checkpoints/best.pt"), "--input", str(images),
                 "--out", str(images / "masks_here")]) == 2
    assert "never writes there" in capsys.readouterr().err
    assert sorted(p.name for p in images.iterdir()) == before


def test_evaluate_prints_json_before_and_after_watershed(trained, capsys):
    data, run = trained
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run / "checkpoints/best.pt"), "--data", str(data),
                 "--per-image", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    for block in ("before_watershed", "after_watershed"):
        assert set(report[block]) == {"pixel_accuracy", "iou", "dice", "adapted_rand_error"}
        assert 0 <= report[block]["pixel_accuracy"] <= 1
    assert report["images"] == 2 and len(report["per_image"]) == 2


def test_evaluate_on_an_image_without_objects_prints_valid_json(trained, tmp_path, capsys):
    """An all-background validation mask made the Rand error NaN: invalid JSON, and a NaN mean."""
    import shutil

    data, run = trained
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    first = sorted((copy / "val" / "masks").iterdir())[0]
    write_image(first, np.zeros_like(read_image(first)))
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run / "checkpoints/best.pt"), "--data", str(copy),
                 "--per-image", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert "RuntimeWarning" not in captured.err
    rows = {row["name"]: row for row in report["per_image"]}
    assert rows[first.stem]["adapted_rand_error"] is None
    other = [row["adapted_rand_error"] for name, row in rows.items() if name != first.stem]
    assert report["before_watershed"]["adapted_rand_error"] == pytest.approx(np.mean(other))


def test_bad_checkpoint_is_one_line(trained, tmp_path, capsys):
    data, _ = trained
    (tmp_path / "bad.pt").write_bytes(b"junk")
    assert main(["predict", "--checkpoint", str(tmp_path / "bad.pt"), "--input", str(data / "val" / "images"),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.pt" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_resume_continues_a_run_folder_to_more_epochs(trained, tmp_path, capsys):
    import shutil

    run = shutil.copytree(trained[1], tmp_path / "run")
    assert main(["train", "--resume", str(run), "--quiet"]) == 2  # it has done what it planned
    assert f"cannot resume {run}: it has trained 1 of 1 epochs; ask for more epochs" in one_line_error(capsys, "train")
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 0
    assert "finished (completed)" in capsys.readouterr().out
    assert len((run / "history.csv").read_text().splitlines()) == 3
    assert json.loads((run / "config.json").read_text())["training"]["epochs"] == 2
    with (run / "train.log").open("a") as log:  # as if epoch 3 had diverged
        log.write("2026-11-24 10:00:00 resumed at epoch 3, step 0\n"
                  "2026-11-24 10:00:01 failed: the loss became nan at epoch 3, step 1: training diverged. "
                  "Try a lower learning rate\n")
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 0
    assert "give --lr to lower it" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--epochs", "4", "--lr", "1e-4", "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["optimizer"]["lr"] == 1e-4
    assert "learning rate 0.001 -> 0.0001 from here on" in (run / "train.log").read_text()


def test_train_rejects_bad_options_in_one_line(capsys):
    assert main(["train", "--model", "resnet", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "valid: unet" in err


def test_evaluate_scores_the_split_the_model_was_trained_with(trained, capsys):
    data, run = trained
    config = json.loads((run / "config.json").read_text())
    from app.core.config import ExperimentConfig
    from app.core.training.engine import load_experiment_data
    expected = sorted(s.name for s in load_experiment_data(ExperimentConfig.from_dict(config), data).split("val"))
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run / "checkpoints/best.pt"), "--data", str(data),
                 "--per-image", "--device", "cpu"]) == 0
    assert sorted(r["name"] for r in json.loads(capsys.readouterr().out)["per_image"]) == expected


def test_predict_keeps_both_outputs_of_inputs_sharing_a_stem(trained, tmp_path):
    data, run = trained
    source = next((data / "val" / "images").iterdir())
    inputs = tmp_path / "in"
    inputs.mkdir()
    image = read_image(source)
    from PIL import Image
    Image.fromarray(image).save(inputs / "a.png")
    Image.fromarray(image).save(inputs / "a.tif")
    assert main(["predict", "--checkpoint", str(run / "checkpoints/best.pt"), "--input", str(inputs),
                 "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png.png", "a.tif.png", "predictions.json"]


def test_resume_accepts_only_epochs_time_limit_and_lr(trained, tmp_path, capsys):
    _, run = trained
    assert main(["train", "--resume", str(run), "--lr", "0.1", "--batch-size", "3"]) == 2
    assert "only --epochs, --time-limit and --lr can change (not --batch-size)" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["train", "--out", str(afile), "--epochs", "1"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_predictor_rescales_other_bit_depths_to_the_training_one(trained):
    from app.core.predictor import Predictor
    _, run = trained
    predictor = Predictor.from_checkpoint(run / "checkpoints/best.pt", "cpu")
    assert predictor.image_dtype == np.uint8
    scaled = predictor._to_training_depth(np.full((2, 2, 1), 65535, np.uint16))
    assert np.allclose(scaled, 255.0)
    image = np.full((48, 48), 65535, np.uint16)
    assert predictor.predict(image).labels.shape == (48, 48)


def test_train_stores_loss_surface_slices_when_asked(trained, tmp_path, capsys):
    data, _ = trained
    code = main(["train", "--data", str(data), "--model", "unet", "--epochs", "2", "--patch-size", "32",
                 "--batch-size", "2", "--device", "cpu", "--landscape-every", "1",
                 "--landscape-losses", "dice,bce", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "epoch 2: loss-surface slice saved in" in out
    assert sorted(p.name for p in (tmp_path / "run" / "landscapes").iterdir()) == ["epoch_001.npz", "epoch_002.npz"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["training"]["landscape_every"] == 1 and config["training"]["landscape_losses"] == "dice,bce"


def test_predict_output_names_never_collide():
    from pathlib import Path

    from app.core.batch_predict import output_names

    inputs = [Path("dup.png"), Path("dup.tif"), Path("dup.png.png"), Path("a.png"), Path("a_watershed.png"),
              Path("B.png"), Path("b.tif")]
    names = output_names(inputs, ["", "_watershed"])
    files = [f"{n}{s}.png".lower() for n in names for s in ("", "_watershed")]
    assert len(set(files)) == len(files) and "predictions.json" not in files
    assert names[:2] == ["dup.png", "dup.tif"] and names[3] == "a"
    assert names[5:] == ["B.png", "b.tif"]  # one stem in two cases: a case-blind disk would merge them


def test_predict_goes_on_past_an_image_the_model_cannot_take(trained, tmp_path, capsys):
    import tifffile

    data, run = trained
    inputs = tmp_path / "in"
    inputs.mkdir()
    good = read_image(next((data / "val" / "images").iterdir()))
    from PIL import Image
    Image.fromarray(good).save(inputs / "a.png")
    tifffile.imwrite(inputs / "five.tif", np.zeros((5, 48, 48), np.uint8), photometric="minisblack", planarconfig="separate")
    Image.fromarray(good).save(inputs / "z.png")
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(run / "checkpoints/best.pt"), "--input", str(inputs),
                 "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "skipped five.tif" in printed and "2 of 3" in printed
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "predictions.json", "z.png"]
    skipped = json.loads((out / "predictions.json").read_text())["skipped"]
    assert [s["path"] for s in skipped] == [str(inputs / "five.tif")] and skipped[0]["reason"]


def test_evaluate_names_a_class_count_the_model_does_not_predict(trained, tmp_path, capsys):
    from app.core.demo_data import write_demo_dataset

    _, run = trained
    data = write_demo_dataset(tmp_path / "data", count=4, size=48, val_fraction=0.5)
    for mask_path in data.glob("*/masks/*"):
        mask = read_image(mask_path).copy()
        mask[:4, :4] = 128  # a third class
        from PIL import Image
        Image.fromarray(mask).save(mask_path)
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run / "checkpoints/best.pt"), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "3 classes" in err and "predicts 2" in err and "Traceback" not in err


def test_train_on_a_missing_folder_makes_no_run_folder(tmp_path, capsys):
    from app.core.training.run_folder import default_runs_dir

    runs = default_runs_dir()
    before = sorted(runs.iterdir()) if runs.exists() else []
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--epochs", "1"]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
    assert (sorted(runs.iterdir()) if runs.exists() else []) == before


def test_a_relative_data_path_is_recorded_absolute_so_the_run_resumes_from_anywhere(trained, tmp_path,
                                                                                   monkeypatch, capsys):
    data, _ = trained
    monkeypatch.chdir(data.parent)
    assert main(["train", "--data", data.name, "--model", "unet", "--epochs", "1", "--patch-size", "32",
                 "--batch-size", "2", "--device", "cpu", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["path"] == str(data)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", str(tmp_path / "run"), "--epochs", "2", "--quiet"]) == 0


def test_a_review_of_predicted_masks_cleans_up_the_probabilities_as_predict_did(trained, tmp_path, capsys):
    """predict --probabilities writes the maps; a review of that folder cleans them up, so its
    "after clean-up" view is predict's NAME_watershed.png, and a changed map is refused."""
    from app.core.review import ReviewStore

    data, run = trained
    images, out = data / "val" / "images", tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(run / "checkpoints/best.pt"), "--input", str(images),
                 "--out", str(out), "--watershed", "--probabilities", "--device", "cpu"]) == 0
    stems = sorted(p.stem for p in images.iterdir())
    probability = read_image(out / f"{stems[0]}_probability.png")
    assert probability.dtype == np.uint8 and probability.shape == (48, 48) and len(np.unique(probability)) > 2
    assert main(["review-new", str(tmp_path / "review"), "--images", str(images), "--masks", str(out)]) == 0
    assert "problem" not in capsys.readouterr().out.lower()
    store = ReviewStore.open(tmp_path / "review", read_only=True)
    for case in store.record.cases:
        assert case.probability == str((out / f"{case.name}_probability.png").resolve()) and case.probability_digest
        data_ = store.load_case(case.name)
        cleaned = store.export_mask(case.__class__(**{**vars(case), "state": "accepted", "variant": "watershed"}),
                                    data_)
        assert np.array_equal(cleaned.astype(bool), read_image(out / f"{case.name}_watershed.png") > 0), case.name
    (out / f"{stems[0]}_probability.png").write_bytes((out / f"{stems[1]}_probability.png").read_bytes())
    with pytest.raises(Exception, match="has changed since the review was created"):
        store.load_case(stems[0])


def test_the_epoch_line_gives_the_validation_scores_and_rand_error(trained, tmp_path, capsys):
    data, _ = trained
    capsys.readouterr()
    train_tiny_run(data, tmp_path / "again")
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("epoch 1:"))
    row = (tmp_path / "again" / "history.csv").read_text().splitlines()[1].split(",")
    assert f"Dice {float(row[6]):.4f}" in line and f"Rand {float(row[9]):.3f}" in line, line


def test_a_review_pairs_predicts_files_by_its_record_not_by_their_names(trained, tmp_path, capsys):
    """An image named like another's map (a_probability.png beside a.png): by name, case a took
    the other image's mask as its probability map, or its own map was taken for the other's mask."""
    from app.core.review import ReviewStore

    data, run = trained
    images = sorted((data / "val" / "images").iterdir())
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(images[0].read_bytes())
    (folder / "a_probability.png").write_bytes(images[1].read_bytes())
    for flags in ([], ["--probabilities"]):
        out, review = tmp_path / f"pred{len(flags)}", tmp_path / f"review{len(flags)}"
        assert main(["predict", "--checkpoint", str(run / "checkpoints/best.pt"), "--input", str(folder),
                     "--out", str(out), "--device", "cpu", *flags]) == 0
        assert main(["review-new", str(review), "--images", str(folder), "--masks", str(out)]) == 0
        outputs = {o["image"]: o for o in json.loads((out / "predictions.json").read_text())["outputs"]}
        store = ReviewStore.open(review, read_only=True)
        assert {case.name for case in store.record.cases} == {"a", Path(outputs["a_probability.png"]["mask"]).stem}
        for case in store.record.cases:
            image = Path(case.image).name
            assert Path(case.mask).name == outputs[image]["mask"], case.name
            expected = outputs[image].get("probability")
            assert (Path(case.probability).name if case.probability else None) == expected, case.name
        assert store.record.problems == []


def test_a_dark_probability_map_stays_dark_in_a_review(trained, tmp_path):
    """An 8-bit map whose largest value is 1 (an image without cells) was read like a 0/1 mask,
    every pixel 255: the review's clean-up found cells that predict's did not."""
    from app.core.imageio import write_image
    from app.core.review import ReviewStore

    data, _ = trained
    image = sorted((data / "val" / "images").iterdir())[0]
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    (images / "x.png").write_bytes(image.read_bytes())
    shape = read_image(image).shape[:2]
    write_image(masks / "x.png", np.zeros(shape, np.uint8))
    write_image(masks / "x_probability.png", np.ones(shape, np.uint8))  # probabilities of 0.004
    (masks / "predictions.json").write_text(json.dumps(
        {"outputs": [{"image": "x.png", "mask": "x.png", "probability": "x_probability.png"}]}))
    assert main(["review-new", str(tmp_path / "review"), "--images", str(images), "--masks", str(masks)]) == 0
    store = ReviewStore.open(tmp_path / "review", read_only=True)
    case = store.record.cases[0]
    assert case.probability and store.load_case("x").source_gray.max() == 1
    watershed = store.export_mask(case.__class__(**{**vars(case), "state": "accepted", "variant": "watershed"}),
                                  store.load_case("x"))
    assert not watershed.any()


def test_a_home_relative_data_path_in_a_config_is_expanded(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "exp.json"
    config.write_text(json.dumps({"data": {"path": "~/no-such-data"}}))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) != 0
    error = capsys.readouterr().err
    assert str(tmp_path / "no-such-data") in error and "~" not in error, error


def test_a_relative_data_path_in_a_config_is_taken_from_the_configs_folder(tmp_path, capsys, monkeypatch):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir(), elsewhere.mkdir()
    config = project / "exp.json"
    config.write_text(json.dumps({"data": {"path": "no-such-data"}}))
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) != 0
    error = capsys.readouterr().err
    assert f"{project / 'no-such-data'} does not exist" in error, error


def test_a_gpu_that_is_not_there_is_refused_before_a_run_folder_is_made(tmp_path, capsys, monkeypatch):
    """`--device cuda` without CUDA failed inside the engine: a 'failed' run folder was left behind."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = write_demo_dataset(tmp_path / "data", count=4, size=32)
    capsys.readouterr()
    assert main(["train", "--data", str(data), "--device", "cuda", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "sees no CUDA GPU" in one_line_error(capsys, "train")
    assert not (tmp_path / "run").exists()


def test_a_run_that_ends_before_its_first_epoch_says_so():
    """The summary line printed a raw 'best val_dice None at epoch 0' (Ctrl-C before an epoch ended)."""
    from app.cli.train import finished_line

    summary = {"reason": "stopped", "best_metric": "val_dice", "best_value": None, "best_epoch": 0,
               "wall_seconds": 0.17, "device": "cpu"}
    assert finished_line(summary) == "finished (stopped): no epoch finished; 0.17s on cpu"
    summary.update(best_value=0.9, best_epoch=3)
    assert finished_line(summary) == "finished (stopped): best val_dice 0.9 at epoch 3; 0.17s on cpu"


def test_an_abort_before_anything_was_written_leaves_no_dead_run_folder(tmp_path, capsys, monkeypatch):
    """Two quick Ctrl-Cs left an --out folder holding only an empty checkpoints/: `train --out` refused
    it as not empty and `--resume` as not a run, so the user had to delete it by hand."""
    from app.core.training import engine

    data = write_demo_dataset(tmp_path / "data", count=4, size=32)
    options = ["--data", str(data), "--epochs", "1", "--patch-size", "32", "--batch-size", "2", "--device", "cpu",
               "--quiet"]

    def aborted(self):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(engine.Trainer, "run", aborted)
        assert main(["train", *options, "--out", str(tmp_path / "new")]) == 130
        assert not (tmp_path / "new").exists()  # the folder this command made is gone
        (tmp_path / "mine").mkdir()
        assert main(["train", *options, "--out", str(tmp_path / "mine")]) == 130
        assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())  # the user's stays, empty

    (tmp_path / "left" / "checkpoints").mkdir(parents=True)  # what an older SegStudio's abort left
    (tmp_path / "left" / ".training.lock").touch()
    assert main(["train", *options, "--out", str(tmp_path / "left")]) == 0
    assert (tmp_path / "left" / "checkpoints" / "last.pt").exists()

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["train", *options, "--out", str(tmp_path / "notes")]) == 2
    error = one_line_error(capsys, "train")
    assert "is not empty; choose a new run folder" in error and "--resume" not in error  # not a run: no resume
