"""Experiment configuration: one dataclass tree, saved as JSON with a schema version.

Every field is checked on load: unknown keys and bad values are rejected with a message that
names the key (as a dotted path) and the allowed values. Names of models, losses, optimizers,
schedules and augmentations are checked against their registries, and their parameters
against the declared ranges.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json
from .registry import RegistryError

SCHEMA_VERSION = 1
DEVICES_HELP = "auto, cpu, cuda, cuda:N or mps"
NORMALISATIONS = ("dataset", "range", "none")
MIXED_PRECISION = ("auto", "on", "off")
BEST_METRICS = ("val_dice", "val_iou", "val_pixel_accuracy", "val_loss")
CONTINUABLE = ("training.epochs", "training.time_limit", "optimizer.lr")  # what continuing a run changes
MANY = 10**9  # the largest step count accepted (a larger one is a typo or damage, not a plan)
EPOCHS_MAX = 1_000_000  # also the most epochs between validations or loss-surface slices
SEED_MAX = 2**31 - 1  # what a spin box (and every random generator the engine seeds) takes


class ConfigError(ValueError):
    """A configuration key or value is not acceptable; the message names the key."""


def settings_difference(theirs: dict, mine: dict, ignore: tuple[str, ...] = (), *,
                        only_theirs: bool = False) -> str | None:
    """The first difference between two experiments as dicts ("training.batch_size 2 there, 4
    now"), leaving out the dotted keys in ``ignore`` (a section's key, or a top-level one) and,
    with ``only_theirs``, keys ``theirs`` lacks (settings added after it was written)."""
    theirs, mine = json.loads(json.dumps(theirs)), json.loads(json.dumps(mine))  # tuples as lists
    for data in (theirs, mine):
        for key in ignore:
            section, _, name = key.partition(".")
            if not name:
                data.pop(section, None)
            elif isinstance(data.get(section), dict):
                data[section].pop(name, None)

    def first(a, b, prefix=""):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in list(a) + ([] if only_theirs else [k for k in b if k not in a]):
                found = first(a.get(k), b.get(k), f"{prefix}{k}.")
                if found:
                    return found
            return None
        return None if a == b else f"{prefix.rstrip('.')} {_shown(a)} there, {_shown(b)} now"

    return first(theirs, mine)


def _beside(config_file: Path, value: str | None) -> str | None:
    """``value`` as an absolute path, a relative one taken from ``config_file``'s folder."""
    if not value:
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (config_file.parent / p).absolute())


def _default_augmentation() -> dict:
    from .augment import default_pipeline

    return default_pipeline().to_dict()


@dataclass
class DataConfig:
    path: str | None = None  # None: the built-in demo dataset; with label_stack: the image TIFF stack
    label_stack: str | None = None  # the label TIFF stack paired with the image stack in ``path``
    val_fraction: float = 0.2
    split_seed: int = 0
    splits: dict[str, str] = field(default_factory=dict)  # sample name -> train/val/test overrides
    mask_mode: str = "auto"
    patch_size: int = 256
    normalisation: str = "dataset"  # dataset: training mean/std; range: divide by the dtype maximum


@dataclass
class ModelConfig:
    name: str = "unet"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossConfig:
    name: str = "dice_ce"
    params: dict[str, Any] = field(default_factory=dict)
    weight_map: bool = False  # pass the U-Net border weight map as the per-pixel weight
    weight_map_w0: float = 10.0
    weight_map_sigma: float = 5.0


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    params: dict[str, Any] = field(default_factory=dict)
    schedule: str = "cosine"
    schedule_params: dict[str, Any] = field(default_factory=dict)
    warmup_steps: int = 0


@dataclass
class TrainingConfig:
    batch_size: int = 4
    epochs: int = 50
    steps_per_epoch: int = 0  # 0: one pass over the training images' patches
    time_limit: float = 0.0  # seconds of training; 0 = no limit
    val_interval: int = 1  # validate every N epochs
    seed: int = 0
    device: str = "auto"
    mixed_precision: str = "auto"  # auto: float16 on CUDA, bfloat16 on CPUs with native support (training.precision)
    best_metric: str = "val_dice"
    tile_overlap: float = 0.25
    flip_tta: bool = False
    ema_decay: float = 0.0  # > 0: validate and predict with an exponential moving average of the weights
    landscape_every: int = 0  # > 0: store a loss-surface slice in <run>/landscapes every N epochs
    landscape_losses: str = ""  # the losses of those slices ("dice,bce,tversky:alpha=0.7"); "" = the training loss
    landscape_dims: int = 1  # 1: a curve along one direction; 2: a grid over two
    landscape_steps: int = 21  # points per direction
    landscape_span: float = 1.0  # the slice covers [-span, span] times the filter-normalised direction


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    augmentation: dict[str, Any] = field(default_factory=_default_augmentation)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    postprocess: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the experiment as JSON. A data path in the file's folder (or below it) is written
        relative to that folder, as :meth:`load` reads it, so a project folder can be moved or shared."""
        data = self.to_dict()
        folder = Path(path).absolute().parent
        for key in ("path", "label_stack"):
            value = data["data"].get(key)
            if value and Path(value).is_absolute() and (Path(value) == folder or folder in Path(value).parents):
                data["data"][key] = Path(value).relative_to(folder).as_posix() or "."
        return atomic_write_json(path, data)

    @classmethod
    def from_dict(cls, data: dict) -> "ExperimentConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"an experiment is a JSON object, got {type(data).__name__}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ConfigError(f"schema_version {version!r} is not supported (this SegStudio reads {SCHEMA_VERSION})")
        config = _build(cls, data, "")
        config.validate()
        return config

    @classmethod
    def from_json(cls, text: str) -> "ExperimentConfig":
        try:
            data = json.loads(text)
        except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
            raise ConfigError(f"not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ExperimentConfig":
        """Read an experiment file. A relative ``data.path`` or ``data.label_stack`` is taken
        relative to the file's folder (not the working folder) and made absolute."""
        path = Path(path)
        try:
            config = cls.from_json(path.read_text(encoding="utf-8-sig"))
            config.data.path, config.data.label_stack = (
                _beside(path, config.data.path), _beside(path, config.data.label_stack))
            return config
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text (save the experiment file as UTF-8)") from None
        except RecursionError:
            raise ConfigError(f"{path}: nested too deeply to be an experiment") from None

    # -- validation ------------------------------------------------------------------------
    def validate(self) -> "ExperimentConfig":
        """Check every value; raises :class:`ConfigError` naming the key."""
        from .augment import Pipeline
        from .losses import LOSSES
        from .masks import MASK_MODES
        from .models import MODELS
        from .optim import OPTIMIZERS, SCHEDULES
        from .postprocess import WatershedParams

        d, t, o = self.data, self.training, self.optimizer
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"name must be a non-empty text, got {self.name!r}")
        for key, value in (("loss.weight_map", self.loss.weight_map), ("training.flip_tta", t.flip_tta)):
            if not isinstance(value, bool):
                raise ConfigError(f"{key} must be true or false, got {value!r}")
        _number("data.val_fraction", d.val_fraction, 0.0, 0.95)
        _integer("data.split_seed", d.split_seed, 0, SEED_MAX)
        _choice("data.mask_mode", d.mask_mode, MASK_MODES)
        _integer("data.patch_size", d.patch_size, 16, 8192)
        _choice("data.normalisation", d.normalisation, NORMALISATIONS)
        if d.path is not None and not isinstance(d.path, str):
            raise ConfigError(f"data.path must be a folder path or null, got {d.path!r}")
        if d.label_stack is not None and (not isinstance(d.label_stack, str) or d.path is None):
            raise ConfigError(f"data.label_stack must be a TIFF path and needs data.path (the image stack); "
                              f"got {d.label_stack!r}")
        for name, split in d.splits.items():
            _choice(f"data.splits.{name}", split, ("train", "val", "test"))
        _registered("model.name", MODELS, self.model.name, "model.params", self.model.params)
        _registered("loss.name", LOSSES, self.loss.name, "loss.params", self.loss.params)
        _number("loss.weight_map_w0", self.loss.weight_map_w0, 0.0, 1000.0)
        _number("loss.weight_map_sigma", self.loss.weight_map_sigma, 0.1, 1000.0)
        _registered("optimizer.name", OPTIMIZERS, o.name, "optimizer.params", o.params)
        _registered("optimizer.schedule", SCHEDULES, o.schedule, "optimizer.schedule_params", o.schedule_params)
        _number("optimizer.lr", o.lr, 1e-9, 10.0)
        _integer("optimizer.warmup_steps", o.warmup_steps, 0, MANY)
        _integer("training.batch_size", t.batch_size, 1, 4096)
        _integer("training.epochs", t.epochs, 1, EPOCHS_MAX)
        _integer("training.steps_per_epoch", t.steps_per_epoch, 0, MANY)
        _number("training.time_limit", t.time_limit, 0.0, math.inf)
        _integer("training.val_interval", t.val_interval, 1, EPOCHS_MAX)
        _integer("training.seed", t.seed, 0, SEED_MAX)
        _device("training.device", t.device)
        _choice("training.mixed_precision", t.mixed_precision, MIXED_PRECISION)
        _choice("training.best_metric", t.best_metric, BEST_METRICS)
        _number("training.tile_overlap", t.tile_overlap, 0.0, 0.9)
        _number("training.ema_decay", t.ema_decay, 0.0, 0.9999)
        _integer("training.landscape_every", t.landscape_every, 0, EPOCHS_MAX)
        _integer("training.landscape_dims", t.landscape_dims, 1, 2)
        _integer("training.landscape_steps", t.landscape_steps, 3, 201)
        _number("training.landscape_span", t.landscape_span, 1e-4, 100.0)
        _landscape_losses("training.landscape_losses", t.landscape_losses, LOSSES)
        try:
            Pipeline.from_dict(self.augmentation)
        except RegistryError as exc:
            raise ConfigError(f"augmentation: {exc}") from None
        try:
            WatershedParams.from_dict(self.postprocess)
        except RegistryError as exc:
            raise ConfigError(f"postprocess: {exc}") from None
        return self


def _build(cls, data: Any, prefix: str):
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong kinds of value."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'the experiment'} must be an object, got {data!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        where = prefix.rstrip(".") or "the experiment"
        raise ConfigError(f"{prefix}{sorted(unknown)[0]}: unknown key in {where}; valid: {', '.join(known)}")
    values = {}
    for key, value in data.items():
        f = known[key]
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if hasattr(default, "__dataclass_fields__"):
            values[key] = _build(type(default), value, f"{prefix}{key}.")
        elif isinstance(default, dict) and not isinstance(value, dict):
            raise ConfigError(f"{prefix}{key} must be an object, got {value!r}")
        else:
            values[key] = value
    return cls(**values)


def _shown(value: Any) -> str:
    """``repr(value)``, shortened (a hand-edited 400-digit number would fill the message)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def _integer(key: str, value: Any, low: int, high: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        bound = f"{low} or more" if high == math.inf else f"{low}..{int(high):,}"
        raise ConfigError(f"{key} must be a whole number, {bound}; got {_shown(value)}")


def _number(key: str, value: Any, low: float, high: float) -> None:
    try:
        fine = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) \
            and low <= value <= high
    except OverflowError:  # an integer too large for a float
        fine = False
    if not fine:
        raise ConfigError(f"{key} must be a number in [{low}, {high}]; got {_shown(value)}")


def _choice(key: str, value: Any, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{key} = {value!r} is not allowed; valid: {', '.join(map(str, choices))}")


def _landscape_losses(key: str, value: Any, registry) -> None:
    """Comma-separated loss names with optional ``:param=value`` parts; each name registered."""
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a text such as 'dice,bce,tversky:alpha=0.7'; got {value!r}")
    from .landscape.loss_text import check_loss_spec

    for item in filter(None, (part.strip() for part in value.split(","))):
        name = item.split(":", 1)[0].strip()
        if name not in registry:
            raise ConfigError(f"{key}: loss {name!r} is not registered; valid: {', '.join(registry.names())}")
    items, problem = check_loss_spec(value)  # parameters too, or training would drop the slices at its start
    if problem:
        raise ConfigError(f"{key}: {problem.rstrip('.')}")
    if value.strip() and not items:
        raise ConfigError(f"{key}: no losses given in {value!r}; leave it empty for the training loss")


def _device(key: str, value: Any) -> None:
    if isinstance(value, str) and (value in ("auto", "cpu", "cuda", "mps")
                                   or (value.startswith("cuda:") and value[5:].isdigit())):
        return
    raise ConfigError(f"{key} = {value!r} is not allowed; valid: {DEVICES_HELP}")


def _registered(name_key: str, registry, name: Any, params_key: str, params: Any) -> None:
    if not isinstance(name, str) or name not in registry:
        raise ConfigError(f"{name_key} = {name!r} is not registered; valid: {', '.join(registry.names())}")
    if not isinstance(params, dict):
        raise ConfigError(f"{params_key} must be an object, got {params!r}")
    try:
        registry.resolve(name, params)
    except RegistryError as exc:
        raise ConfigError(f"{params_key}: {exc}") from None
