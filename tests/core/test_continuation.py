"""Continuing a run (app.core.training.continuation): what a run folder says, and refusals."""

from __future__ import annotations

import pytest

from app.core.config import ExperimentConfig
from app.core.training.continuation import load_run, plan_continuation, read_epoch_events
from app.core.training.run_folder import HISTORY_COLUMNS, training_lock


def make_run(folder, epochs_done: int, epochs: int = 5, time_limit: float = 0.0, last: bool = True,
             data: str | None = None):
    """A run folder as training leaves it: config.json, history.csv and (``last``) last.pt."""
    config = ExperimentConfig(name="cont")
    config.data.path = data
    config.training.epochs, config.training.time_limit = epochs, time_limit
    folder.mkdir(parents=True)
    config.save(folder / "config.json")
    rows = [",".join(HISTORY_COLUMNS[:9])]  # as written before the Rand error column: still read
    rows += [f"{e},{1 / e:.4f},0.8,,,,,0.001,12.5" for e in range(1, epochs_done + 1)]
    (folder / "history.csv").write_text("\n".join(rows) + "\n")
    (folder / "checkpoints").mkdir()
    if last:
        (folder / "checkpoints" / "last.pt").write_bytes(b"stand-in: planning never opens it")
    return folder


def test_a_stopped_run_continues_to_its_own_plan(tmp_path):
    plan = plan_continuation(make_run(tmp_path / "run", 2, epochs=5, time_limit=100))
    assert (plan.epochs_done, plan.seconds_done, plan.time_left) == (2, 25.0, 75.0)
    assert (plan.config.training.epochs, plan.config.name) == (5, "cont")
    assert [e.epoch for e in plan.history] == [1, 2] and plan.history[1].train_loss == 0.5
    assert plan.history[0].val_loss is None


def test_more_epochs_and_another_time_limit_can_be_asked_for(tmp_path):
    run = make_run(tmp_path / "run", 5, epochs=5, time_limit=60)
    with pytest.raises(ValueError, match="it has trained 5 of 5 epochs; ask for more epochs"):
        plan_continuation(run)
    with pytest.raises(ValueError, match=r"it has used its time limit \(62 of 60 s\)"):
        plan_continuation(run, epochs=8)
    plan = plan_continuation(run, epochs=8, time_limit=0)
    assert (plan.config.training.epochs, plan.config.training.time_limit, plan.time_left) == (8, 0.0, 0.0)
    with pytest.raises(ValueError, match="training.epochs"):
        plan_continuation(run, epochs=0)


def test_what_cannot_continue_says_why(tmp_path):
    with pytest.raises(ValueError, match="is not a run folder"):
        load_run(tmp_path)
    with pytest.raises(ValueError, match="has no checkpoints/last.pt to continue from"):
        load_run(make_run(tmp_path / "early", 0, last=False))
    busy = make_run(tmp_path / "busy", 1)
    lock = training_lock(busy)
    lock.acquire()
    try:
        with pytest.raises(ValueError, match="is training now"):
            load_run(busy)
    finally:
        lock.release()
    damaged = make_run(tmp_path / "damaged", 1)
    (damaged / "history.csv").write_text(",".join(HISTORY_COLUMNS) + "\n1,oops,,,,,,,\n")
    with pytest.raises(ValueError, match="line 2 is damaged"):
        read_epoch_events(damaged)
    (damaged / "config.json").write_text("{not json")
    with pytest.raises(ValueError):
        load_run(damaged)


def test_a_run_whose_data_moved_is_refused_before_anything_is_written(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    run = make_run(tmp_path / "run", 2, data=str(data))
    assert load_run(run).config.data.path == str(data)
    data.rmdir()
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match=r"its data .*data is not there any more \(config.json, data.path\)"):
        plan_continuation(run, epochs=8)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_time_used_counts_a_part_epoch_before_a_stop(tmp_path):
    import json

    run = make_run(tmp_path / "run", 2, epochs=5, time_limit=100)  # two epochs of 12.5 s
    (run / "summary.json").write_text(json.dumps({"reason": "stopped", "wall_seconds": 31.0}))
    assert load_run(run).seconds_done == 31.0 and load_run(run).time_left == 69.0
    (run / "summary.json").write_text(json.dumps({"reason": "stopped", "wall_seconds": "n/a"}))
    assert load_run(run).seconds_done == 25.0


@pytest.mark.parametrize("text, why", [("{bad", "JSONDecodeError"), ("[" * 100_000 + "]" * 100_000, "RecursionError"),
                                       ("[1, 2]", "not a JSON object")])
def test_a_damaged_summary_is_named(tmp_path, text, why):
    """A damaged summary.json gave a bare JSON message (or an uncaught RecursionError)."""
    run = make_run(tmp_path / "run", 2, epochs=5)
    (run / "summary.json").write_text(text)
    with pytest.raises(ValueError, match=rf"summary.json is damaged \({why}"):
        plan_continuation(run, epochs=8)
