import json
import subprocess
import sys

import numpy as np
import pytest

from app.cli import main
from app.core.dataset import load_dataset
from app.core.imageio import read_image

from .helpers import make_folder


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


def test_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["dataset-info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err


def test_augment_writes_what_training_draws(tmp_path):
    make_folder(tmp_path / "data", ["a", "b"], size=(20, 24))
    pipeline = tmp_path / "p.json"
    pipeline.write_text(json.dumps({"seed": 5, "transforms": [{"name": "flip"}, {"name": "gaussian_noise"}]}))
    out = tmp_path / "out"
    assert main(["augment", str(tmp_path / "data"), "--out", str(out), "--pipeline", str(pipeline),
                 "--count", "3"]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 6 and files[0].startswith("000_")
    from app.core.augment import Pipeline
    ds = load_dataset(tmp_path / "data")
    expected = Pipeline.from_json(pipeline.read_text())(ds.samples[0].image, ds.samples[0].mask, key=(0, 0))
    written = read_image(out / f"000_{ds.samples[0].name}_image.png")
    assert np.array_equal(written, expected.image[:, :, 0])


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
