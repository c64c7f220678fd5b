import io

import pytest
import torch

from app.core.optim import (available_optimizers, available_schedules, build_optimizer, build_scheduler)
from app.core.registry import RegistryError


def params():
    return torch.nn.Linear(2, 2).parameters()


def test_optimizers_and_defaults():
    assert available_optimizers() == ["sgd", "rmsprop", "adam", "adamw"]
    sgd = build_optimizer("sgd", params(), 0.01)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.99
    adam = build_optimizer("adam", params(), 5e-4, betas=[0.8, 0.9])
    assert adam.param_groups[0]["betas"] == (0.8, 0.9) and adam.param_groups[0]["lr"] == 5e-4
    with pytest.raises(RegistryError, match="valid: sgd, rmsprop, adam, adamw"):
        build_optimizer("lbfgs", params(), 0.1)
    with pytest.raises(ValueError, match="learning rate"):
        build_optimizer("sgd", params(), 0.0)


def lrs(name, total=100, warmup=0, **kw):
    opt = build_optimizer("sgd", params(), 1.0)
    sched = build_scheduler(name, opt, total, warmup_steps=warmup, **kw)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_schedules():
    assert available_schedules() == ["constant", "poly", "cosine", "step"]
    assert set(lrs("constant")) == {1.0}
    poly = lrs("poly", power=1.0)
    assert poly[0] == 1.0 and poly[50] == pytest.approx(0.5) and poly[-1] == pytest.approx(0.01)
    cosine = lrs("cosine", min_factor=0.1)
    assert cosine[50] == pytest.approx(0.55) and min(cosine) >= 0.1
    step = lrs("step", step_fraction=0.5, gamma=0.1)
    assert step[49] == 1.0 and step[50] == pytest.approx(0.1)


def test_warmup_rises_linearly_then_hands_over():
    warm = lrs("constant", warmup=9)
    assert warm[0] == pytest.approx(0.1) and warm[4] == pytest.approx(0.5) and warm[9] == 1.0
    assert all(a <= b for a, b in zip(warm[:10], warm[1:11]))


def test_scheduler_state_round_trip():
    opt = build_optimizer("sgd", params(), 1.0)
    sched = build_scheduler("cosine", opt, 10)
    for _ in range(3):
        opt.step()
        sched.step()
    state = sched.state_dict()
    opt2 = build_optimizer("sgd", params(), 1.0)
    sched2 = build_scheduler("cosine", opt2, 10)
    buffer = io.BytesIO()
    torch.save(state, buffer)  # plain data: checkpoints load it with weights_only
    buffer.seek(0)
    sched2.load_state_dict(torch.load(buffer, weights_only=True))
    assert sched2.last_epoch == 3
    for _ in range(7):  # the restored schedule goes on exactly as the original does
        opt.step(), opt2.step()
        sched.step(), sched2.step()
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert opt.param_groups[0]["lr"] < 0.1  # and it did decay
