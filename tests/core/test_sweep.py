"""Sweeps: spec parsing and validation, grid expansion, running tiny sweeps end to end (resume,
stop, failures), the results table, heat map and CSV, and ``segstudio sweep``."""

import argparse
import csv
import json
import math
import re
import shutil

import numpy as np
import pytest
import torch

import app.cli.sweep as sweep_cli
from app.cli import _expected_errors
from app.core.demo_data import write_demo_dataset
from app.core.models import MODELS
from app.core.sweep import SWEEP_FILE, SweepError, SweepSpec, expand
from app.core.sweep_run import read_state, run_sweep
from app.core.sweep_results import heatmap, results_csv, results_table
from app.core.training import engine as engine_module
from app.core.training.checkpoint import load_checkpoint

GRID_2X2 = {"model.name": ["unet", "segnet"], "loss.name": ["dice", "focal"]}
NAMES_2X2 = ["unet__dice", "unet__focal", "segnet__dice", "segnet__focal"]


def tiny_base(data) -> dict:
    """Depth-2 U-Net (SegNet) of width 4 on 32-pixel patches, 1 epoch of 2 steps, on the CPU."""
    return {"data": {"path": str(data), "patch_size": 32},
            "model": {"name": "unet", "params": {"depth": 2, "base_width": 4}},
            "training": {"epochs": 1, "batch_size": 2, "steps_per_epoch": 2, "device": "cpu"}}


def tiny_spec(data, grid=None, **kw) -> SweepSpec:
    return SweepSpec.from_dict({"name": "tiny", "base": tiny_base(data), "grid": grid or GRID_2X2, **kw})


def snapshot(folder):
    """Every file under ``folder`` with its modification time (ns) and size."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("sweepdata") / "demo", count=6, size=64)


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """A 2×2 sweep (U-Net, SegNet × Dice, focal) run once to the end."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    reports = []
    result = run_sweep(tiny_spec(data), out, progress=reports.append)
    return out, result, reports


# -- the spec ----------------------------------------------------------------------------------
def test_spec_from_file_resolves_base_and_out_beside_it_and_round_trips(tmp_path):
    (tmp_path / "exp.json").write_text(json.dumps({"optimizer": {"name": "sgd", "lr": 0.01}}))
    (tmp_path / "s.json").write_text(json.dumps({"name": "lr", "base": "exp.json", "seed": 7, "device": "cpu",
                                                 "grid": {"optimizer.lr": [0.1, 0.01]}, "out": "results"}))
    spec = SweepSpec.load(tmp_path / "s.json")
    assert spec.output_dir() == tmp_path / "results"
    base = spec.base_config()
    assert (base.optimizer.name, base.training.seed, base.training.device) == ("sgd", 7, "cpu")
    assert SweepSpec.from_dict(spec.to_dict(), tmp_path) == spec
    inline = spec.to_dict(resolve_base=True)
    assert inline["base"]["optimizer"]["name"] == "sgd" and inline["base"]["training"]["seed"] == 7
    assert expand(SweepSpec.from_dict(inline)) and [p.config for p in expand(SweepSpec.from_dict(inline))] == \
        [p.config for p in expand(spec)]


def test_relative_data_paths_of_a_base_are_taken_from_the_file_they_are_written_in(tmp_path, monkeypatch):
    (tmp_path / "bases").mkdir()
    (tmp_path / "bases" / "exp.json").write_text(json.dumps({"data": {"path": "isbi"}}))
    (tmp_path / "from_file.json").write_text(json.dumps({"base": "bases/exp.json", "grid": {"optimizer.lr": [0.1]}}))
    (tmp_path / "inline.json").write_text(json.dumps({"base": {"data": {"path": "isbi"}},
                                                      "grid": {"optimizer.lr": [0.1]}}))
    monkeypatch.chdir(tmp_path / "bases")  # neither file's folder decides, not the working folder
    assert SweepSpec.load(tmp_path / "from_file.json").base_config().data.path == str(tmp_path / "bases" / "isbi")
    assert SweepSpec.load(tmp_path / "inline.json").base_config().data.path == str(tmp_path / "isbi")


def test_sweep_and_base_files_with_a_byte_order_mark_load(tmp_path):
    (tmp_path / "exp.json").write_text(json.dumps({"optimizer": {"name": "sgd"}}), encoding="utf-8-sig")
    (tmp_path / "s.json").write_text(json.dumps({"base": "exp.json", "grid": {"optimizer.lr": [0.1]}}),
                                     encoding="utf-8-sig")
    assert SweepSpec.load(tmp_path / "s.json").base_config().optimizer.name == "sgd"


@pytest.mark.parametrize("data, message", [
    ({"grid": {"loss.name": ["dice"]}, "gird": {}}, "gird: unknown key in the sweep; valid: name, base, grid, seed, "
                                                    "device, out"),
    ({"name": "x"}, "grid: missing"),
    ({"grid": {}}, "grid must map experiment fields to lists of values"),
    ({"grid": {"loss.nme": ["dice"]}}, "grid.loss.nme: unknown key 'nme' in loss; valid: name, params, weight_map, "
                                       "weight_map_w0, weight_map_sigma"),
    ({"grid": {"trainin.epochs": [1]}}, "grid.trainin.epochs: unknown key 'trainin' in the experiment; valid: name, "
                                        "data, augmentation, model"),
    ({"grid": {"optimizer.lr.x": [1]}}, "grid.optimizer.lr.x: optimizer.lr is a single value, not a section"),
    ({"grid": {"model.name": ["unet", "unett"]}}, "grid.model.name: 'unett' is not a registered model; valid: "
                                                  + ", ".join(MODELS.names())),
    ({"grid": {"loss.name": ["bce", "dice"], "loss.params.alpah": [0.5]}},
     "grid.loss.params.alpah: no loss in this sweep (bce, dice) has a parameter 'alpah'; valid: batch, "
     "class_weighting, include_background, pos_weight, smooth"),
    ({"grid": {"loss.params.alpha": [0.5]}}, "grid.loss.params.alpha: no loss in this sweep (dice_ce)"),
    ({"grid": {"training.seed": [1, 2]}}, "grid.training.seed: a sweep keeps one seed, device and data split"),
    ({"grid": {"data.val_fraction": [0.1, 0.2]}}, "grid.data.val_fraction: a sweep keeps one seed"),
    ({"grid": {"optimizer.lr": 0.1}}, "grid.optimizer.lr must be a non-empty list of values, got 0.1"),
    ({"grid": {"optimizer.lr": []}}, "grid.optimizer.lr must be a non-empty list"),
    ({"grid": {"optimizer.lr": [0.1, 0.1]}}, "grid.optimizer.lr lists a value twice: [0.1, 0.1]"),
    ({"grid": {"optimizer.lr": [0.1]}, "seed": -1}, "seed must be a whole number, 0 or more, or null; got -1"),
    ({"grid": {"optimizer.lr": [0.1]}, "device": "gpu"}, "device = 'gpu' is not allowed"),
    ({"grid": {"optimizer.lr": [0.1]}, "base": {"model": {"name": "x"}}},
     "base: model.name = 'x' is not registered; valid: " + ", ".join(MODELS.names())),
    ({"grid": {"optimizer.lr": [0.1]}, "base": 3}, "base must be an experiment object, a path"),
])
def test_spec_errors_name_the_bad_key(data, message):
    with pytest.raises(SweepError) as info:
        SweepSpec.from_dict(data)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, _expected_errors())  # `segstudio sweep` reports it as one line, exit 2


def test_every_point_is_validated_before_any_run(tmp_path):
    with pytest.raises(SweepError, match=r"^point unet__lr100\.0 \(model\.name='unet', optimizer\.lr=100\.0\): "
                                         r"optimizer\.lr must be a number in \[1e-09, 10\.0\]; got 100\.0$"):
        expand(SweepSpec.from_dict({"grid": {"model.name": ["unet"], "optimizer.lr": [0.001, 100.0]}}))
    spec = SweepSpec.from_dict({"grid": {"loss.name": ["tversky"], "loss.params.alpha": [0.0, 0.5],
                                         "loss.params.beta": [0.0]}})
    with pytest.raises(SweepError, match=r"^point tversky__alpha0.0__beta0.0 \(.*\): loss.params: loss 'tversky': "
                                         "alpha and beta cannot both be 0"):
        expand(spec)  # (the registry's check between parameters: no longer only when the loss is built)
    with pytest.raises(SweepError, match="tversky__alpha0.0__beta0.0"):
        run_sweep(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written, nothing trained


def test_missing_sweep_file_is_one_line(tmp_path):
    with pytest.raises(SweepError, match=f"^{tmp_path / 'no.json'}: cannot read the sweep: No such file"):
        SweepSpec.load(tmp_path / "no.json")


# -- expansion ---------------------------------------------------------------------------------
def test_loss_parameters_multiply_only_the_losses_that_have_them():
    spec = SweepSpec.from_dict({"grid": {"model.name": ["unet", "segnet"], "loss.name": ["bce", "dice", "focal",
                                                                                        "tversky"],
                                         "loss.params.alpha": [0.0, 0.5, 1.0]}})
    points = expand(spec)
    assert len(points) == 2 * (1 + 1 + 3 + 3)
    assert [p.name for p in points[:8]] == [
        "unet__bce", "unet__dice", "unet__focal__alpha0.0", "unet__focal__alpha0.5", "unet__focal__alpha1.0",
        "unet__tversky__alpha0.0", "unet__tversky__alpha0.5", "unet__tversky__alpha1.0"]
    assert [p.index for p in points] == list(range(16))
    assert points[0].values == {"model.name": "unet", "loss.name": "bce"} and points[0].config.loss.params == {}
    assert points[6].values == {"model.name": "unet", "loss.name": "tversky", "loss.params.alpha": 0.5}
    assert points[6].config.loss.params == {"alpha": 0.5}
    assert points[8].name == "segnet__bce" and points[8].config.model.name == "segnet"
    assert {p.config.name for p in points} == {f"sweep:{p.name}" for p in points}


def test_names_are_unique_safe_and_stable_and_seed_split_are_shared():
    grid = {"optimizer.name": ["rmsprop", "adam"], "optimizer.params.alpha": [0.9, 0.99],
            "loss.name": ["focal"], "loss.params.alpha": [0.25], "optimizer.lr": [1e-3, 1e-05],
            "loss.weight_map": [True, False], "optimizer.params.betas": [[0.9, 0.999]], "data.patch_size": [64]}
    spec = SweepSpec.from_dict({"name": "s", "grid": grid, "seed": 3})
    points = expand(spec)
    assert len(points) == 2 * 2 * 2 + 1 * 2 * 2  # alpha only for rmsprop, betas only for adam
    names = [p.name for p in points]
    assert names[0] == "rmsprop__optimizer-alpha0.9__focal__loss-alpha0.25__lr0.001__weight_map-on__patch_size64"
    assert "adam__focal__loss-alpha0.25__lr1e-05__weight_map-off__betas0.9-0.999__patch_size64" in names
    assert len(set(names)) == len(names) and all(re.fullmatch(r"[A-Za-z0-9_.+-]+", n) for n in names)
    assert [p.name for p in expand(SweepSpec.from_dict(spec.to_dict()))] == names
    assert {(p.config.training.seed, p.config.data.split_seed, p.config.data.val_fraction) for p in points} == \
        {(3, 0, 0.2)}
    assert points[0].config.optimizer.params == {"alpha": 0.9}  # a new optimizer starts from its defaults


def test_base_parameters_kept_for_the_base_entry_and_reset_for_others():
    base = {"loss": {"name": "focal", "params": {"gamma": 3.0}}}
    points = expand(SweepSpec.from_dict({"base": base, "grid": {"loss.name": ["focal", "dice"]}}))
    assert [(p.name, p.config.loss.params) for p in points] == [("focal", {"gamma": 3.0}), ("dice", {})]


# -- running -----------------------------------------------------------------------------------
def test_a_2x2_sweep_runs_every_point_into_its_own_run_folder(finished):
    out, result, reports = finished
    assert [p.name for p in result.points] == NAMES_2X2 and not result.stopped
    assert [p.status for p in result.points] == ["completed"] * 4 and result.count("completed") == 4
    state = read_state(out)
    assert [(p["name"], p["status"], p["values"]) for p in state["points"]] == [
        (n, "completed", {"model.name": n.split("__")[0], "loss.name": n.split("__")[1]}) for n in NAMES_2X2]
    assert state["spec"]["base"]["training"]["epochs"] == 1  # the base is stored inline
    for point in result.points:
        run = out / point.name
        summary = json.loads((run / "summary.json").read_text())
        assert summary == point.summary and summary["reason"] == "completed"
        config = json.loads((run / "config.json").read_text())
        assert (config["model"]["name"], config["loss"]["name"]) == tuple(point.name.split("__"))
        assert (run / "checkpoints" / "last.pt").exists() and len((run / "history.csv").read_text().splitlines()) == 2
    assert [(r.index, r.status) for r in reports if r.status != "running"] == [
        (0, "started"), (0, "completed"), (1, "started"), (1, "completed"),
        (2, "started"), (2, "completed"), (3, "started"), (3, "completed")]
    running = [r for r in reports if r.status == "running"]
    assert [(r.index, r.fraction) for r in running] == [(0, 0.125), (0, 0.25), (1, 0.375), (1, 0.5),
                                                        (2, 0.625), (2, 0.75), (3, 0.875), (3, 1.0)]


def test_running_again_skips_finished_points_without_touching_their_folders(finished, data):
    out, _, _ = finished
    before = {name: snapshot(out / name) for name in NAMES_2X2}
    reports, events = [], []
    result = run_sweep(tiny_spec(data, device="cpu"), out, progress=reports.append,
                       on_event=lambda name, e: events.append(e))
    assert [p.status for p in result.points] == ["completed"] * 4 and events == []
    assert [(r.status, r.message, r.fraction) for r in reports] == [("skipped", "completed", 1.0)] * 4
    assert {name: snapshot(out / name) for name in NAMES_2X2} == before


def test_a_sweep_folder_trained_with_other_settings_is_refused(finished, data, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    other = tiny_base(data)
    other["optimizer"] = {"lr": 0.01}
    spec = SweepSpec.from_dict({"name": "tiny", "base": other, "grid": GRID_2X2})
    with pytest.raises(SweepError, match=r"unet__dice was trained with other settings \(optimizer.lr 0.001 there, "
                                         r"0.01 now\); choose another output folder"):
        run_sweep(spec, out)


def _continue(run_dir, epochs, stop_after_batches=None):
    """Continue a run in its folder as the Runs panel's Continue does (optionally stopping)."""
    from app.core.training.continuation import plan_continuation
    from app.core.training.engine import Trainer
    from app.core.training.events import BatchFinished

    plan = plan_continuation(run_dir, epochs=epochs)
    trainer = Trainer(plan.config, run_dir, resume=True)
    batches = []

    def stop_later(event):
        if isinstance(event, BatchFinished):
            batches.append(event)
            if stop_after_batches and len(batches) >= stop_after_batches:
                trainer.control.stop()

    trainer.listeners.append(stop_later)
    return trainer.run()


def test_a_point_continued_in_its_folder_counts_as_that_point(finished, data, tmp_path):
    """Continuing a finished point (more epochs, in the Runs panel) used to make every later run
    of the sweep refuse the folder as 'trained with other settings'."""
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    assert _continue(out / "unet__dice", epochs=2)["reason"] == "completed"
    before = snapshot(out / "unet__dice")
    result = run_sweep(tiny_spec(data), out)
    assert [p.status for p in result.points] == ["completed"] * 4
    assert result.points[0].summary == json.loads((out / "unet__dice" / "summary.json").read_text())
    assert len((out / "unet__dice" / "history.csv").read_text().splitlines()) == 3  # its 2 epochs
    assert snapshot(out / "unet__dice") == before


def test_a_continued_point_that_was_stopped_resumes_with_its_own_settings(finished, data, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    assert _continue(out / "unet__dice", epochs=3, stop_after_batches=1)["reason"] == "stopped"
    result = run_sweep(tiny_spec(data), out)
    assert [p.status for p in result.points] == ["completed"] * 4
    rows = (out / "unet__dice" / "history.csv").read_text().splitlines()
    assert len(rows) == 4 and json.loads((out / "unet__dice" / "config.json").read_text())["training"]["epochs"] == 3


def test_a_sweep_changed_to_more_epochs_than_its_points_trained_is_refused(finished, data, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    assert _continue(out / "unet__dice", epochs=2)["reason"] == "completed"
    more = tiny_base(data)
    more["training"]["epochs"] = 3
    spec = SweepSpec.from_dict({"name": "tiny", "base": more, "grid": GRID_2X2})
    with pytest.raises(SweepError, match=r"unet__dice was trained with other settings \(training.epochs 2 there, "
                                         r"3 now\)"):
        run_sweep(spec, out)


def test_a_point_with_a_damaged_summary_is_resumed_and_its_summary_written_again(finished, data, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    (out / "unet__dice" / "summary.json").write_text("{damaged")
    result = run_sweep(tiny_spec(data), out)
    assert [p.status for p in result.points] == ["completed"] * 4
    assert json.loads((out / "unet__dice" / "summary.json").read_text())["reason"] == "completed"


def test_another_sweep_into_a_sweep_folder_is_refused_before_its_record_is_touched(finished, data, tmp_path):
    """A different sweep replaced the folder's sweep.json and results: its runs fell out of every table."""
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    before = (out / SWEEP_FILE).read_bytes()
    other = SweepSpec.from_dict({"name": "other", "base": tiny_base(data), "grid": {"loss.name": ["dice"]}})
    with pytest.raises(SweepError, match=r"holds the sweep 'tiny', not 'other'; choose another folder, or name this "
                                         r"sweep 'tiny'"):
        run_sweep(other, out)
    assert (out / SWEEP_FILE).read_bytes() == before


def test_a_grid_of_too_many_runs_is_refused_at_once(data):
    """A 2,000 × 1,000 grid was expanded point by point: minutes without a word."""
    with pytest.raises(SweepError, match="the grid makes 20,000 combinations, more than the 10,000 runs"):
        SweepSpec.from_dict({"name": "huge", "base": tiny_base(data),
                             "grid": {"optimizer.lr": [i / 1e5 + 1e-5 for i in range(200)],
                                      "training.epochs": list(range(1, 101))}})


def test_a_folder_of_the_users_that_is_not_a_sweep_is_refused(data, tmp_path):
    out = tmp_path / "mine"
    (out / "unet__dice").mkdir(parents=True)
    (out / "unet__dice" / "notes.txt").write_text("my notes")
    (out / "results.csv").write_text("my table")
    with pytest.raises(SweepError, match="mine is not empty and not a sweep folder"):
        run_sweep(tiny_spec(data), out)
    assert sorted(p.name for p in out.rglob("*")) == ["notes.txt", "results.csv", "unet__dice"]
    assert (out / "results.csv").read_text() == "my table"


def test_stop_in_the_middle_then_resume_completes_the_rest(finished, data, tmp_path):
    out = tmp_path / "out"
    seen = []

    def on_event(name, event):
        seen.append((name, type(event).__name__))

    def should_stop():  # after the first batch of the second point
        return ("unet__focal", "BatchFinished") in seen

    first = run_sweep(tiny_spec(data), out, should_stop=should_stop, on_event=on_event)
    assert first.stopped and [p.status for p in first.points] == ["completed", "stopped", "pending", "pending"]
    assert [p["status"] for p in read_state(out)["points"]] == ["completed", "stopped", "pending", "pending"]
    stopped = load_checkpoint(out / "unet__focal" / "checkpoints" / "last.pt")
    assert (stopped["epoch"], stopped["step_in_epoch"]) == (0, 1)
    assert not (out / "segnet__dice").exists()
    done = snapshot(out / "unet__dice")

    reports = []
    second = run_sweep(tiny_spec(data), out, progress=reports.append)
    assert not second.stopped and [p.status for p in second.points] == ["completed"] * 4
    assert [(r.index, r.status, r.message) for r in reports if r.status in ("skipped", "started")] == [
        (0, "skipped", "completed"), (1, "started", "resuming"), (2, "started", ""), (3, "started", "")]
    assert "resumed at epoch 1, step 1" in (out / "unet__focal" / "train.log").read_text()
    assert snapshot(out / "unet__dice") == done
    for name in NAMES_2X2:  # same seed and split: the same weights as the sweep that was never stopped
        a = load_checkpoint(out / name / "checkpoints" / "last.pt")["model_state"]
        b = load_checkpoint(finished[0] / name / "checkpoints" / "last.pt")["model_state"]
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(data, tmp_path, monkeypatch):
    real = engine_module.build_loss

    class Diverging(torch.nn.Module):
        def forward(self, logits, target, weight=None):
            return real("focal")(logits, target, weight) * float("nan")

    monkeypatch.setattr(engine_module, "build_loss", lambda name, **kw: Diverging() if name == "focal"
                        else real(name, **kw))
    out = tmp_path / "out"
    spec = tiny_spec(data, grid={"loss.name": ["focal", "dice"]})
    result = run_sweep(spec, out)
    assert [(p.name, p.status) for p in result.points] == [("focal", "failed"), ("dice", "completed")]
    assert "training diverged" in result.points[0].error and not result.stopped
    assert read_state(out)["points"][0]["error"] == result.points[0].error
    rows = results_table(out)
    assert [(r["rank"], r["name"], r["status"]) for r in rows] == [(1, "dice", "completed"), (None, "focal", "failed")]
    assert "training diverged" in rows[1]["error"] and rows[1]["best_dice"] is None

    reports = []
    again = run_sweep(spec, out, progress=reports.append)  # failed points are not retried by default
    assert [p.status for p in again.points] == ["failed", "completed"]
    assert [(r.status, r.message) for r in reports] == [("skipped", "failed"), ("skipped", "completed")]
    monkeypatch.setattr(engine_module, "build_loss", real)
    retried = run_sweep(spec, out, retry_failed=True)
    assert [p.status for p in retried.points] == ["completed", "completed"]
    assert read_state(out)["points"][0]["error"] is None


# -- results -----------------------------------------------------------------------------------
def test_results_table_and_heat_map_match_the_runs_summaries(finished, tmp_path):
    out = finished[0]
    summaries = {n: json.loads((out / n / "summary.json").read_text()) for n in NAMES_2X2}
    rows = results_table(out)
    order = sorted(NAMES_2X2, key=lambda n: -summaries[n]["best_dice"])  # stable: sweep order for ties
    assert [r["name"] for r in rows] == order and [r["rank"] for r in rows] == [1, 2, 3, 4]
    for row in rows:
        s = summaries[row["name"]]
        assert (row["model.name"], row["loss.name"]) == tuple(row["name"].split("__"))
        assert {k: row[k] for k in ("best_dice", "best_iou", "highest_accuracy", "lowest_loss", "lowest_loss_epoch",
                                    "wall_seconds", "epochs", "reason")} == \
            {k: s[k] for k in ("best_dice", "best_iou", "highest_accuracy", "lowest_loss", "lowest_loss_epoch",
                               "wall_seconds", "epochs", "reason")}
    by_loss = results_table(out, rank_by="lowest_loss")
    assert [r["name"] for r in by_loss] == sorted(NAMES_2X2, key=lambda n: summaries[n]["lowest_loss"])

    x, y, values = heatmap(out, "best_iou", "model.name", "loss.name")
    assert (x, y) == (["unet", "segnet"], ["dice", "focal"])
    expected = [[summaries[f"{m}__{loss}"]["best_iou"] for m in x] for loss in y]
    np.testing.assert_array_equal(values, np.array(expected))
    x, y, values = heatmap(out, "lowest_loss", "loss.name", "model.name", reduce="min")
    np.testing.assert_array_equal(values, [[summaries[f"{m}__{loss}"]["lowest_loss"] for loss in x] for m in y])

    history = out / order[0] / "history.csv"  # the Sweeps panel's Export CSV… replaced a point's history
    before = history.read_bytes()
    with pytest.raises(SweepError, match="is a run's own history.csv"):
        results_csv(out, history)
    assert history.read_bytes() == before
    path = results_csv(out, tmp_path / "r.csv")
    with path.open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["name"] for r in table] == order and table[0]["rank"] == "1"
    assert float(table[0]["best_dice"]) == rows[0]["best_dice"] and table[0]["model.name"] == rows[0]["model.name"]


def write_synthetic_sweep(out, points):
    """A sweep folder by hand: sweep.json and one summary.json per point that has metrics."""
    grid = {"loss.name": ["bce", "focal"], "loss.params.alpha": [0.0, 1.0], "optimizer.lr": [0.1, 0.01]}
    out.mkdir()
    (out / SWEEP_FILE).write_text(json.dumps({"spec": {"grid": grid}, "points": [
        {"name": name, "values": values, "status": "completed" if dice is not None else "failed"}
        for name, values, dice in points]}))
    for name, _, dice in points:
        if dice is not None:
            (out / name).mkdir()
            (out / name / "summary.json").write_text(json.dumps({"best_dice": dice, "reason": "completed"}))


def test_a_point_whose_value_is_not_in_the_grid_gets_its_own_cells(tmp_path):
    write_synthetic_sweep(tmp_path / "s", [
        ("a", {"loss.name": "bce", "optimizer.lr": 0.1}, 0.5),
        ("b", {"loss.name": "dice", "optimizer.lr": 0.5}, 0.6),  # neither value is in the grid
    ])
    x, y, values = heatmap(tmp_path / "s", "best_dice", "loss.name", "optimizer.lr")
    assert (x, y) == (["bce", "focal", "dice"], ["0.1", "0.01", "0.5"])
    assert values[0, 0] == 0.5 and values[2, 2] == 0.6 and np.isnan(values).sum() == 7


def test_heat_map_reduces_over_other_fields_and_marks_missing_cells(tmp_path):
    write_synthetic_sweep(tmp_path / "s", [
        ("bce__lr0.1", {"loss.name": "bce", "optimizer.lr": 0.1}, 0.5),
        ("bce__lr0.01", {"loss.name": "bce", "optimizer.lr": 0.01}, 0.7),
        ("focal__alpha0.0__lr0.1", {"loss.name": "focal", "loss.params.alpha": 0.0, "optimizer.lr": 0.1}, 0.2),
        ("focal__alpha0.0__lr0.01", {"loss.name": "focal", "loss.params.alpha": 0.0, "optimizer.lr": 0.01}, 0.4),
        ("focal__alpha1.0__lr0.1", {"loss.name": "focal", "loss.params.alpha": 1.0, "optimizer.lr": 0.1}, None),
    ])
    x, y, values = heatmap(tmp_path / "s", "best_dice", "loss.name", "loss.params.alpha")
    assert (x, y) == (["bce", "focal"], ["0.0", "1.0", "n/a"])
    np.testing.assert_array_equal(values, [[np.nan, 0.4], [np.nan, np.nan], [0.7, np.nan]])
    _, _, mean = heatmap(tmp_path / "s", "best_dice", "loss.name", "optimizer.lr", reduce="mean")
    np.testing.assert_allclose(mean, [[0.5, 0.2], [0.7, 0.4]])
    x, y, low = heatmap(tmp_path / "s", "best_dice", "optimizer.lr", "loss.name", reduce="min")
    assert (x, y) == (["0.1", "0.01"], ["bce", "focal"])
    np.testing.assert_array_equal(low, [[0.5, 0.7], [0.2, 0.4]])
    rows = results_table(tmp_path / "s")
    assert [(r["rank"], r["name"]) for r in rows][:2] == [(1, "bce__lr0.01"), (2, "bce__lr0.1")]
    assert rows[-1]["rank"] is None and math.isnan(values[1][1])
    for call, message in [(lambda: heatmap(tmp_path / "s", "dice", "loss.name", "optimizer.lr"),
                           "metric 'dice' is not known; valid: best_dice"),
                          (lambda: heatmap(tmp_path / "s", "best_dice", "model.name", "optimizer.lr"),
                           "axis 'model.name' is not a field of this sweep; valid: loss.name, loss.params.alpha"),
                          (lambda: heatmap(tmp_path / "s", "best_dice", "loss.name", "loss.name"),
                           "the two axes must differ"),
                          (lambda: heatmap(tmp_path / "s", "best_dice", "loss.name", "optimizer.lr", "median"),
                           "reduce 'median' is not allowed; valid: max, min, mean"),
                          (lambda: results_table(tmp_path), f"{tmp_path} has no sweep.json")]:
        with pytest.raises(SweepError) as info:
            call()
        assert str(info.value).startswith(message)


# -- the command -------------------------------------------------------------------------------
def parse(*argv):
    parser = argparse.ArgumentParser()
    sweep_cli.register(parser.add_subparsers())
    return parser.parse_args(["sweep", *map(str, argv)])


def test_cli_dry_run_lists_points_and_their_state(finished, data, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(finished[0], out)
    shutil.rmtree(out / "segnet__focal")
    (tmp_path / "s.json").write_text(json.dumps({"name": "tiny", "base": tiny_base(data), "grid": GRID_2X2,
                                                 "out": "out"}))
    args = parse(tmp_path / "s.json", "--dry-run")
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"4 points in {out}:",
        "1. unet__dice  [done]  model.name=unet loss.name=dice",
        "2. unet__focal  [done]  model.name=unet loss.name=focal",
        "3. segnet__dice  [done]  model.name=segnet loss.name=dice",
        "4. segnet__focal  [to do]  model.name=segnet loss.name=focal"]


def test_cli_runs_the_rest_of_a_sweep_and_prints_progress_and_ranking(finished, data, tmp_path, capsys):
    out = tmp_path / "elsewhere"
    shutil.copytree(finished[0], out)
    shutil.rmtree(out / "segnet__focal")
    (tmp_path / "s.json").write_text(json.dumps({"name": "tiny", "base": tiny_base(data), "grid": GRID_2X2}))
    args = parse(tmp_path / "s.json", "--out", out, "--device", "cpu")
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:5] == [f"sweep tiny: 4 points into {out}",
                         "[1/4] unet__dice: skipped (completed) | sweep 75%",
                         "[2/4] unet__focal: skipped (completed) | sweep 75%",
                         "[3/4] segnet__dice: skipped (completed) | sweep 75%",
                         "[4/4] segnet__focal: started | sweep 75%"]
    assert lines[5].startswith("    segnet__focal epoch 1: train loss ")
    assert lines[6:8] == ["[4/4] segnet__focal: completed | sweep 100%",
                          f"4 completed of 4; results: {out / 'results.csv'}"]
    assert [line.split(":")[0] for line in lines[8:]] == [f"  {n}. {r['name']}" for n, r in
                                                         enumerate(results_table(out), 1)]
    assert (out / "results.csv").exists()


def test_cli_errors_are_expected_errors(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"grid": {"model.name": ["unett"]}}))
    for argv, message in [((tmp_path / "s.json",), "grid.model.name: 'unett' is not a registered model"),
                          ((tmp_path / "s.json", "--rank-by", "x"), "--rank-by 'x' is not known")]:
        args = parse(*argv)
        with pytest.raises(_expected_errors()) as info:
            args.func(args)
        assert message in str(info.value)


def test_cli_ctrl_c_stops_after_saving_and_tells_how_to_continue(data, tmp_path, capsys, monkeypatch):
    import signal

    import app.core.sweep_run as sweep_module

    real = sweep_module.run_sweep
    handler = signal.getsignal(signal.SIGINT)

    def interrupted(spec, out_dir, **kw):  # Ctrl-C arrives as the sweep starts
        signal.raise_signal(signal.SIGINT)
        assert kw["control"].stop_requested and signal.getsignal(signal.SIGINT) is handler  # a second one aborts
        return real(spec, out_dir, **kw)

    monkeypatch.setattr(sweep_module, "run_sweep", interrupted)
    (tmp_path / "s.json").write_text(json.dumps({"name": "tiny", "base": tiny_base(data), "grid": GRID_2X2}))
    args = parse(tmp_path / "s.json", "--out", tmp_path / "out")
    assert args.func(args) == 0
    out = capsys.readouterr()
    assert "stopping after this step" in out.err
    assert out.out.splitlines()[-2:] == [f"4 pending of 4; results: {tmp_path / 'out' / 'results.csv'}",
                                         "stopped; run the same command again to continue"]
    assert [p["status"] for p in read_state(tmp_path / "out")["points"]] == ["pending"] * 4
    assert signal.getsignal(signal.SIGINT) is handler


def test_a_spec_changed_in_place_is_checked_again_before_expanding():
    spec = SweepSpec.from_dict({"grid": {"loss.name": ["dice"]}})
    spec.grid["loss.nme"] = ["focal"]
    with pytest.raises(SweepError, match="^grid.loss.nme: unknown key 'nme' in loss"):
        expand(spec)


def test_sweep_command_is_registered_with_the_segstudio_entry_point(tmp_path, capsys):
    import json

    from app.cli import main

    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({"name": "grid", "grid": {"loss.name": ["bce", "dice"]}}))
    assert main(["sweep", str(spec), "--dry-run", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "bce" in out and "dice" in out
    spec.write_text(json.dumps({"grid": {"loss.name": ["no_such_loss"]}}))
    assert main(["sweep", str(spec), "--dry-run"]) == 2
    assert "no_such_loss" in capsys.readouterr().err


def test_a_sweep_file_with_a_huge_integer_is_named(tmp_path):
    path = tmp_path / "sweep.json"
    path.write_text('{"parameters": {"optimizer.lr": [' + "1" * 5000 + "]}}")
    with pytest.raises(SweepError, match=r"sweep.json: not valid JSON: .*4300 digits"):
        SweepSpec.load(path)
