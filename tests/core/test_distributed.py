"""DistributedDataParallel on the CPU: two gloo processes started by torchrun train one tiny run."""

import json
import os
import subprocess
import sys

from app.core.demo_data import write_demo_dataset
from app.core.training.checkpoint import load_checkpoint


def test_two_gloo_processes_train_one_run(tmp_path):
    data = write_demo_dataset(tmp_path / "data", count=6, size=48, val_fraction=0.34)
    config = tmp_path / "exp.json"
    config.write_text(json.dumps({"model": {"name": "unet", "params": {"depth": 2, "base_width": 4}}}))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "app", "train", "--config", str(config), "--data", str(data), "--epochs", "2",
               "--patch-size", "32", "--batch-size", "2", "--device", "cpu", "--out", str(out), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.count("run folder:") == 1  # rank 0 alone reports
    rows = (out / "history.csv").read_text().splitlines()
    assert len(rows) == 3  # header + 2 epochs, written once
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert state["epoch"] == 2 and not any(k.startswith("module.") for k in state["model_state"])
    assert json.loads((out / "summary.json").read_text())["reason"] == "completed"
