"""Plain progress events the engine sends to its listeners (the GUI worker, the CLI, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BatchFinished:
    epoch: int
    step: int  # step within the epoch, from 1
    steps: int  # steps in this epoch
    global_step: int
    loss: float
    images_per_second: float
    lr: float


@dataclass(frozen=True)
class EpochFinished:
    epoch: int
    train_loss: float
    train_pixel_accuracy: float
    val_loss: float | None
    val_pixel_accuracy: float | None
    val_iou: float | None
    val_dice: float | None
    lr: float
    seconds: float
    val_adapted_rand_error: float | None = None  # mean over the validation images, before clean-up

    def row(self) -> dict:
        return {k: ("" if v is None else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class LandscapeSaved:
    path: str  # <run>/landscapes/epoch_XXX.npz
    epoch: int
    seconds: float  # time the slice took (not counted as training time)


@dataclass(frozen=True)
class CheckpointSaved:
    path: str
    kind: str  # "last" or "best"
    epoch: int


@dataclass(frozen=True)
class TrainingWarning:
    message: str


@dataclass(frozen=True)
class Finished:
    reason: str  # "completed", "stopped", "time limit"
    summary: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    message: str  # one clear sentence: what happened and what to try
    kind: str = "error"  # "nan", "out of memory", "data", "settings", "error"
