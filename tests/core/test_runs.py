"""The runs browser's engine: the table from synthetic run folders, damaged runs, curves,
rename/delete and their refusals, CSV export, the `runs` command, and the per-image
comparison of two tiny real runs."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

import app.cli.runs as runs_cli
from app.core.config import ExperimentConfig
from app.core.runs import (CSV_COLUMNS, FAILED, FINISHED, INCOMPLETE, STOPPED, compare_per_image, delete_run,
                           format_value, matches, read_curves, read_run, rename_run, runs_table_csv, scan_runs,
                           sort_runs, write_runs_csv)

HEADER = "epoch,train_loss,train_pixel_accuracy,val_loss,val_pixel_accuracy,val_iou,val_dice,lr,seconds\n"


def make_run(root: Path, name: str, *, config: ExperimentConfig | None = None, history: str | None = None,
             summary: dict | str | None = None, log: list[str] | None = None, checkpoints=()) -> Path:
    path = root / name
    path.mkdir(parents=True)
    if config is not None:
        config.save(path / "config.json")
    if history is not None:
        (path / "history.csv").write_text(history)
    if summary is not None:
        (path / "summary.json").write_text(summary if isinstance(summary, str) else json.dumps(summary))
    if log is not None:
        (path / "train.log").write_text("".join(f"2024-05-06 07:08:{i:02d} {line}\n" for i, line in enumerate(log)))
    for checkpoint in checkpoints:
        (path / "checkpoints").mkdir(exist_ok=True)
        (path / "checkpoints" / checkpoint).write_bytes(b"not really a checkpoint")
    return path


def config(name="exp", data="/data/cells", model="segnet", loss="focal", optimizer="sgd", lr=0.01, epochs=3):
    c = ExperimentConfig(name=name)
    c.data.path = data
    c.model.name, c.loss.name, c.optimizer.name, c.optimizer.lr = model, loss, optimizer, lr
    c.training.epochs = epochs
    return c.validate()


def finished_run(root: Path) -> Path:
    history = HEADER + ("1,0.9,0.6,0.8,0.70,0.5,0.6,0.01,10\n"
                        "2,0.7,0.7,0.5,0.80,0.6,0.75,0.005,11\n"
                        "3,0.6,0.8,0.5,0.78,0.65,0.7,0,12.5\n")
    summary = {"name": "exp-a", "reason": "completed", "epochs": 3, "lowest_loss": 0.5, "wall_seconds": 40.25,
               "device": "cuda:0", "model": "segnet"}
    return make_run(root, "20240102-030405-exp-a", config=config("exp-a"), history=history, summary=summary,
                    log=["model segnet (1 parameters), 4 training / 2 validation images, device cuda:0",
                         "finished (completed)"], checkpoints=("best.pt", "last.pt"))


# ------------------------------------------------------------------------- the table

def test_a_finished_run_gives_exact_table_values(tmp_path):
    path = finished_run(tmp_path)
    run = read_run(path)
    assert run.problems == []
    assert (run.name, run.date, run.status, run.reason, run.message) == (
        "20240102-030405-exp-a", datetime(2024, 1, 2, 3, 4, 5), FINISHED, "completed", None)
    assert (run.experiment, run.dataset, run.dataset_path) == ("exp-a", "cells", "/data/cells")
    assert (run.model, run.loss, run.optimizer, run.lr) == ("segnet", "focal", "sgd", 0.01)
    assert (run.epochs, run.epochs_planned, run.scores_on) == (3, 3, "val")
    # lowest val loss 0.5 at epochs 2 and 3: the earliest wins, as in the engine's summary
    assert (run.lowest_loss, run.lowest_loss_epoch) == (0.5, 2)
    assert (run.highest_accuracy, run.highest_accuracy_epoch) == (0.8, 2)
    assert (run.best_iou, run.best_dice, run.rand_error) == (0.65, 0.75, None)
    assert (run.wall_seconds, run.device) == (40.25, "cuda:0")  # the summary's clock, not the epochs' sum
    assert run.has_checkpoint and run.checkpoint == path / "checkpoints" / "best.pt"
    texts = {key: format_value(run, key) for key, _ in CSV_COLUMNS}
    assert texts["date"] == "2024-01-02 03:04"
    assert texts["epochs"] == "3"
    assert texts["lowest_loss"] == "0.5000"
    assert texts["wall_seconds"] == "40.2s"
    assert texts["has_checkpoint"] == "yes"
    assert texts["rand_error"] == ""


def test_a_stopped_run_skips_blank_validation_rows_and_reads_a_recorded_rand_error(tmp_path):
    history = (HEADER.strip() + ",val_adapted_rand_error\n"
               "1,0.9,0.6,,,,,0.01,5,\n"
               "2,0.8,0.65,0.7,0.75,0.4,0.55,0.01,6.5,0.3\n")
    path = make_run(tmp_path, "plain-run", config=config(epochs=10), history=history,
                    summary={"reason": "stopped", "epochs": 2, "wall_seconds": 11.5, "device": "cpu"},
                    checkpoints=("last.pt",))
    os.utime(path / "config.json", (1_700_000_000, 1_700_000_000))
    run = read_run(path)
    assert run.problems == []
    assert (run.status, run.status_text, run.reason) == (STOPPED, "stopped", "stopped")
    assert run.date == datetime.fromtimestamp(1_700_000_000)
    assert (run.lowest_loss, run.lowest_loss_epoch, run.highest_accuracy, run.highest_accuracy_epoch) == (
        0.7, 2, 0.75, 2)
    assert (run.best_iou, run.best_dice, run.rand_error) == (0.4, 0.55, 0.3)
    assert (run.wall_seconds, run.device) == (11.5, "cpu")
    assert run.checkpoint == path / "checkpoints" / "last.pt"
    assert format_value(run, "epochs") == "2/10"


def test_a_failed_run_takes_its_message_device_and_time_from_the_log_and_history(tmp_path):
    path = make_run(tmp_path, "failed-run", config=config(), history=HEADER + "1,0.9,0.6,0.8,0.7,0.5,0.6,0.01,4.5\n",
                    log=["model segnet (1 parameters), 4 training / 2 validation images, device cpu",
                         "epoch 1: train loss 0.9000",
                         "failed: the loss became nan at epoch 2, step 1: training diverged"])
    run = read_run(path)
    assert (run.status, run.message, run.reason) == (FAILED, "the loss became nan at epoch 2, step 1: training "
                                                             "diverged", None)
    assert (run.device, run.wall_seconds, run.epochs) == ("cpu", 4.5, 1)
    assert not run.has_checkpoint and run.checkpoint is None


def test_a_run_that_failed_before_its_config_is_listed_and_deletable(tmp_path):
    path = make_run(tmp_path, "bad-data", log=["failed: no training samples"])
    (path / "checkpoints").mkdir()
    runs, problems = scan_runs(tmp_path)
    assert [(r.name, r.status, r.message, r.epochs) for r in runs] == [("bad-data", FAILED, "no training samples",
                                                                       None)]
    assert problems == []
    (path / "thesis.docx").write_bytes(b"user file")  # not only a log and checkpoints: not deleted
    with pytest.raises(ValueError, match=r"holds files SegStudio did not write there \(thesis.docx\)"):
        delete_run(path)
    (path / "thesis.docx").unlink()
    delete_run(path)
    assert not path.exists()
    make_run(tmp_path, "log-only", log=["failed: x"])  # no checkpoints folder: not a run
    assert scan_runs(tmp_path) == ([], [])


def test_deleting_refuses_folders_segstudio_did_not_make_or_holding_user_files(tmp_path):
    project = make_run(tmp_path, "cells_project", config=config())  # an experiment saved into a project
    (project / "notes.txt").write_text("mine")
    (project / "data" / "images").mkdir(parents=True)
    (project / "data" / "images" / "a.png").write_bytes(b"source image")
    keras = make_run(tmp_path, "keras_model", history="epoch,accuracy,loss\n1,0.5,0.7\n")
    (keras / "model.h5").write_bytes(b"weights")
    lone = make_run(tmp_path, "experiment_only", config=config())  # never trained: the user's experiment file
    for folder in (project, keras, lone):
        with pytest.raises(ValueError, match="not a SegStudio run folder"):
            delete_run(folder)
    assert (project / "data" / "images" / "a.png").read_bytes() == b"source image"
    assert (keras / "model.h5").exists() and (lone / "config.json").exists()

    run = finished_run(tmp_path / "runs")
    (run / "checkpoints" / "mine.txt").write_text("a note")
    with pytest.raises(ValueError, match="checkpoints/mine.txt"):
        delete_run(run)
    (run / "checkpoints" / "mine.txt").unlink()
    (tmp_path / "elsewhere").mkdir()
    (run / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match=r"\(link\)"):
        delete_run(run)
    (run / "link").unlink()
    # what SegStudio writes there itself does not stop a deletion
    (run / "training-curves.png").write_bytes(b"png")
    (run / "landscape").mkdir()
    (run / "landscape" / "landscape.npz").write_bytes(b"npz")
    (run / "checkpoints" / ".last.pt.1234.tmp").write_bytes(b"half")
    delete_run(run)
    assert not run.exists() and (tmp_path / "elsewhere").is_dir()


@pytest.mark.parametrize("summary, log, epochs, expected", [
    (None, None, 2, (INCOMPLETE, None)),  # running, or killed before the end
    ({"reason": "completed", "epochs": 2}, None, 2, (FINISHED, "completed")),
    ({"reason": "time limit", "epochs": 2}, ["finished (time limit)"], 2, (FINISHED, "time limit")),
    # stopped, then resumed: the old summary no longer describes it
    ({"reason": "stopped", "epochs": 1}, ["finished (stopped)", "resumed at epoch 2, step 0"], 2, (INCOMPLETE, None)),
    ({"reason": "stopped", "epochs": 1}, ["finished (stopped)"], 2, (INCOMPLETE, None)),  # more epochs than it counts
    ({"reason": "stopped", "epochs": 1}, ["finished (stopped)", "resumed at epoch 2, step 0", "failed: boom"], 2,
     (FAILED, None)),
    ("{damaged", ["finished (completed)"], 2, (FINISHED, "completed")),  # summary lost: the log's last word
    # an attempt to continue that failed before it resumed (its data had moved): the run is as it ended
    ({"reason": "completed", "epochs": 2}, ["model unet", "finished (completed)", "failed: data folder gone"], 2,
     (FINISHED, "completed")),
    ({"reason": "stopped", "epochs": 2}, ["finished (stopped)", "failed: last.pt damaged"], 2, (STOPPED, "stopped")),
    (None, ["model unet (1 parameters)", "epoch 1: train loss 0.5", "failed: boom"], 2, (FAILED, None)),
    (None, ["failed: no images"], 0, (FAILED, None)),
])
def test_status_is_derived_from_the_summary_and_the_log(tmp_path, summary, log, epochs, expected):
    rows = "".join(f"{e},0.9,0.6,0.8,0.7,0.5,0.6,0.01,1\n" for e in range(1, epochs + 1))
    run = read_run(make_run(tmp_path, "r", config=config(), history=HEADER + rows, summary=summary, log=log))
    assert (run.status, run.reason) == expected


def test_training_only_history_scores_the_training_loss(tmp_path):
    history = "epoch,train_loss,train_pixel_accuracy,val_loss,val_pixel_accuracy,val_iou,val_dice,lr,seconds\n" \
              "1,0.9,0.6,,,,,0.01,2\n2,0.95,0.7,,,,,0.01,3\n"
    run = read_run(make_run(tmp_path, "train-only", history=history))
    assert (run.scores_on, run.lowest_loss, run.lowest_loss_epoch, run.highest_accuracy,
            run.highest_accuracy_epoch) == ("train", 0.9, 1, 0.7, 2)
    assert (run.best_iou, run.best_dice, run.model, run.dataset, run.wall_seconds) == (None, None, None, None, 5.0)


def test_a_damaged_run_is_listed_with_what_could_be_read_and_a_problem(tmp_path):
    finished_run(tmp_path)
    make_run(tmp_path, "damaged", history=HEADER + "1,0.5,0.6,0.4,0.7,0.3,0.4,0.001,2\n2,0.45",
             summary={"model": "unet", "loss": "dice", "optimizer": "adam", "lr": 0.002})
    (tmp_path / "damaged" / "config.json").write_text('{"name": ')
    make_run(tmp_path, "garbage", history=HEADER + "1,abc,0.6,0.4,0.7,0.3,0.4,0.001,2\n", summary="[1, 2]")
    runs, problems = scan_runs(tmp_path)
    assert [r.name for r in runs] == ["20240102-030405-exp-a", "damaged", "garbage"]
    damaged, garbage = runs[1], runs[2]
    assert (damaged.model, damaged.loss, damaged.optimizer, damaged.lr) == ("unet", "dice", "adam", 0.002)
    assert (damaged.epochs, damaged.lowest_loss, damaged.lowest_loss_epoch, damaged.status) == (2, 0.4, 1, INCOMPLETE)
    assert any(p.startswith("damaged: config.json: not valid JSON") for p in problems)
    assert "damaged: history.csv: 1 row(s) with missing values (truncated file?)" in problems
    assert "garbage: summary.json: not a JSON object" in problems
    assert "garbage: history.csv: 1 value(s) that are not numbers, first 'abc' in column 'train_loss' (line 2)" \
        in problems
    assert garbage.lowest_loss == 0.4 and garbage.problems and runs[0].problems == []
    assert len(problems) == len(damaged.problems) + len(garbage.problems) == 4


def test_control_bytes_of_a_binary_history_are_quoted_not_printed(tmp_path):
    """A binary history.csv's column name reached the terminal raw (bells, backspaces), and long."""
    make_run(tmp_path, "binary", history="epoch,\x07\x08" + "x" * 200 + "\n1,\x1b[2J\n")
    _, problems = scan_runs(tmp_path)
    line = next(p for p in problems if "not numbers" in p)
    assert not any(ord(c) < 32 for c in line) and "'\\x07\\x08xxx" in line and len(line) < 200, line


def test_scan_skips_what_is_not_a_run(tmp_path):
    finished_run(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"png")
    make_run(tmp_path, ".deleting-old-1234", history=HEADER)  # hidden: a deletion in progress
    (tmp_path / "notes.txt").write_text("history.csv")
    runs, problems = scan_runs(tmp_path)
    assert [r.name for r in runs] == ["20240102-030405-exp-a"] and problems == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan_runs(tmp_path / "missing")
    with pytest.raises(NotADirectoryError):
        scan_runs(tmp_path / "notes.txt")


def test_read_curves_turns_blank_and_missing_cells_into_nan(tmp_path):
    path = make_run(tmp_path, "r", history=HEADER + "1,0.9,0.6,,,,,0.01,5\n2,0.8,0.65,0.7,0.75,0.4,0.55,0.01,6\n3,0.7")
    curves = read_curves(path)
    assert list(curves) == HEADER.strip().split(",")
    nan = np.nan
    np.testing.assert_array_equal(curves["epoch"], [1, 2, 3])
    np.testing.assert_array_equal(curves["train_loss"], [0.9, 0.8, 0.7])
    np.testing.assert_array_equal(curves["val_loss"], [nan, 0.7, nan])
    np.testing.assert_array_equal(curves["seconds"], [5, 6, nan])
    assert read_curves(make_run(tmp_path, "empty", config=config())) == {}


def test_sort_puts_missing_values_last_and_filter_matches_words(tmp_path):
    a = read_run(finished_run(tmp_path))
    b = read_run(make_run(tmp_path, "b", history=HEADER + "1,0.9,0.6,0.3,0.7,0.5,0.6,0.01,1\n"))
    c = read_run(make_run(tmp_path, "c", config=config(model="unet")))
    assert [r.name for r in sort_runs([a, b, c], "lowest_loss")] == ["b", a.name, "c"]
    assert [r.name for r in sort_runs([a, b, c], "lowest_loss", descending=True)] == [a.name, "b", "c"]
    assert [r.name for r in sort_runs([c, b, a], "model")] == [a.name, "c", "b"]  # segnet < unet, b has none
    assert matches(a, "SEGNET cuda") and not matches(a, "segnet cpu") and matches(c, "unet")
    with pytest.raises(ValueError, match="unknown column"):
        sort_runs([a], "colour")


# ------------------------------------------------------------------------- rename / delete

def test_rename_renames_the_folder_and_keeps_config(tmp_path):
    path = finished_run(tmp_path)
    before = (path / "config.json").read_bytes()
    new = rename_run(path, "best segnet")
    assert new == tmp_path / "best segnet" and new.is_dir() and not path.exists()
    assert (new / "config.json").read_bytes() == before
    assert read_run(new).experiment == "exp-a"
    assert rename_run(new, "best segnet") == new  # unchanged name: nothing to do


@pytest.mark.parametrize("name, error", [
    ("", "empty"), ("   ", "empty"), ("a/b", "cannot contain"), ("a\\b", "cannot contain"),
    ("..", "dot"), (".hidden", "dot"), (" padded", "spaces"), ("a:b", "cannot contain"), ("x\n", "spaces"),
])
def test_rename_refuses_bad_names(tmp_path, name, error):
    path = finished_run(tmp_path)
    with pytest.raises(ValueError, match=error):
        rename_run(path, name)
    assert path.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_rename_refuses_taken_names_and_non_runs(tmp_path):
    path = finished_run(tmp_path)
    other = make_run(tmp_path, "other", history=HEADER)
    with pytest.raises(FileExistsError, match="already exists"):
        rename_run(path, "other")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(FileExistsError):
        rename_run(path, "a-file")
    (tmp_path / "user-data").mkdir()
    with pytest.raises(ValueError, match="not a run folder"):
        rename_run(tmp_path / "user-data", "x")
    assert path.is_dir() and other.is_dir() and (tmp_path / "a-file").read_text() == "x"


def test_delete_removes_a_run_folder(tmp_path):
    path = finished_run(tmp_path)
    keep = make_run(tmp_path, "keep", history=HEADER)
    delete_run(path)
    assert not path.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["keep"]
    delete_run(keep)  # a run with only a history is a run too
    assert list(tmp_path.iterdir()) == []


def test_delete_refuses_anything_that_is_not_a_run(tmp_path):
    data = tmp_path / "my-data"
    (data / "images").mkdir(parents=True)
    (data / "images" / "a.png").write_bytes(b"png")
    with pytest.raises(ValueError, match="not a SegStudio run folder"):
        delete_run(data)
    (data / "config.json").write_text('{"some other": "program"}')  # someone else's config
    with pytest.raises(ValueError, match="not a SegStudio run folder"):
        delete_run(data)
    (data / "history.csv").write_text("date,value\n")
    with pytest.raises(ValueError, match="not a SegStudio run folder"):
        delete_run(data)
    assert (data / "images" / "a.png").read_bytes() == b"png"
    run = finished_run(tmp_path / "runs")
    link = tmp_path / "link"
    link.symlink_to(run, target_is_directory=True)
    with pytest.raises(ValueError, match="link"):
        delete_run(link)
    assert (run / "config.json").is_file()
    with pytest.raises(FileNotFoundError):
        delete_run(tmp_path / "gone")
    with pytest.raises(ValueError):
        delete_run(run / "config.json")
    assert run.is_dir() and data.is_dir()


# ------------------------------------------------------------------------- CSV and the command

def test_csv_export_has_exact_raw_values(tmp_path):
    path = finished_run(tmp_path)
    text = runs_table_csv([read_run(path)])
    lines = text.splitlines()
    assert lines[0] == ("Name,Date,Status,Dataset,Model,Loss,Optimizer,Learning rate,Epochs,Lowest loss,"
                        "Lowest loss epoch,Highest accuracy,Highest accuracy epoch,Best IoU,Best Dice,Rand error,"
                        "Wall time,Device,Checkpoint,Planned epochs,Scores on,Reason,Message,Experiment,"
                        "Dataset path,Path")
    assert lines[1] == (f"20240102-030405-exp-a,2024-01-02 03:04:05,finished,cells,segnet,focal,sgd,0.01,3,0.5,2,"
                        f"0.8,2,0.65,0.75,,40.25,cuda:0,yes,3,val,completed,,exp-a,/data/cells,{path}")
    assert len(lines) == 2
    out = write_runs_csv(tmp_path / "table.csv", [read_run(path)])
    assert out.read_text() == text
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_runs_csv(tmp_path / "nowhere" / "table.csv", [])
    with pytest.raises(IsADirectoryError):
        write_runs_csv(tmp_path, [])
    for name in ("history.csv", "summary.json", "train.log"):  # the Runs panel's Export CSV… replaced them
        (path / name).write_text("the run's own")
        with pytest.raises(ValueError, match=f"is a run's own {name}; SegStudio never writes a table over it"):
            write_runs_csv(path / name, [read_run(path)])
        assert (path / name).read_text() == "the run's own"


def run_command(argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    runs_cli.register(sub)
    args = parser.parse_args(["runs", *argv])
    return args.func(args)


def test_runs_command_prints_an_aligned_table_sorted(tmp_path, capsys):
    finished_run(tmp_path)
    make_run(tmp_path, "b", history=HEADER + "1,0.9,0.6,0.3,0.7,0.5,0.6,0.01,1\n")
    (tmp_path / "b" / "summary.json").write_text("{")
    assert run_command([str(tmp_path), "--sort", "lowest_loss"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("Name ") and "Lowest loss" in lines[0]
    assert lines[1].startswith("b ") and lines[2].startswith("20240102-030405-exp-a ")
    status = lines[0].index("Status")  # aligned columns
    assert lines[1][status:].startswith("incomplete  ") and lines[2][status:].startswith("finished  ")
    assert lines[2][lines[0].index("Date"):].startswith("2024-01-02 03:04  ")
    assert " 0.3000 " in lines[1] and " 0.5000 " in lines[2] and "cuda:0" in lines[2]
    assert err.startswith("warning: b: summary.json: not valid JSON")
    assert run_command([str(tmp_path), "--sort", "lowest_loss", "--reverse"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("20240102-030405-exp-a ")


def test_runs_command_writes_csv_and_reports_errors(tmp_path, capsys):
    path = finished_run(tmp_path / "runs")
    target = tmp_path / "out.csv"
    assert run_command([str(tmp_path / "runs"), "--csv", str(target)]) == 0
    assert capsys.readouterr().out == f"wrote 1 run to {target}\n"
    assert target.read_text() == runs_table_csv([read_run(path)])
    from app.cli import CommandError

    mine = path / "config.json"  # a run's own files are never replaced, --force or not
    history = path / "history.csv"
    before = mine.read_bytes(), history.read_bytes()
    with pytest.raises(CommandError, match="give a file name ending in .csv"):
        run_command([str(tmp_path / "runs"), "--csv", str(mine), "--force"])
    with pytest.raises(CommandError, match="is a run's own history"):
        run_command([str(tmp_path / "runs"), "--csv", str(history), "--force"])
    assert (mine.read_bytes(), history.read_bytes()) == before
    target.write_text("old")
    with pytest.raises(CommandError, match="exists; add --force"):
        run_command([str(tmp_path / "runs"), "--csv", str(target)])
    assert run_command([str(tmp_path / "runs"), "--csv", str(target), "--force"]) == 0
    assert target.read_text() == runs_table_csv([read_run(path)])
    capsys.readouterr()
    with pytest.raises(ValueError, match="--sort 'colour' is not a column"):
        run_command([str(tmp_path / "runs"), "--sort", "colour"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_command([str(tmp_path / "missing")])
    assert run_command([]) == 0  # the default runs folder does not exist yet: no runs, no error
    assert capsys.readouterr().out.startswith("no runs in ")


# ------------------------------------------------------------------------- per-image comparison

@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny real runs (1 epoch, 2 steps) on six 64×64 demo images, and a third whose split
    moves one validation image into training."""
    from app.core.demo_data import write_demo_dataset
    from app.core.training.engine import Trainer

    root = tmp_path_factory.mktemp("compare")
    data = write_demo_dataset(root / "data", count=6, size=64, val_fraction=0.34)
    paths = []
    for seed, lr, splits in ((0, 1e-3, {}), (1, 3e-3, {}), (2, 1e-3, {"em_005": "train"})):
        c = ExperimentConfig(name=f"tiny{seed}")
        c.data.path = str(data)
        c.data.patch_size = 32
        c.data.splits = splits
        c.model.params = {"depth": 2, "base_width": 4}
        c.optimizer.lr = lr
        c.training.epochs = 1
        c.training.steps_per_epoch = 2
        c.training.batch_size = 2
        c.training.seed = seed
        c.training.device = "cpu"
        Trainer(c.validate(), root / "runs" / f"run{seed}").run()
        paths.append(root / "runs" / f"run{seed}")
    return data, paths


def test_real_runs_are_read_as_their_summaries_say(two_runs):
    _, paths = two_runs
    runs, problems = scan_runs(paths[0].parent)
    assert problems == [] and [r.name for r in runs] == ["run0", "run1", "run2"]
    for run in runs:
        summary = json.loads((run.path / "summary.json").read_text())
        assert (run.status, run.epochs, run.device, run.wall_seconds) == (FINISHED, 1, "cpu", summary["wall_seconds"])
        assert run.lowest_loss == pytest.approx(summary["lowest_loss"], rel=1e-5)
        assert run.highest_accuracy == pytest.approx(summary["highest_accuracy"], rel=1e-5)
        assert run.best_dice == pytest.approx(summary["best_dice"], rel=1e-5, abs=1e-9)
        rand = [row["val_adapted_rand_error"] for row in csv.DictReader((run.path / "history.csv").open())]
        assert run.rand_error == pytest.approx(min(map(float, rand)), rel=1e-5)  # the lowest of the epochs
        assert run.has_checkpoint and run.checkpoint.name == "best.pt"


def test_per_image_comparison_worst_first(two_runs):
    _, paths = two_runs
    calls = []
    result = compare_per_image(paths[:2], progress=lambda done, total: calls.append((done, total)),
                               keep_predictions=True)
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert result.names == ["run0", "run1"] and sorted(result.images) == ["em_004", "em_005"]
    assert result.dice.shape == result.iou.shape == (2, 2) and result.problems == []
    assert result.mean_dice[0] <= result.mean_dice[1]
    assert np.all((result.iou <= result.dice + 1e-12) & (result.iou >= 0))
    # the images are the same size, so the mean per-image pixel accuracy is the pooled one the
    # engine validated with: each column matches its own run's history at the best epoch
    for j, path in enumerate(paths[:2]):
        summary = json.loads((path / "summary.json").read_text())
        curves = read_curves(path)
        at_best = curves["val_pixel_accuracy"][list(curves["epoch"]).index(summary["best_epoch"])]
        assert result.pixel_accuracy[:, j].mean() == pytest.approx(at_best, rel=1e-5)
    from app.core.metrics import segmentation_scores

    for i, sample in enumerate(result.samples):
        assert sample.name == result.images[i]
        for j in range(2):
            labels = result.predictions[i][j]
            assert labels.shape == sample.mask.shape
            assert segmentation_scores(labels, sample.mask).dice == result.dice[i, j]
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert [r["image"] for r in rows] == result.images
    assert float(rows[0]["run1 dice"]) == result.dice[0, 1]


def test_per_image_comparison_uses_only_shared_validation_images(two_runs):
    _, paths = two_runs
    result = compare_per_image([paths[0], paths[2]])
    assert result.images == ["em_004"]
    assert result.problems == ["run0: 1 of its 2 val images are not val images of every run; left out"]


def test_per_image_comparison_stops_and_refuses(two_runs, tmp_path):
    _, paths = two_runs
    with pytest.raises(InterruptedError):
        compare_per_image(paths[:2], should_stop=lambda: True)
    no_checkpoint = make_run(tmp_path, "bare", config=config())
    with pytest.raises(ValueError, match="no checkpoint"):
        compare_per_image([paths[0], no_checkpoint])
    with pytest.raises(ValueError, match="at least one"):
        compare_per_image([])
    with pytest.raises(ValueError, match="twice"):
        compare_per_image([paths[0], paths[0]])


def test_runs_command_is_registered_with_the_segstudio_entry_point(tmp_path, capsys):
    from app.cli import main

    finished_run(tmp_path)
    assert main(["runs", str(tmp_path), "--csv", str(tmp_path / "runs.csv")]) == 0
    assert "20240102-030405-exp-a" in (tmp_path / "runs.csv").read_text()
    assert main(["runs", str(tmp_path / "missing")]) == 2
    assert "segstudio runs:" in capsys.readouterr().err


def test_a_run_holding_its_training_lock_is_training_and_cannot_be_renamed_or_deleted(tmp_path):
    import subprocess
    import sys

    from app.core.runs import delete_run, read_run, rename_run
    from app.core.training.run_folder import TRAINING_LOCK

    run = make_run(tmp_path, "busy", config=ExperimentConfig(), history=HEADER)
    assert read_run(run).training is False
    # another process trains into it (holds the lock) until told to stop
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from app.core.training.run_folder import training_lock; "
                               f"lock = training_lock(__import__('pathlib').Path({str(run)!r})); lock.acquire(); "
                               "print('held', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert read_run(run).training is True and read_run(run).status_text == "training"
        with pytest.raises(RuntimeError, match="busy is training now"):
            rename_run(run, "other")
        with pytest.raises(RuntimeError, match="cannot be deleted"):
            delete_run(run)
        assert run.exists()
    finally:
        holder.kill()  # a crash releases the lock too
        holder.wait()
    assert (run / TRAINING_LOCK).exists() and read_run(run).training is False
    assert rename_run(run, "other").name == "other"


def test_a_config_with_a_huge_integer_is_read_not_raised(tmp_path):
    """One run whose config.json held a 400-digit number made `runs` fail for the whole folder."""
    (make_run(tmp_path, "huge", summary={"reason": "completed"}) / "config.json").write_text(json.dumps(
        {"name": "huge", "model": {"name": "unet"}, "optimizer": {"lr": 10**400}, "training": {"epochs": 10**400}}))
    finished_run(tmp_path)
    runs, _ = scan_runs(tmp_path)
    huge = next(r for r in runs if r.name == "huge")
    assert huge.lr is None and len(runs) == 2


def test_a_history_row_with_an_extra_value_is_left_out_and_named(tmp_path):
    """A row with one value too many was read shifted: a loss shown as an accuracy, and so on."""
    make_run(tmp_path, "extra", history=HEADER + "1,0.5,0.6,0.4,0.7,0.3,0.4,0.001,2\n2,5,0.45,0.62,0.38,0.72,0.31,0.41,0.001,2\n")
    runs, problems = scan_runs(tmp_path)
    assert runs[0].epochs == 1 and runs[0].lowest_loss == 0.4
    assert "extra: history.csv: 1 row(s) with more values than columns (damaged file?); left out" in problems
