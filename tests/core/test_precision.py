"""Mixed precision and memory layout: which arithmetic each device trains and predicts in."""

import json

import numpy as np
import pytest
import torch

from app.cli import main
from app.core.demo_data import write_demo_dataset
from app.core.inference import TileSettings, predict_probabilities
from app.core.models import build_model
from app.core.predictor import Predictor
from app.core.training import precision
from app.core.training.checkpoint import load_checkpoint
from app.core.training.engine import Trainer

from .helpers import one_line_error
from .test_training import tiny_config


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("d") / "demo", count=6, size=48, val_fraction=0.34)


@pytest.mark.parametrize("native", [True, False])
def test_autocast_dtype_per_device_and_mode(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: native)
    assert precision.autocast_dtype("cuda", "auto") is torch.float16
    assert precision.autocast_dtype("cuda:1", "on") is torch.float16
    assert precision.autocast_dtype("cuda", "off") is None
    assert precision.autocast_dtype("cpu", "auto") is (torch.bfloat16 if native else None)
    assert precision.autocast_dtype("cpu", "on") is torch.bfloat16
    assert precision.autocast_dtype("cpu", "off") is None
    assert precision.autocast_dtype("mps", "auto") is None and precision.autocast_dtype("mps", "on") is None
    with pytest.raises(ValueError, match="'half' is not known; valid: auto, on, off"):
        precision.autocast_dtype("cpu", "half")


def test_native_bfloat16_probe_reads_torch_and_survives_a_changed_private_api(monkeypatch):
    monkeypatch.delenv("SEGSTUDIO_CPU_BFLOAT16")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert precision.cpu_has_native_bfloat16()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not precision.cpu_has_native_bfloat16()

    def broken():
        raise RuntimeError("changed")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", broken, raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert not precision.cpu_has_native_bfloat16()


def test_environment_overrides_the_probe(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setenv("SEGSTUDIO_CPU_BFLOAT16", "0")
    assert not precision.cpu_has_native_bfloat16() and precision.autocast_dtype("cpu", "auto") is None
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setenv("SEGSTUDIO_CPU_BFLOAT16", "1")
    assert precision.autocast_dtype("cpu", "auto") is torch.bfloat16


def test_words_and_layout():
    assert [precision.describe(d) for d in (torch.float16, torch.bfloat16, None)] == ["float16", "bfloat16", "float32"]
    assert precision.prefers_channels_last("cpu") and precision.prefers_channels_last("cuda:0")
    assert not precision.prefers_channels_last("mps")


def _train(data, folder, mode):
    Trainer(tiny_config(data, mixed_precision=mode, epochs=1), folder).run()
    return load_checkpoint(folder / "checkpoints" / "last.pt")["model_state"]


def test_cpu_training_in_bfloat16_keeps_float32_weights_and_says_so(tiny_data, tmp_path):
    on = _train(tiny_data, tmp_path / "on", "on")
    off = _train(tiny_data, tmp_path / "off", "off")
    assert "device cpu, bfloat16 arithmetic" in (tmp_path / "on" / "train.log").read_text()
    assert "device cpu, float32 arithmetic" in (tmp_path / "off" / "train.log").read_text()
    floats = [k for k, v in on.items() if v.is_floating_point()]
    assert floats and all(on[k].dtype == torch.float32 and torch.isfinite(on[k]).all() for k in floats)
    # the same seed and batches: only the arithmetic differs, and it did differ
    assert any(not torch.equal(on[k], off[k]) for k in floats)
    assert all(torch.allclose(on[k], off[k], atol=0.05) for k in floats)


def test_training_runs_channels_last_on_the_cpu(tiny_data, tmp_path, monkeypatch):
    seen = []
    original = torch.nn.Conv2d.forward

    def spy(self, x):
        seen.append(x.is_contiguous(memory_format=torch.channels_last) and self.weight.is_contiguous(
            memory_format=torch.channels_last))
        return original(self, x)
    monkeypatch.setattr(torch.nn.Conv2d, "forward", spy)
    _train(tiny_data, tmp_path / "run", "off")
    assert seen and all(seen)


def test_prediction_in_bfloat16_is_close_to_float32_and_float32_out():
    torch.manual_seed(0)
    model = build_model("unet", 1, 2, depth=2, base_width=4)
    image = np.random.default_rng(0).normal(size=(40, 40, 1)).astype(np.float32)
    full = predict_probabilities(model, image, TileSettings(tile=16))
    low = predict_probabilities(model, image, TileSettings(tile=16), autocast=torch.bfloat16)
    assert low.dtype == np.float32 and low.shape == full.shape
    assert not np.array_equal(low, full) and np.abs(low - full).max() < 0.02


def test_predictor_follows_the_runs_precision_setting(tiny_data, tmp_path):
    _train(tiny_data, tmp_path / "run", "on")
    checkpoint = tmp_path / "run" / "checkpoints" / "best.pt"
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    assert next(predictor.model.parameters()).dtype == torch.float32
    kernels = [p for p in predictor.model.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    image = np.asarray(np.random.default_rng(1).integers(0, 255, (48, 48)), np.uint8)
    low = predictor.predict(image).probabilities
    predictor.config.training.mixed_precision = "off"
    full = predictor.predict(image).probabilities
    assert not np.array_equal(low, full) and np.abs(low - full).max() < 0.05


def test_cli_precision_option_is_recorded_and_fixed_on_resume(tiny_data, tmp_path, capsys):
    config = tmp_path / "exp.json"
    config.write_text(json.dumps({"model": {"name": "unet", "params": {"depth": 2, "base_width": 4}},
                                  "training": {"device": "cpu"}}))
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--data", str(tiny_data), "--epochs", "1", "--patch-size", "32",
                 "--precision", "off", "--out", str(run), "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["training"]["mixed_precision"] == "off"
    assert "float32 arithmetic" in (run / "train.log").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--precision", "on", "--quiet"]) == 2
    assert "(not --precision)" in one_line_error(capsys, "train")
