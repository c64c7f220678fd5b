"""Every model, loss, optimizer, schedule and augmentation a picker offers trains a tiny epoch and validates
through the engine, every model also in bfloat16 (a choice that fails only once training reaches validation is a choice that
wastes a user's first epoch)."""

import math

import pytest

from app.core.augment import TRANSFORMS
from app.core.losses import LOSSES
from app.core.models import MODELS
from app.core.optim import OPTIMIZERS, SCHEDULES
from app.core.training.engine import Trainer
from tests.core.test_training import tiny_config, tiny_data  # noqa: F401 - tiny_data is a fixture

CHOICES = ([("model", name, {}) for name in MODELS.names()]
           + [("model", "unet_pp", {"deep_supervision": True})]
           + [("bfloat16", name, {}) for name in MODELS.names()]  # mixed precision "on": bfloat16 on the CPU
           + [("loss", name, {}) for name in LOSSES.names()]
           + [("loss", "dice_ce", {"weight_map": True})]
           + [("optimizer", name, {}) for name in OPTIMIZERS.names()]
           + [("schedule", name, {}) for name in SCHEDULES.names()]
           + [("augmentation", name, {}) for name in TRANSFORMS.names()])


def _id(choice) -> str:
    kind, name, extra = choice
    return f"{kind}-{name}" + "".join(f"-{key}" for key in extra)


@pytest.mark.parametrize("choice", CHOICES, ids=[_id(c) for c in CHOICES])
def test_every_choice_trains_and_validates(tiny_data, tmp_path, choice):  # noqa: F811 - the fixture
    kind, name, extra = choice
    config = tiny_config(tiny_data, epochs=1, steps_per_epoch=2)
    if kind in ("model", "bfloat16"):
        config.training.mixed_precision = "on" if kind == "bfloat16" else "auto"
        config.model.name, config.model.params = name, {"depth": 2, "base_width": 4, **extra}
        if name == "unet_valid":
            config.data.patch_size = 44  # valid convolutions: 44 -> 4 at depth 2
    elif kind == "loss":
        config.loss.name = name
        config.loss.weight_map = extra.get("weight_map", name == "weighted_ce")
    elif kind == "augmentation":  # applied to every patch
        config.augmentation = {"version": 1, "seed": 0, "transforms": [
            {"name": name, "enabled": True, "p": 1.0, "params": TRANSFORMS.get(name).defaults()}]}
    elif kind == "optimizer":
        config.optimizer.name = name
    else:
        config.optimizer.schedule = name
    summary = Trainer(config.validate(), tmp_path / "run").run()
    assert summary["reason"] == "completed" and summary["epochs"] == 1
    assert math.isfinite(summary["lowest_loss"]) and 0.0 <= summary["highest_accuracy"] <= 1.0
    assert summary["model"] == config.model.name and summary["loss"] == config.loss.name
