"""Optimizer and learning-rate schedule registries.

``build_optimizer(name, parameters, lr, **params)`` and
``build_scheduler(name, optimizer, total_steps, warmup_steps=0, **params)``; schedules are
stepped once per optimizer step and support a linear warm-up from 0 to the base rate.
"""

from __future__ import annotations

import math

from typing import TYPE_CHECKING

from .registry import LazyFactory, Param, Registry

if TYPE_CHECKING:
    import torch

OPTIMIZERS: Registry = Registry("optimizer")
SCHEDULES: Registry = Registry("schedule")

_WEIGHT_DECAY = Param("weight_decay", "float", 0.0, 0.0, 1.0, help="L2 penalty (decoupled for adamw)")

OPTIMIZERS.add("sgd", LazyFactory("torch.optim:SGD"), [
    Param("momentum", "float", 0.99, 0.0, 0.999, help="0.99 as in the U-Net paper"),
    Param("nesterov", "bool", False, help="Nesterov momentum"),
    _WEIGHT_DECAY,
], "Stochastic gradient descent with momentum.")
OPTIMIZERS.add("rmsprop", LazyFactory("torch.optim:RMSprop"), [
    Param("alpha", "float", 0.99, 0.0, 0.9999, help="smoothing of the squared-gradient average"),
    Param("momentum", "float", 0.0, 0.0, 0.999),
    _WEIGHT_DECAY,
], "RMSprop: gradient scaled by a running average of its square.")
OPTIMIZERS.add("adam", LazyFactory("torch.optim:Adam"), [
    Param("betas", "float_range", (0.9, 0.999), 0.0, 0.9999, help="β1, β2"),
    _WEIGHT_DECAY,
], "Adam: adaptive moments.")
OPTIMIZERS.add("adamw", LazyFactory("torch.optim:AdamW"), [
    Param("betas", "float_range", (0.9, 0.999), 0.0, 0.9999, help="β1, β2"),
    Param("weight_decay", "float", 0.01, 0.0, 1.0, help="decoupled weight decay"),
], "AdamW: Adam with decoupled weight decay.")


def available_optimizers() -> list[str]:
    return OPTIMIZERS.names()


def build_optimizer(name: str, parameters, lr: float, **params) -> "torch.optim.Optimizer":
    """Build a registered optimizer over ``parameters`` with learning rate ``lr``."""
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate must be a positive number, got {lr!r}")
    values = OPTIMIZERS.resolve(name, params)
    return OPTIMIZERS.get(name).factory(parameters, lr=float(lr), **values)


class ScheduleFactor:
    """Multiplier of the base learning rate at a step: warm-up, then the named decay."""

    def __init__(self, name: str, total_steps: int, warmup_steps: int, params: dict):
        self.name, self.total, self.warmup, self.params = name, max(1, total_steps), max(0, warmup_steps), params

    def __call__(self, step: int) -> float:
        return self.at(step, (step - self.warmup) / max(1, self.total - self.warmup))

    def at(self, step: int, progress: float) -> float:
        """The factor at optimizer step ``step`` when ``progress`` (0..1) of training is done;
        the engine passes the larger of the step fraction and the time-limit fraction."""
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        t = min(1.0, max(0.0, progress))
        p = self.params
        if self.name == "constant":
            return 1.0
        if self.name == "poly":
            return (1.0 - t) ** p["power"]
        if self.name == "cosine":
            floor = p["min_factor"]
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
        if self.name == "step":
            return p["gamma"] ** int(t / p["step_fraction"] + 1e-9)
        raise ValueError(self.name)


SCHEDULES.add("constant", "constant", [], "Constant learning rate.")
SCHEDULES.add("poly", "poly", [Param("power", "float", 0.9, 0.0, 10.0, help="decay exponent")],
              "Polynomial decay to 0: lr·(1 − t)^power.")
SCHEDULES.add("cosine", "cosine", [Param("min_factor", "float", 0.0, 0.0, 1.0, help="final lr as a fraction of the base")],
              "Cosine decay from the base rate to min_factor × base.")
SCHEDULES.add("step", "step", [
    Param("step_fraction", "float", 0.33, 0.01, 1.0, help="decay every this fraction of training"),
    Param("gamma", "float", 0.1, 0.0, 1.0, help="factor at each decay"),
], "Multiply the rate by gamma at regular intervals.")


def available_schedules() -> list[str]:
    return SCHEDULES.names()


def build_scheduler(name: str, optimizer: "torch.optim.Optimizer", total_steps: int, warmup_steps: int = 0,
                    **params) -> "torch.optim.lr_scheduler.LambdaLR":
    """A per-step scheduler: call ``.step()`` after each ``optimizer.step()``."""
    values = SCHEDULES.resolve(name, params)
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, ScheduleFactor(name, total_steps, warmup_steps, values))


def load_scheduler_state(scheduler: "torch.optim.lr_scheduler.LambdaLR", state: dict) -> None:
    """Load a saved schedule's position but keep the plan ``scheduler`` was built with: a run
    continued to more epochs decays over its new total (the saved state would bring back the old
    one, and with it a learning rate of 0 past the old end). Where the plan changed, the learning
    rate is set for it; where it did not, the loaded rate stays (an exact resume). The plan
    includes the base rate, so a run continued with a lower learning rate (after a NaN loss, say)
    goes on at the new rate, decayed to where the schedule stands."""
    planned = [dict(vars(factor)) for factor in scheduler.lr_lambdas]
    planned_base = list(scheduler.base_lrs)
    scheduler.load_state_dict(state)
    changed_base = scheduler.base_lrs != planned_base
    scheduler.base_lrs = planned_base
    for group, base, factor, attributes in zip(scheduler.optimizer.param_groups, planned_base,
                                               scheduler.lr_lambdas, planned):
        if vars(factor) != attributes or changed_base:
            vars(factor).update(attributes)
            group["initial_lr"] = base
            group["lr"] = base * factor(scheduler.last_epoch)
