"""Model × loss sweeps: a grid over experiment fields, run one point after another.

A sweep is a base experiment plus a ``grid``: dotted experiment fields mapped to lists of values,
e.g. ``{"model.name": ["unet", "segnet"], "loss.name": ["dice", "tversky"],
"loss.params.alpha": [0.3, 0.7], "optimizer.lr": [1e-3, 1e-4]}``. Rules:

- Every point uses the same seed and data split: the grid may not vary ``training.seed``,
  ``training.device`` or the fields that decide the split (``data.path``, ``data.label_stack``,
  ``data.val_fraction``, ``data.split_seed``, ``data.splits``, ``data.mask_mode``); the sweep's own
  ``seed`` and ``device`` set them for all points. The dataset is loaded once and shared.
- A ``*.params.X`` value is used only by points whose model/loss/optimizer/schedule declares ``X``;
  for the others it is left out, so it does not multiply their points (``loss.params.alpha`` gives
  three focal points but one BCE point). A parameter that no name in the sweep declares is rejected.
- A point whose model/loss/optimizer/schedule name differs from the base's starts from that
  entry's default parameters (as ``segstudio train --loss`` does).
- Every point is validated before the first run, so a typo fails at once.

Each point trains into ``out_dir/<point name>/``, a normal run folder; ``out_dir/sweep.json`` holds
the spec and every point's status and is rewritten atomically. Running a sweep again skips
finished points, resumes stopped or interrupted ones from ``last.pt`` and leaves failed ones
failed unless ``retry_failed``. This module defines and expands sweeps (every point's experiment
checked, limits between loss parameters included; no torch); running them is :mod:`app.core.sweep_run`,
reading the results :mod:`app.core.sweep_results`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json
from .config import ConfigError, ExperimentConfig, _device

SWEEP_FILE = "sweep.json"
SPEC_KEYS = ("name", "base", "grid", "seed", "device", "out")
FIXED_FIELDS = ("name", "schema_version", "training.seed", "training.device", "data.path", "data.label_stack",
                "data.val_fraction", "data.split_seed", "data.splits", "data.mask_mode")
OPEN_DICTS = ("model.params", "loss.params", "optimizer.params", "optimizer.schedule_params", "postprocess")
FINISHED_REASONS = ("completed", "time limit")
MAX_POINTS = 10_000  # runs in one sweep: more is a typo (and expanding them would take minutes)
NAME_KEYS = {"model.name": "model.params", "loss.name": "loss.params", "optimizer.name": "optimizer.params",
             "optimizer.schedule": "optimizer.schedule_params"}
NOT_APPLICABLE = "n/a"


class SweepError(ValueError):
    """A sweep spec, grid or output folder is not acceptable; the message names the key."""


def _registry_for(params_key: str):
    """(registry, the key holding the entry's name) for a ``*.params`` dict, else None."""
    from .losses import LOSSES
    from .models import MODELS
    from .optim import OPTIMIZERS, SCHEDULES

    return {"model.params": (MODELS, "model.name"), "loss.params": (LOSSES, "loss.name"),
            "optimizer.params": (OPTIMIZERS, "optimizer.name"),
            "optimizer.schedule_params": (SCHEDULES, "optimizer.schedule")}.get(params_key)


def _get(data: dict, key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def _set(data: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        data = data[part]
    data[last] = copy.deepcopy(value)


def _plain(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples become lists)."""
    return json.loads(json.dumps(value))


@dataclass
class SweepSpec:
    """A base experiment (inline dict, path to an experiment JSON, or None for defaults), a grid
    of dotted fields to value lists, and the sweep's name, seed, device and output folder."""

    grid: dict[str, list]
    base: dict | str | None = None
    name: str = "sweep"
    seed: int | None = None
    device: str | None = None
    out: str | None = None
    base_dir: Path | None = field(default=None, compare=False, repr=False)  # relative paths start here

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "SweepSpec":
        """Check every field and grid key (not yet every point: :func:`expand` does that);
        raises :class:`SweepError` naming the key. Call it again after changing a field."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise SweepError(f"name must be a non-empty text, got {self.name!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0):
            raise SweepError(f"seed must be a whole number, 0 or more, or null; got {self.seed!r}")
        if self.device is not None:
            try:
                _device("device", self.device)
            except ConfigError as exc:
                raise SweepError(str(exc)) from None
        if self.out is not None and not isinstance(self.out, str):
            raise SweepError(f"out must be a folder path or null, got {self.out!r}")
        self._check_grid(self.base_config().to_dict())
        combinations = math.prod(len(values) for values in self.grid.values())
        if combinations > MAX_POINTS:
            raise SweepError(f"the grid makes {combinations:,} combinations, more than the {MAX_POINTS:,} runs a sweep "
                             "may have; split it into smaller sweeps")
        return self

    # -- serialisation ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, base_dir: str | os.PathLike | None = None) -> "SweepSpec":
        if not isinstance(data, dict):
            raise SweepError(f"a sweep is a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(SPEC_KEYS))
        if unknown:
            raise SweepError(f"{unknown[0]}: unknown key in the sweep; valid: {', '.join(SPEC_KEYS)}")
        if "grid" not in data:
            raise SweepError("grid: missing; a sweep needs a grid such as {\"loss.name\": [\"dice\", \"focal\"]}")
        return cls(**{k: data[k] for k in SPEC_KEYS if k in data},
                   base_dir=Path(base_dir) if base_dir is not None else None)

    @classmethod
    def from_json(cls, text: str, base_dir: str | os.PathLike | None = None) -> "SweepSpec":
        try:
            data = json.loads(text)
        except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
            raise SweepError(f"not valid JSON: {exc}") from None
        return cls.from_dict(data, base_dir)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SweepSpec":
        """Read a sweep JSON; a relative ``base`` path or ``out`` folder is taken from its folder."""
        path = Path(path)
        try:
            return cls.from_json(path.read_text(encoding="utf-8-sig"), path.parent)
        except (SweepError, ConfigError) as exc:
            raise SweepError(f"{path}: {exc}") from None
        except UnicodeDecodeError:
            raise SweepError(f"{path}: not UTF-8 text") from None
        except OSError as exc:
            raise SweepError(f"{path}: cannot read the sweep: {exc.strerror or exc}") from None

    def to_dict(self, resolve_base: bool = False) -> dict:
        """The spec as JSON data; ``resolve_base`` puts the base experiment inline."""
        base = self.base_config().to_dict() if resolve_base else copy.deepcopy(self.base)
        data = {"name": self.name, "base": base, "grid": copy.deepcopy(self.grid), "seed": self.seed,
                "device": self.device, "out": self.out}
        return _plain(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write_json(path, self.to_dict())

    # -- validation ------------------------------------------------------------------------
    def _resolve(self, path: str | None) -> Path | None:
        if path is None:
            return None
        p = Path(path).expanduser()
        return p if p.is_absolute() or self.base_dir is None else self.base_dir / p

    def output_dir(self) -> Path | None:
        """The ``out`` folder (relative to the sweep file's folder), or None if not set."""
        return self._resolve(self.out)

    def base_config(self) -> ExperimentConfig:
        if self.base is None:
            config = ExperimentConfig()
        elif isinstance(self.base, str):
            try:
                config = ExperimentConfig.load(self._resolve(self.base))
            except ConfigError as exc:
                raise SweepError(f"base: {exc}") from None
            except OSError as exc:
                raise SweepError(f"base: cannot read the experiment {self._resolve(self.base)}: "
                                 f"{exc.strerror or exc}") from None
        elif isinstance(self.base, dict):
            try:
                config = ExperimentConfig.from_dict(copy.deepcopy(self.base))
            except ConfigError as exc:
                raise SweepError(f"base: {exc}") from None
            for key in ("path", "label_stack"):  # relative to the sweep file, as a base file's are to it
                value = getattr(config.data, key)
                if value and self.base_dir is not None:
                    setattr(config.data, key, str(self._resolve(value).absolute()))
        else:
            raise SweepError(f"base must be an experiment object, a path to an experiment JSON or null; "
                             f"got {self.base!r}")
        if self.seed is not None:
            config.training.seed = self.seed
        if self.device is not None:
            config.training.device = self.device
        return config

    def _check_grid(self, base: dict) -> None:
        if not isinstance(self.grid, dict) or not self.grid:
            raise SweepError(f"grid must map experiment fields to lists of values, e.g. "
                             f"{{\"loss.name\": [\"dice\", \"focal\"]}}; got {self.grid!r}")
        for key, values in self.grid.items():
            _check_key(key, base)
            if not isinstance(values, list) or not values:
                raise SweepError(f"grid.{key} must be a non-empty list of values, got {values!r}")
            seen = [json.dumps(v, sort_keys=True) for v in values]
            if len(set(seen)) < len(seen):
                raise SweepError(f"grid.{key} lists a value twice: {values!r}")
        for name_key, params_key in NAME_KEYS.items():
            registry = _registry_for(params_key)[0]
            for value in self.grid.get(name_key, []):
                if not isinstance(value, str) or value not in registry:
                    raise SweepError(f"grid.{name_key}: {value!r} is not a registered {registry.kind}; "
                                     f"valid: {', '.join(registry.names())}")
        for key in self.grid:
            section, _, param = key.rpartition(".")
            found = _registry_for(section)
            if found is None:
                continue
            registry, name_key = found
            names = self.grid.get(name_key, [_get(base, name_key)])
            if not any(param in _declared(registry, n) for n in names):
                valid = sorted({p for n in names for p in _declared(registry, n)})
                raise SweepError(f"grid.{key}: no {registry.kind} in this sweep ({', '.join(map(str, names))}) "
                                 f"has a parameter {param!r}; valid: {', '.join(valid) or 'none'}")


def _declared(registry, name: str) -> list[str]:
    return [p.name for p in registry.get(name).params]


def _check_key(key: Any, base: dict) -> None:
    if not isinstance(key, str) or not key:
        raise SweepError(f"grid keys are dotted experiment fields such as 'loss.name', got {key!r}")
    if key in FIXED_FIELDS or key.startswith("data.splits."):
        raise SweepError(f"grid.{key}: a sweep keeps one seed, device and data split for every point; set the "
                         f"sweep's \"seed\"/\"device\" or the base experiment instead")
    parts = key.split(".")
    node, where = base, "the experiment"
    for i, part in enumerate(parts):
        parent = ".".join(parts[:i])
        if not isinstance(node, dict):
            raise SweepError(f"grid.{key}: {parent} is a single value, not a section")
        if part not in node and not (parent in OPEN_DICTS and i == len(parts) - 1):
            raise SweepError(f"grid.{key}: unknown key {part!r} in {where}; valid: {', '.join(node)}")
        node, where = node.get(part), ".".join(parts[:i + 1])


# -- expansion ------------------------------------------------------------------------------
@dataclass
class SweepPoint:
    """One combination: its run-folder name, the grid values it uses (in grid order) and its
    validated experiment."""

    index: int
    name: str
    values: dict[str, Any]
    config: ExperimentConfig


def _label(key: str, value: Any, shared: bool) -> str:
    parts = key.split(".")
    last = f"{parts[0]}-{parts[-1]}" if shared else parts[-1]
    if parts[-1] == "name":
        return str(value)
    if isinstance(value, bool):
        return f"{last}-{'on' if value else 'off'}"
    if isinstance(value, (int, float)):
        return f"{last}{value!r}"
    if isinstance(value, (list, tuple)):
        return f"{last}" + "-".join(str(v) for v in value)
    return f"{last}-{value}"


def _point_name(values: dict[str, Any], grid: dict) -> str:
    ends = [k.split(".")[-1] for k in grid]
    labels = [_label(k, v, ends.count(k.split(".")[-1]) > 1 and not k.endswith(".name")) for k, v in values.items()]
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "-", "__".join(labels)).strip("-.") or "point"
    if len(name) > 100:
        digest = hashlib.sha1(json.dumps(_plain(values), sort_keys=True).encode()).hexdigest()[:8]
        name = f"{name[:90]}-{digest}"
    return name


def expand(spec: SweepSpec) -> list[SweepPoint]:
    """Every distinct combination of the grid, validated; inapplicable parameters dropped."""
    base = spec.validate().base_config().to_dict()
    keys = list(spec.grid)
    points: list[SweepPoint] = []
    seen: set[str] = set()
    names: set[str] = set()
    for combo in itertools.product(*(spec.grid[k] for k in keys)):
        chosen = dict(zip(keys, combo))
        data = copy.deepcopy(base)
        for name_key, params_key in NAME_KEYS.items():
            if name_key in chosen and chosen[name_key] != _get(base, name_key):
                _set(data, name_key, chosen[name_key])
                _set(data, params_key, {})  # another entry: its own defaults
        values = {}
        for key, value in chosen.items():
            section = key.rsplit(".", 1)[0]
            found = _registry_for(section)
            if found and key.split(".")[-1] not in _declared(found[0], _get(data, found[1])):
                continue  # e.g. loss.params.alpha for bce
            values[key] = value
            _set(data, key, value)
        identity = json.dumps(_plain(values), sort_keys=True)
        if identity in seen:
            continue
        seen.add(identity)
        name = _point_name(values, spec.grid)
        unique, n = name, 2
        while unique in names:
            unique, n = f"{name}-{n}", n + 1
        names.add(unique)
        data["name"] = f"{spec.name}:{unique}"
        try:
            config = ExperimentConfig.from_dict(data)
        except ConfigError as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise SweepError(f"point {unique} ({shown}): {exc}") from None
        points.append(SweepPoint(len(points), unique, values, config))
    return points
