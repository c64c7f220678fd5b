"""The training engine end to end on tiny data (CPU, deterministic)."""

import io
import math
import os

import numpy as np
import pytest
import torch

from app.core import atomic
from app.core.config import ExperimentConfig
from app.core.demo_data import write_demo_dataset
from app.core.training import engine as engine_module
from app.core.training.checkpoint import CheckpointError, load_checkpoint, load_model_state, save_checkpoint
from app.core.training.engine import Trainer, TrainingError
from app.core.training.events import BatchFinished, CheckpointSaved, EpochFinished, Failed, Finished, TrainingWarning


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("d") / "demo", count=6, size=48, val_fraction=0.34)


def tiny_config(data, **training):
    config = ExperimentConfig()
    config.data.path = str(data)
    config.data.patch_size = 32
    config.model.params = {"depth": 2, "base_width": 4}
    config.training.batch_size = 2
    config.training.epochs = 2
    config.training.steps_per_epoch = 3
    config.training.device = "cpu"
    for key, value in training.items():
        setattr(config.training, key, value)
    return config.validate()


def weights(path):
    return load_checkpoint(path)["model_state"]


def test_one_tiny_run_end_to_end(tiny_data, tmp_path):
    events = []
    summary = Trainer(tiny_config(tiny_data), tmp_path / "run", listeners=[events.append]).run()
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"config.json", "history.csv", "summary.json", "train.log", "checkpoints"}
    assert (run / "checkpoints" / "last.pt").exists() and (run / "checkpoints" / "best.pt").exists()
    header, *rows = (run / "history.csv").read_text().splitlines()
    assert header == ("epoch,train_loss,train_pixel_accuracy,val_loss,val_pixel_accuracy,val_iou,val_dice,lr,seconds,"
                      "val_adapted_rand_error")
    assert len(rows) == 2
    assert sum(isinstance(e, BatchFinished) for e in events) == 6
    epochs = [e for e in events if isinstance(e, EpochFinished)]
    assert [e.epoch for e in epochs] == [1, 2] and all(0 <= e.val_pixel_accuracy <= 1 for e in epochs)
    assert any(isinstance(e, CheckpointSaved) and e.kind == "best" for e in events)
    assert isinstance(events[-1], Finished) and events[-1].reason == "completed"
    assert summary["epochs"] == 2 and summary["device"] == "cpu" and summary["lowest_loss_epoch"] in (1, 2)
    assert ExperimentConfig.load(run / "config.json") == tiny_config(tiny_data)


def test_stop_and_resume_give_the_same_weights(tiny_data, tmp_path):
    Trainer(tiny_config(tiny_data), tmp_path / "whole").run()

    def stop_after_four(trainer):
        def listener(event):
            if isinstance(event, BatchFinished) and event.global_step == 4:
                trainer.control.stop()
        return listener

    first = Trainer(tiny_config(tiny_data), tmp_path / "split")
    first.listeners.append(stop_after_four(first))
    assert first.run()["reason"] == "stopped"
    state = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert (state["epoch"], state["step_in_epoch"]) == (1, 1)
    second = Trainer(ExperimentConfig.load(tmp_path / "split" / "config.json"), tmp_path / "split", resume=True)
    assert second.run()["reason"] == "completed"
    whole, split = weights(tmp_path / "whole/checkpoints/last.pt"), weights(tmp_path / "split/checkpoints/last.pt")
    assert whole.keys() == split.keys()
    for key in whole:
        assert torch.equal(whole[key], split[key]), key


def test_nan_loss_stops_with_advice_and_keeps_last_good_checkpoint(tiny_data, tmp_path, monkeypatch):
    real = engine_module.build_loss

    class Poisoned(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.calls = real("dice_ce"), 0

        def forward(self, logits, target, weight=None):
            self.calls += logits.requires_grad  # count training steps, not validation
            loss = self.inner(logits, target, weight)
            return loss * float("nan") if logits.requires_grad and self.calls == 5 else loss

    monkeypatch.setattr(engine_module, "build_loss", lambda name, **kw: Poisoned())
    events = []
    with pytest.raises(TrainingError) as info:
        Trainer(tiny_config(tiny_data), tmp_path / "run", listeners=[events.append]).run()
    assert info.value.kind == "nan" and "lower learning rate" in str(info.value)
    assert isinstance(events[-1], Failed) and events[-1].kind == "nan"
    assert load_checkpoint(tmp_path / "run/checkpoints/last.pt")["epoch"] == 1  # the good epoch is kept
    from app.core.training.continuation import load_run

    plan = load_run(tmp_path / "run")  # continuing it: the window proposes a lower rate
    assert plan.diverged and "training diverged" in plan.failure


def test_no_validation_samples_warns(tmp_path):
    data = write_demo_dataset(tmp_path / "d", count=3, size=40, val_fraction=0.0)
    config = tiny_config(data, epochs=1)
    config.data.val_fraction = 0.0
    events = []
    Trainer(config, tmp_path / "run", listeners=[events.append]).run()
    assert any("no validation samples" in getattr(e, "message", "") for e in events)


def test_a_patch_larger_than_every_image_warns(tiny_data, tmp_path):
    """A patch of 1000 on 48-pixel images trained silently on patches that were nearly all padding."""
    events = []
    config = tiny_config(tiny_data, epochs=1, steps_per_epoch=1)
    config.data.patch_size = 64
    Trainer(config.validate(), tmp_path / "big", listeners=[events.append]).run()
    warned = [e.message for e in events if isinstance(e, TrainingWarning)]
    assert any("patch size 64 is larger than every training image (the largest side is 48 pixels)" in w
               for w in warned), warned
    events.clear()
    Trainer(tiny_config(tiny_data, epochs=1, steps_per_epoch=1), tmp_path / "fits", listeners=[events.append]).run()
    assert not any("patch size" in getattr(e, "message", "") for e in events)


def test_checkpoint_write_interrupted_half_way_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model_state": {"w": torch.ones(3)}})

    class Crash(Exception):
        pass

    real_fdopen = os.fdopen

    def half_writer(fd, mode):
        handle = real_fdopen(fd, mode)
        original = handle.write

        def write(data):
            original(data[: len(data) // 2])
            raise Crash("power cut")
        handle.write = write
        return handle

    monkeypatch.setattr(atomic.os, "fdopen", half_writer)
    with pytest.raises(Crash):
        save_checkpoint(path, {"model_state": {"w": torch.zeros(3)}})
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model_state"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


class Payload:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_checkpoint_with_pickled_payload_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "model_state": {}, "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match="evil.pt: refused") as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert "GLOBAL print" in message and "\x1b" not in message and "add_safe_globals" not in message


def test_malformed_and_foreign_checkpoints(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable SegStudio checkpoint .not a PyTorch file"):
        load_checkpoint(tmp_path / "junk.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt: not a readable"):
        load_checkpoint(tmp_path / "empty.pt")
    buffer = io.BytesIO()
    torch.save({"weights": torch.ones(1)}, buffer)
    (tmp_path / "other.pt").write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="not a SegStudio checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    from app.core.models import build_model
    save_checkpoint(tmp_path / "segnet.pt", {"model_name": "segnet",
                                              "model_state": build_model("segnet", 1, 2, depth=2, base_width=4).state_dict()})
    with pytest.raises(CheckpointError, match="do not fit this model .*'segnet'"):
        load_model_state(build_model("unet", 1, 2, depth=2, base_width=4),
                         load_checkpoint(tmp_path / "segnet.pt"), tmp_path / "segnet.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_time_limit_stops_training(tiny_data, tmp_path):
    config = tiny_config(tiny_data, epochs=50, time_limit=0.5)
    summary = Trainer(config, tmp_path / "run").run()
    assert summary["reason"] == "time limit" and summary["epochs"] < 50


def test_pause_and_resume_flags(tiny_data, tmp_path):
    import threading
    trainer = Trainer(tiny_config(tiny_data, epochs=1), tmp_path / "run")
    paused_at = []

    def listener(event):
        if isinstance(event, BatchFinished) and event.step == 1:
            trainer.control.pause()
            paused_at.append(event.global_step)
            threading.Timer(0.3, lambda: held.append(trainer.control.held) or trainer.control.resume()).start()
    held = []
    trainer.listeners.append(listener)
    assert not trainer.control.held
    summary = trainer.run()
    assert summary["reason"] == "completed"
    assert paused_at == [1] and not trainer.control.paused
    assert held == [True] and not trainer.control.held  # held while paused, released on resume
    # the 0.3 s pause is in neither the training clock nor the epoch's seconds
    seconds = float((tmp_path / "run" / "history.csv").read_text().splitlines()[1].split(",")[8])  # seconds
    assert abs(seconds - summary["wall_seconds"]) < 0.15


def test_a_run_continued_to_more_epochs_decays_over_the_new_total(tiny_data, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(tiny_data, epochs=2), run).run()  # cosine to 0 over 2 epochs
    before = weights(run / "checkpoints" / "last.pt")
    config = ExperimentConfig.load(run / "config.json")
    config.training.epochs = 4
    Trainer(config, run, resume=True).run()
    lrs = [float(line.split(",")[7]) for line in (run / "history.csv").read_text().splitlines()[1:]]
    # epochs 1-2 ran (and were recorded) on the 2-epoch cosine; epoch 3 ends 3/4 of the way down the new one
    assert lrs == pytest.approx([5e-4, 0.0, 1e-3 * 0.5 * (1 + math.cos(0.75 * math.pi)), 0.0], rel=1e-4, abs=1e-12)
    after = weights(run / "checkpoints" / "last.pt")
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    assert ExperimentConfig.load(run / "config.json").training.epochs == 4  # config.json says what it ran to


def test_a_run_continued_at_a_lower_rate_goes_on_at_that_rate(tiny_data, tmp_path):
    """After a NaN loss the way on is a lower rate: the schedule stands where it stood, scaled to the
    new base, and the log says so."""
    from app.core.training.continuation import plan_continuation

    run = tmp_path / "run"
    Trainer(tiny_config(tiny_data, epochs=2), run).run()
    plan = plan_continuation(run, epochs=4, lr=1e-4)
    assert plan.failure is None and not plan.diverged
    Trainer(plan.config, run, resume=True).run()
    lrs = [float(line.split(",")[7]) for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert lrs == pytest.approx([5e-4, 0.0, 1e-4 * 0.5 * (1 + math.cos(0.75 * math.pi)), 0.0], rel=1e-4, abs=1e-12)
    assert ExperimentConfig.load(run / "config.json").optimizer.lr == 1e-4
    assert "learning rate 0.001 -> 0.0001 from here on" in (run / "train.log").read_text()


def test_a_run_from_more_processes_is_recounted_in_this_runs_steps(tiny_data, tmp_path):
    """A run trained by 2 processes (an epoch of S/2 steps each) continued by one (epochs of S
    steps): its place and schedule are counted in the new steps, with a warning."""
    from app.core.training.distributed import recount_steps

    assert recount_steps(3, 5, 2, 1, 4, 20) == (10, 70)  # 5 steps × 4 patches × 2 processes = 10 steps of 4
    assert recount_steps(3, 5, 1, 2, 4, 10) == (3, 33)  # 20 patches shared by 2: 2.5 steps, rounded up
    assert recount_steps(1, 9, 4, 1, 2, 30) == (30, 60)  # never past the epoch's end
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(tiny_data, epochs=1), run)
    trainer.run()
    steps = trainer.steps_per_epoch
    assert steps >= 2
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["world"] == 1
    state["world"], state["global_step"] = 2, steps // 2  # as two processes would have left it
    state["scheduler_state"]["last_epoch"] = state["scheduler_state"]["_step_count"] = steps // 2
    save_checkpoint(run / "checkpoints" / "last.pt", state)
    config = ExperimentConfig.load(run / "config.json")
    config.training.epochs = 2
    events = []
    resumed = Trainer(config, run, resume=True, listeners=[events.append])
    resumed.run()
    assert resumed.global_step == 2 * steps  # not steps // 2 + steps
    warning = next(e.message for e in events if isinstance(e, TrainingWarning))
    assert f"trained on 2 processes and goes on with 1: an epoch is now {steps} steps" in warning
    assert warning in (run / "train.log").read_text()


def test_unet_valid_trains_with_labels_cropped_to_its_output(tiny_data, tmp_path):
    config = tiny_config(tiny_data, epochs=1)
    config.model.name, config.model.params, config.data.patch_size = "unet_valid", {"depth": 2, "base_width": 4}, 44
    summary = Trainer(config.validate(), tmp_path / "run").run()
    assert summary["reason"] == "completed" and summary["best_iou"] is not None
    config.data.patch_size = 45
    with pytest.raises(TrainingError, match="patch size 45: .*sides that work near it") as failed:
        Trainer(config.validate(), tmp_path / "bad").run()
    # a settings problem, not "Data problem"; and the failed run's folder says what it was (it had
    # no config.json: the Runs table showed a failed row with no model, loss or settings)
    assert failed.value.kind == "settings"
    assert ExperimentConfig.load(tmp_path / "bad" / "config.json").model.name == "unet_valid"


def test_stop_on_the_last_step_of_an_epoch_keeps_its_history(tiny_data, tmp_path):
    Trainer(tiny_config(tiny_data), tmp_path / "whole").run()
    first = Trainer(tiny_config(tiny_data), tmp_path / "split")
    first.listeners.append(lambda e: isinstance(e, BatchFinished) and e.global_step == 3 and first.control.stop())
    assert first.run()["reason"] == "stopped"
    Trainer(tiny_config(tiny_data), tmp_path / "split", resume=True).run()
    whole = (tmp_path / "whole/history.csv").read_text().splitlines()
    split = (tmp_path / "split/history.csv").read_text().splitlines()
    strip = lambda rows: [[v for i, v in enumerate(r.split(",")) if i != 8] for r in rows]  # noqa: E731 - no seconds
    assert strip(split) == strip(whole) and "nan" not in "".join(split)


def test_resuming_a_run_that_used_its_time_budget_trains_nothing(tiny_data, tmp_path):
    config = tiny_config(tiny_data, epochs=50, time_limit=0.3)
    Trainer(config, tmp_path / "run").run()
    rows = (tmp_path / "run/history.csv").read_text().splitlines()
    events = []
    again = Trainer(config, tmp_path / "run", resume=True, listeners=[events.append]).run()
    assert again["reason"] == "time limit"
    assert not any(isinstance(e, BatchFinished) for e in events)
    assert (tmp_path / "run/history.csv").read_text().splitlines() == rows


def test_split_overrides_for_missing_samples_are_reported_not_fatal(tiny_data, tmp_path):
    from app.core.training.engine import load_experiment_data
    config = tiny_config(tiny_data)
    config.data.splits = {"gone": "val"}
    dataset = load_experiment_data(config)
    assert any("gone" in p.reason for p in dataset.problems)


def test_mixed_bit_depths_are_refused(tmp_path):
    from app.core.imageio import read_image
    data = write_demo_dataset(tmp_path / "d", count=4, size=40, val_fraction=0.25)
    first = sorted((data / "train" / "images").iterdir())[0]
    image = read_image(first).astype(np.uint16) * 257
    first.unlink()
    import tifffile
    tifffile.imwrite(first.with_suffix(".tif"), image)
    with pytest.raises(TrainingError, match="bit depths"):
        Trainer(tiny_config(data), tmp_path / "run").run()


def test_weight_average_is_saved_and_resumes_exactly(tiny_data, tmp_path):
    config = tiny_config(tiny_data, ema_decay=0.9)
    Trainer(config, tmp_path / "whole").run()
    state = load_checkpoint(tmp_path / "whole/checkpoints/last.pt")
    assert state["ema_averaged"] == 6
    assert any(not torch.equal(state["model_state"][k], state["train_model_state"][k])
               for k in state["model_state"] if state["model_state"][k].is_floating_point())
    first = Trainer(config, tmp_path / "split")
    first.listeners.append(lambda e: isinstance(e, BatchFinished) and e.global_step == 4 and first.control.stop())
    first.run()
    Trainer(config, tmp_path / "split", resume=True).run()
    split = load_checkpoint(tmp_path / "split/checkpoints/last.pt")
    for key in state["model_state"]:
        assert torch.equal(state["model_state"][key], split["model_state"][key]), key


class _SteadyClock:
    """The engine's ``time`` with a ``perf_counter`` that advances 2 ms per reading, so a
    time-limited run takes the same steps however busy the machine is."""

    def __init__(self):
        import time

        self._time, self._now = time, 0.0

    def perf_counter(self) -> float:
        self._now += 0.002
        return self._now

    def __getattr__(self, name):
        return getattr(self._time, name)


def test_time_budget_drives_the_schedule(tiny_data, tmp_path, monkeypatch):
    config = tiny_config(tiny_data, epochs=1000, time_limit=1.0)
    config.optimizer.schedule = "poly"
    config.optimizer.schedule_params = {"power": 1.0}
    events = []
    monkeypatch.setattr(engine_module, "time", _SteadyClock())  # it failed under load: few, slow steps
    Trainer(config.validate(), tmp_path / "run", listeners=[events.append]).run()
    lrs = [e.lr for e in events if isinstance(e, BatchFinished)]
    assert lrs[-1] < 0.5 * config.optimizer.lr  # decayed by time, not by the 1000-epoch step count
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_the_run_folder_is_locked_while_training_and_a_second_trainer_is_refused(tiny_data, tmp_path):
    from app.core.training.run_folder import is_training

    seen = []

    def listener(event):
        if isinstance(event, BatchFinished) and not seen:
            seen.append(is_training(tmp_path / "run"))
            events = []
            with pytest.raises(TrainingError, match="another process is training into this run folder"):
                Trainer(tiny_config(tiny_data, epochs=1), tmp_path / "run", listeners=[events.append]).run()
            seen.append(isinstance(events[-1], Failed))

    Trainer(tiny_config(tiny_data, epochs=1), tmp_path / "run", listeners=[listener]).run()
    assert seen == [True, True]
    assert not is_training(tmp_path / "run")


@pytest.fixture(scope="module")
def finished_run(tiny_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    config = tiny_config(tiny_data)
    config.training.epochs = 1
    Trainer(config, run).run()
    return run


def test_hand_damaged_checkpoints_are_refused_by_name(finished_run, tmp_path):
    from app.core.predictor import Predictor

    good = load_checkpoint(finished_run / "checkpoints" / "best.pt")
    for change in ({"normaliser": None}, {"image_dtype": "bogus"}, {"model_state": [1, 2]}, {"num_classes": "two"}):
        path = tmp_path / "damaged.pt"
        save_checkpoint(path, {k: v for k, v in {**good, **change}.items() if k != "format"})
        with pytest.raises(CheckpointError, match="damaged.pt: "):
            Predictor.from_checkpoint(path, "cpu")
    assert Predictor.from_checkpoint(finished_run / "checkpoints" / "best.pt", "cpu").num_classes == 2


def _copy_run(run, to):
    import shutil
    return shutil.copytree(run, to)


def _resume(run):
    return Trainer(ExperimentConfig.load(run / "config.json"), run, resume=True)


def test_resuming_from_a_checkpoint_of_another_optimizer_or_without_state_is_refused(tiny_data, finished_run, tmp_path):
    sgd = tiny_config(tiny_data)
    sgd.optimizer.name, sgd.optimizer.params, sgd.training.epochs = "sgd", {}, 1
    Trainer(sgd.validate(), tmp_path / "sgd").run()
    run = _copy_run(finished_run, tmp_path / "swapped")
    (run / "checkpoints" / "last.pt").write_bytes((tmp_path / "sgd" / "checkpoints" / "last.pt").read_bytes())
    with pytest.raises(CheckpointError, match="last.pt: written by a run with optimizer 'sgd', but this run uses 'adam'"):
        _resume(run).run()

    run = _copy_run(finished_run, tmp_path / "stateless")
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    del state["optimizer_state"], state["format"]
    save_checkpoint(run / "checkpoints" / "last.pt", state)
    with pytest.raises(CheckpointError, match="last.pt: cannot resume from it.*optimizer_state"):
        _resume(run).run()


def test_resuming_with_a_hand_edited_config_is_refused_but_what_continuing_changes_is_not(finished_run, tmp_path):
    """An edited config.json (batch size 2 -> 4) was taken silently: the run went on with other
    settings than its checkpoint's, and its folder recorded them for the whole run."""
    import json

    run = _copy_run(finished_run, tmp_path / "edited")
    data = json.loads((run / "config.json").read_text())
    before = (run / "checkpoints" / "last.pt").read_bytes()
    data["training"]["batch_size"] += 2
    data["training"]["epochs"] += 1
    (run / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"last.pt: the run's settings changed since this checkpoint was written "
                                              r"\(training.batch_size \d+ there, \d+ now\)"):
        _resume(run).run()
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    data["training"]["batch_size"] -= 2  # back: more epochs, a time limit, a rate, a moved data folder resume
    data["training"].update(time_limit=600.0, device="cpu")
    data["optimizer"]["lr"] /= 2
    data["name"] = "renamed"
    (run / "config.json").write_text(json.dumps(data))
    assert _resume(run).run()["reason"] == "completed"


def test_a_damaged_history_is_named_on_resume(finished_run, tmp_path):
    run = _copy_run(finished_run, tmp_path / "run")
    history = run / "history.csv"
    history.write_text(history.read_text().splitlines()[0] + "\n1,0.5,oops\n")
    with pytest.raises(ValueError, match="history.csv: line 2 is damaged"):
        _resume(run).run()


def test_files_the_loader_left_out_are_named_in_a_warning_and_the_log(tiny_data, tmp_path):
    import shutil

    from app.core.training.events import TrainingWarning

    data = shutil.copytree(tiny_data, tmp_path / "data")
    broken = sorted((data / "train" / "images").iterdir())[0]
    broken.write_bytes(b"not an image")
    events = []
    config = tiny_config(data)
    config.training.epochs = 1
    Trainer(config, tmp_path / "run", listeners=[events.append]).run()
    warnings = [e.message for e in events if isinstance(e, TrainingWarning)]
    assert any(broken.name in w and "dataset problem" in w for w in warnings)
    assert f"dataset: {broken}" in (tmp_path / "run" / "train.log").read_text()


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                 "you tried to allocate 8589934592 bytes. Error code 12 (Cannot allocate memory)"),
    MemoryError(),
], ids=["cuda", "cpu-allocator", "python"])
def test_out_of_memory_stops_with_advice_and_keeps_the_last_checkpoint(tiny_data, tmp_path, monkeypatch, error):
    real = Trainer._train_step
    calls = []

    def step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # in the second epoch: the first one's checkpoint is on disk
            raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_train_step", step)
    events = []
    with pytest.raises(TrainingError) as info:
        Trainer(tiny_config(tiny_data), tmp_path / "run", listeners=[events.append]).run()
    assert info.value.kind == "out of memory"
    assert "smaller batch size (now 2) or patch size (now 32)" in str(info.value)
    assert isinstance(events[-1], Failed) and events[-1].kind == "out of memory"
    assert load_checkpoint(tmp_path / "run/checkpoints/last.pt")["epoch"] == 1


@pytest.mark.parametrize("weight_map", [True, False])
def test_weighted_ce_trains_and_validates(tiny_data, tmp_path, weight_map):
    """weighted_ce needs a weight: validation passed none and every such run failed at its first
    validation (with the border weight map or without, when every pixel weighs the same)."""
    config = tiny_config(tiny_data, epochs=1)
    config.loss.name, config.loss.weight_map = "weighted_ce", weight_map
    summary = Trainer(config, tmp_path / "run").run()
    assert summary["reason"] == "completed" and math.isfinite(summary["lowest_loss"])


def test_the_validation_loss_weighs_pixels_as_training_does(tiny_data, tmp_path):
    from app.core.training.data import ValidationWeights
    from app.core.weight_map import unet_weight_map

    config = tiny_config(tiny_data, epochs=1)
    config.loss.weight_map, config.loss.weight_map_w0, config.loss.weight_map_sigma = True, 7.0, 3.0
    trainer = Trainer(config, tmp_path / "run")
    trainer._prepare()  # the model, loss and data, as run() sets them up
    seen = []
    real = trainer.loss_fn
    trainer.loss_fn = lambda logits, target, weight=None: seen.append(weight) or real(logits, target, weight)
    first = trainer.validate()[0]
    assert len(seen) == len(trainer.val) > 0
    for weight, sample in zip(seen, trainer.val):
        expected = unet_weight_map(sample.mask, w0=7.0, sigma=3.0)
        assert weight.shape == (1, *sample.mask.shape) and np.allclose(weight[0].numpy(), expected)
    kept = list(seen)
    seen.clear()
    assert trainer.validate()[0] == first and all(a is b for a, b in zip(seen, kept))  # computed once
    trainer.val_weights = ValidationWeights(config, budget=0)  # nothing kept: the same weights again
    seen.clear()
    assert trainer.validate()[0] == pytest.approx(first)
    assert all(torch.equal(a, b) and a is not b for a, b in zip(seen, kept))
    config.loss.weight_map = False
    ones = ValidationWeights(config)(0, trainer.val[0].mask)
    assert torch.equal(ones, torch.ones((1, *trainer.val[0].mask.shape)))


def test_each_epoch_records_the_validation_rand_error_of_its_model(tiny_data, tmp_path):
    """The mean adapted Rand error of the validation images (connected components of the predicted
    foreground against those of the mask), as skimage computes it from the epoch's weights."""
    from skimage.measure import label
    from skimage.metrics import adapted_rand_error

    from app.core.inference import predict_probabilities, tile_settings_for
    from app.core.models import build_model
    from app.core.training.run_folder import RunFolder

    config = tiny_config(tiny_data, epochs=1)
    trainer = Trainer(config, tmp_path / "run")
    trainer.run()
    recorded = RunFolder(tmp_path / "run").read_history()[-1]["val_adapted_rand_error"]
    model = build_model(config.model.name, trainer.in_channels, trainer.num_classes, **config.model.params)
    model.load_state_dict(weights(tmp_path / "run" / "checkpoints" / "last.pt"))
    model.eval()
    errors = []
    for sample in trainer.val:
        probs = predict_probabilities(model, trainer.normaliser(sample.image), tile_settings_for(config))
        truth, predicted = label(sample.mask > 0, connectivity=1), label(probs.argmax(0) > 0, connectivity=1)
        errors.append(adapted_rand_error(truth, predicted)[0])
    assert 0.0 <= recorded <= 1.0 and recorded == pytest.approx(float(np.mean(errors)), abs=1e-5)


def test_a_run_folder_removed_while_training_is_said_as_that(tiny_data, tmp_path):
    """It ended with "[Errno 2] No such file or directory: '…/train.log'", naming a file, not the cause."""
    import shutil

    events = []

    def remove_after_first_step(event):
        events.append(event)
        if isinstance(event, BatchFinished) and (tmp_path / "run").exists():
            shutil.rmtree(tmp_path / "run")

    with pytest.raises(Exception):
        Trainer(tiny_config(tiny_data), tmp_path / "run", listeners=[remove_after_first_step]).run()
    failed = [e for e in events if isinstance(e, Failed)]
    assert failed and failed[-1].message == (f"the run folder {tmp_path / 'run'} was removed or moved while "
                                             "training; the run stopped")
    assert not (tmp_path / "run").exists()  # nothing written back into a folder that was removed
