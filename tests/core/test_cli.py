import json
import subprocess
import sys

import numpy as np
import pytest

from app.cli import main
from app.core.dataset import load_dataset
from app.core.imageio import read_image

from .helpers import binary_mask, make_folder, save


def test_demo_data_writes_a_dataset_the_loader_reads_cleanly(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo-data", str(out), "--count", "6", "--size", "64", "--seed", "3"]) == 0
    assert "wrote 6" in capsys.readouterr().out
    ds = load_dataset(out)
    assert ds.problems == [] and len(ds.samples) == 6
    assert ds.layout == "split-folders" and ds.split_counts()["val"] >= 1
    assert ds.num_classes == 2


def test_demo_data_lesion_flavour_is_rgb(tmp_path):
    assert main(["demo-data", str(tmp_path / "l"), "--flavour", "lesion", "--count", "3", "--size", "64"]) == 0
    ds = load_dataset(tmp_path / "l")
    assert ds.problems == [] and {s.channels for s in ds.samples} == {3}


def test_demo_data_refuses_non_empty_folder(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["demo-data", str(tmp_path), "--count", "2", "--size", "32"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("segstudio demo-data:") and str(tmp_path) in err and "Traceback" not in err
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_dataset_info_text_and_json(tmp_path, capsys):
    make_folder(tmp_path, ["a", "b", "c"])
    (tmp_path / "masks" / "orphan.png").write_bytes((tmp_path / "masks" / "a.png").read_bytes())
    assert main(["dataset-info", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "3 samples" in text and "binary" in text and "orphan.png" in text
    assert main(["dataset-info", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == 3 and report["num_classes"] == 2
    assert report["problems"][0]["path"].endswith("orphan.png")


def test_dataset_info_fails_when_no_sample_is_usable(tmp_path, capsys):
    """It exited 0 and printed an invented "binary: 2 classes (0→0)" for a dataset of nothing."""
    save(tmp_path / "images" / "a.png", np.zeros((8, 8), np.uint8))
    save(tmp_path / "masks" / "a.png", np.zeros((9, 9), np.uint8))  # the wrong size: left out
    for extra in ([], ["--json"]):
        assert main(["dataset-info", str(tmp_path), *extra]) == 2
        captured = capsys.readouterr()
        assert "binary" not in captured.out and "a.png" in captured.out
        assert captured.err.strip() == f"segstudio dataset-info: no usable samples in {tmp_path}"


def test_dataset_info_gives_float_statistics_in_file_units(tmp_path, capsys):
    import tifffile

    for name in ("a", "b"):
        (tmp_path / "images").mkdir(exist_ok=True)
        tifffile.imwrite(tmp_path / "images" / f"{name}.tif", np.full((8, 8), 1000.0, np.float32))
        save(tmp_path / "masks" / f"{name}.png", binary_mask(8, 8))
    assert main(["dataset-info", str(tmp_path)]) == 0
    assert "normalisation (train): mean 1000.0000; std 0.0000 (file units)" in capsys.readouterr().out


def test_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["dataset-info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err


def test_augment_writes_what_training_draws(tmp_path):
    """It wrote every sample in file order (validation ones too) with the wrong keys, no crop and the
    split seed as the augmentation seed: pairs of sample and draw that training never makes."""
    from app.core.config import ExperimentConfig
    from app.core.experiment_data import load_experiment_data
    from app.core.patch_plan import training_patch
    from app.core.training.data import Normaliser, PatchDataset

    data = make_folder(tmp_path / "data", ["a", "b", "c", "d", "e"], size=(40, 48))
    experiment = tmp_path / "exp.json"
    experiment.write_text(json.dumps({"data": {"val_fraction": 0.4, "split_seed": 3, "patch_size": 16},
                                      "training": {"seed": 9, "steps_per_epoch": 3, "batch_size": 2},
                                      "augmentation": {"seed": 5, "transforms": [{"name": "flip"},
                                                                                 {"name": "gaussian_noise"}]}}))
    out = tmp_path / "out"
    assert main(["augment", str(data), "--out", str(out), "--config", str(experiment), "--count", "8",
                 "--epoch", "1"]) == 0
    config = ExperimentConfig.load(experiment)
    config.data.path = str(data)
    train = load_experiment_data(config).split("train")
    assert len(train) == 3  # the two validation samples are never drawn
    patches = PatchDataset(train, config, Normaliser(0.0, 1.0))
    for number in range(8):
        epoch, index = 1 + number // 6, number % 6  # 3 steps × 2 patches an epoch, rolling on
        sample, patch = training_patch(config, train, epoch, index)
        written = read_image(out / f"{number:03d}_e{epoch}_i{index}_{sample.name}_image.png")
        assert written.shape == (16, 16) and np.array_equal(written, patch.image[:, :, 0])
        patches.set_epoch(epoch)
        assert np.array_equal(patches[index][0][0].numpy(), written.astype(np.float32))  # what training trains on
        mask = read_image(out / f"{number:03d}_e{epoch}_i{index}_{sample.name}_mask.png")
        assert np.array_equal(mask, patch.mask.astype(np.uint8) * 255)


def test_augment_writes_float_and_16_bit_colour_patches_and_split_folder_names(tmp_path):
    """It crashed on float or 16-bit RGB images (PNG cannot hold them) and on train/a, val/a names."""
    import tifffile

    for kind, image in (("float", np.linspace(0, 4000, 32 * 32, dtype=np.float32).reshape(32, 32)),
                        ("rgb16", np.arange(32 * 32 * 3, dtype=np.uint16).reshape(32, 32, 3) * 20)):
        for split in ("train", "val"):
            for name in ("a", "b"):
                (tmp_path / kind / split / "images").mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(tmp_path / kind / split / "images" / f"{name}.tif", image)
                save(tmp_path / kind / split / "masks" / f"{name}.png", binary_mask(32, 32, seed=1))
        out = tmp_path / f"out-{kind}"
        assert main(["augment", str(tmp_path / kind), "--out", str(out), "--count", "2", "--patch-size",
                     "16"]) == 0
        images = sorted(out.glob("*_image.tif"))
        assert [p.name for p in images][0].startswith("000_e0_i0_train_") and len(images) == 2
        assert read_image(images[0]).dtype == image.dtype


def test_unknown_augmentation_in_pipeline_file(tmp_path, capsys):
    make_folder(tmp_path / "data", ["a"])
    (tmp_path / "p.json").write_text(json.dumps({"transforms": [{"name": "sparkle"}]}))
    assert main(["augment", str(tmp_path / "data"), "--out", str(tmp_path / "o"), "--pipeline",
                 str(tmp_path / "p.json")]) == 2
    assert "valid: flip" in capsys.readouterr().err


def test_augment_refuses_bad_counts_broken_pipelines_and_writing_into_the_dataset(tmp_path, capsys):
    data = make_folder(tmp_path / "data", ["a", "b"])
    for count in ("0", "-3"):
        with pytest.raises(SystemExit) as exited:
            main(["augment", str(data), "--out", str(tmp_path / "o"), "--count", count])
        assert exited.value.code == 2 and "is not 1 or more" in capsys.readouterr().err
    (tmp_path / "p.json").write_text("{not json")
    assert main(["augment", str(data), "--out", str(tmp_path / "o"), "--pipeline", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert "p.json: not a pipeline file" in err and "Traceback" not in err
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    assert main(["augment", str(data), "--out", str(data / "images" / "aug")]) == 2
    assert "inside the dataset folder" in capsys.readouterr().err
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before


def test_augment_names_the_files_it_left_out(tmp_path, capsys):
    data = make_folder(tmp_path / "data", ["a", "b"])
    (data / "images" / "b.png").write_bytes(b"\x89PNG truncated")
    assert main(["augment", str(data), "--out", str(tmp_path / "o"), "--count", "1"]) == 0
    assert "warning: " in (err := capsys.readouterr().err) and "b.png" in err


@pytest.mark.parametrize("entry", [["-m", "app"], ["-c", "from app.launch import main; raise SystemExit(main())"],
                                   ["-c", "from app.cli import main; raise SystemExit(main())"]])
def test_module_and_console_entry(entry):
    result = subprocess.run([sys.executable, *entry, "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "SegStudio" in result.stdout


@pytest.mark.parametrize("entry", ["main", "gui_main"])
def test_ctrl_c_while_the_command_line_is_still_importing_is_one_line(monkeypatch, capsys, entry):
    import types

    from app import launch

    def interrupted(name):  # the interrupt lands while `from app.cli import ...` runs
        raise KeyboardInterrupt

    importing = types.ModuleType("app.cli")
    importing.__getattr__ = interrupted
    monkeypatch.setitem(sys.modules, "app.cli", importing)
    assert getattr(launch, entry)() == 130
    assert capsys.readouterr().err == "segstudio: interrupted\n"


def test_console_scripts_start_through_the_launcher():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"segstudio": "app.launch:main"}
    assert project["gui-scripts"] == {"segstudio-gui": "app.launch:gui_main"}


def test_screenshot_needs_self_test(capsys):
    with pytest.raises(SystemExit):
        main(["--screenshot", "x.png"])
    assert "--screenshot needs --self-test" in capsys.readouterr().err

@pytest.mark.parametrize("argv", [[], ["--review", "somewhere"]])
def test_no_display_is_one_line_not_a_qt_abort(monkeypatch, capsys, argv):
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("segstudio: no display") and err.count("\n") == 1


def test_self_test_never_replaces_an_existing_file_with_its_screenshot(tmp_path, capsys):
    mine = tmp_path / "holiday.png"
    mine.write_bytes(b"MY PHOTO")
    with pytest.raises(SystemExit) as exited:
        main(["--self-test", "--screenshot", str(mine)])
    assert exited.value.code == 2 and "exists; name a new file" in capsys.readouterr().err
    assert mine.read_bytes() == b"MY PHOTO"
