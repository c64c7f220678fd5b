"""``segstudio run-rename``, ``run-delete`` and ``compare`` (app.cli.run_manage)."""

from __future__ import annotations

import csv
import shutil

import pytest

from app.cli import main
from app.core.demo_data import write_demo_dataset

from .helpers import one_line_error, train_tiny_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    data = write_demo_dataset(root / "data", count=5, size=48, val_fraction=0.4)
    return data, [train_tiny_run(data, root / "runs" / f"seed{seed}", seed) for seed in (1, 2)]


@pytest.fixture
def run_copy(trained, tmp_path):
    copy = tmp_path / "runs" / "mine"
    shutil.copytree(trained[1][0], copy)
    return copy


def test_rename_moves_the_folder_and_refuses_a_taken_or_bad_name(run_copy, capsys):
    assert main(["run-rename", str(run_copy), "better"]) == 0
    target = run_copy.parent / "better"
    assert target.is_dir() and not run_copy.exists() and (target / "checkpoints" / "best.pt").is_file()
    assert capsys.readouterr().out.strip() == f"renamed {run_copy} to {target}"
    (run_copy.parent / "taken").mkdir()
    assert main(["run-rename", str(target), "taken"]) == 2
    assert "already exists" in one_line_error(capsys, "run-rename")
    assert main(["run-rename", str(target), "a/b"]) == 2
    assert "cannot contain '/'" in one_line_error(capsys, "run-rename")
    assert target.is_dir()


def test_delete_needs_yes_and_never_deletes_a_folder_with_user_files(run_copy, tmp_path, capsys):
    assert main(["run-delete", str(run_copy)]) == 2
    assert "add --yes" in one_line_error(capsys, "run-delete")
    assert run_copy.is_dir()

    project = tmp_path / "project"
    shutil.copytree(run_copy, project)
    (project / "my_notes.txt").write_text("mine")
    assert main(["run-delete", str(project), str(run_copy), "--yes"]) == 2  # the run goes, the project stays
    captured = capsys.readouterr()
    assert "my_notes.txt" in captured.err and "not deleted" in captured.err
    assert captured.out.strip() == f"deleted {run_copy}"
    assert not run_copy.exists() and (project / "my_notes.txt").read_text() == "mine"


def test_compare_prints_per_image_dice_worst_first_and_writes_csv(trained, tmp_path, capsys):
    _, runs = trained
    table = tmp_path / "compare.csv"
    assert main(["compare", *map(str, runs), "--device", "cpu", "--csv", str(table)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["image", "mean", "Dice", "seed1", "Dice", "seed2", "Dice"]
    body = [line.split() for line in lines[1:-1] if not line.startswith(("mean of", "wrote"))]
    assert len(body) == 2  # the two validation images
    means = [float(row[1]) for row in body]
    assert means == sorted(means)  # worst first
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["image"] for row in rows] == [row[0] for row in body]
    assert [round(float(row["seed1 dice"]), 4) for row in rows] == [float(row[2]) for row in body]
    assert main(["compare", *map(str, runs), "--device", "cpu", "--csv", str(table)]) == 2
    assert "add --force" in one_line_error(capsys, "compare")


def test_compare_a_folder_without_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty")]) == 2
    assert "has no checkpoint" in one_line_error(capsys, "compare")


def test_renaming_to_the_same_name_changes_nothing(run_copy, capsys):
    assert main(["run-rename", str(run_copy), run_copy.name]) == 0
    assert capsys.readouterr().out.strip() == f"{run_copy} is already named {run_copy.name}; nothing changed"
    assert run_copy.is_dir()


def test_renaming_a_missing_folder_to_its_own_name_is_still_refused(tmp_path, capsys):
    missing = tmp_path / "gone"
    assert main(["run-rename", str(missing), "gone"]) == 2
    assert "is not a run folder" in one_line_error(capsys, "run-rename")


def test_a_run_named_as_dot_or_dot_dot_is_renamed_by_its_own_name(run_copy, capsys, monkeypatch):
    """'.' has no name of its own: renaming it failed with 'Device or resource busy'."""
    monkeypatch.chdir(run_copy)
    assert main(["run-rename", ".", run_copy.name]) == 0  # its own name: nothing to do
    assert main(["run-rename", ".", "from-inside"]) == 0
    moved = run_copy.parent / "from-inside"
    assert moved.is_dir() and not run_copy.exists()
    monkeypatch.chdir(moved / "checkpoints")
    assert main(["run-rename", "..", "from-below"]) == 0
    assert (run_copy.parent / "from-below" / "checkpoints").is_dir()
