"""Loss-surface slices stored during training (``training.landscape_every``)."""

import numpy as np
import pytest

from app.core.config import ConfigError
from app.core.landscape import LandscapeResult, build_losses, fixed_batch, list_snapshots
from app.core.training.checkpoint import load_checkpoint
from app.core.training.engine import Trainer
from app.core.training.events import EpochFinished, LandscapeSaved, TrainingWarning
from app.core.training import landscape_snapshots
from app.core.landscape.slices import evaluate_losses

from .test_training import tiny_config, tiny_data  # noqa: F401 - the module fixture


def test_a_slice_is_stored_every_n_epochs_and_after_the_last(tiny_data, tmp_path):
    events = []
    config = tiny_config(tiny_data, epochs=3, landscape_every=2, landscape_steps=5,
                         landscape_losses="dice_ce,bce,tversky:alpha=0.7")
    Trainer(config, tmp_path / "run", listeners=[events.append]).run()
    stored = list_snapshots(tmp_path / "run")
    assert [epoch for epoch, _ in stored] == [2, 3]
    saved = [e for e in events if isinstance(e, LandscapeSaved)]
    assert [e.epoch for e in saved] == [2, 3] and all(e.seconds > 0 for e in saved)
    # each slice follows its epoch's EpochFinished
    order = [type(e).__name__ for e in events if isinstance(e, (EpochFinished, LandscapeSaved))]
    assert order == ["EpochFinished", "EpochFinished", "LandscapeSaved", "EpochFinished", "LandscapeSaved"]
    result = LandscapeResult.load(stored[-1][1])
    assert result.dims == 1 and result.losses == ["dice_ce", "bce", "tversky:alpha=0.7"]
    assert result.values.shape == (3, 5) and np.isfinite(result.values).all()
    assert result.meta["epoch"] == 3
    assert "loss-surface slice saved" in (tmp_path / "run" / "train.log").read_text()


def test_the_last_slice_is_centred_on_the_saved_weights(tiny_data, tmp_path):
    config = tiny_config(tiny_data, epochs=1, landscape_every=1, landscape_steps=3)
    Trainer(config, tmp_path / "run").run()
    (_, path), = list_snapshots(tmp_path / "run")
    result = LandscapeResult.load(path)
    # the centre is the checkpoint's loss on the same fixed batch
    import torch
    from app.core.models import build_model

    trainer = Trainer(config, tmp_path / "other")
    trainer._prepare()
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    model = build_model(config.model.name, trainer.in_channels, trainer.num_classes, **config.model.params)
    model.load_state_dict(state["model_state"])
    model.eval()
    batch = fixed_batch(config, trainer.dataset, count=4, patch=config.data.patch_size, seed=0,
                        normaliser=trainer.normaliser)
    losses = build_losses(None, config, trainer.num_classes)
    with torch.no_grad():
        expected = evaluate_losses(model(batch.images), batch, losses)
    assert result.values[0, result.centre_index()[0]] == pytest.approx(expected[0], rel=1e-4)


def test_a_failing_slice_warns_once_and_training_goes_on(tiny_data, tmp_path, monkeypatch):
    def broken(self, model, run_dir, epoch):
        raise ValueError("the batch is empty")

    monkeypatch.setattr(landscape_snapshots.LandscapeRecorder, "take", broken)
    events = []
    config = tiny_config(tiny_data, epochs=2, landscape_every=1, landscape_steps=3)
    Trainer(config, tmp_path / "run", listeners=[events.append]).run()
    warnings = [e.message for e in events if isinstance(e, TrainingWarning)]
    assert warnings == ["loss-surface slices turned off: the batch is empty"]
    assert sum(isinstance(e, EpochFinished) for e in events) == 2
    assert list_snapshots(tmp_path / "run") == []


def test_slices_are_off_by_default(tiny_data, tmp_path):
    Trainer(tiny_config(tiny_data, epochs=1), tmp_path / "run").run()
    assert not (tmp_path / "run" / "landscapes").exists()


@pytest.mark.parametrize("key, value, message", [
    ("landscape_every", -1, "training.landscape_every"),
    ("landscape_dims", 3, "training.landscape_dims"),
    ("landscape_steps", 2, "training.landscape_steps"),
    ("landscape_losses", "dice,nosuch", "loss 'nosuch' is not registered; valid:"),
    # parameters were checked only when training started, which then turned the slices off
    ("landscape_losses", "dice,tversky:alpha=5", r"training.landscape_losses: .*alpha.*5"),
    ("landscape_losses", "dice:zz", "training.landscape_losses: loss 'dice:zz': parameters are written"),
    ("landscape_losses", ",", "training.landscape_losses: no losses given"),
    ("landscape_losses", "dice,dice", "training.landscape_losses: dice is listed twice"),
])
def test_bad_slice_settings_are_refused(tiny_data, key, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        tiny_config(tiny_data, **{key: value})
