"""String-keyed registries with declared, typed parameters.

Every picker in the GUI (augmentations now; models, losses and optimizers later) is fed from a
:class:`Registry`. Each entry declares its :class:`Param` s, so a form can be drawn for it and
values can be checked before anything is built. Unknown names and bad values raise
:class:`RegistryError` with a message listing what is valid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

PARAM_TYPES = ("float", "int", "bool", "choice", "float_range", "int_pair")


class RegistryError(ValueError):
    """An unknown name, an unknown parameter, or a value out of its declared range."""


@dataclass(frozen=True)
class Param:
    """A declared parameter: name, type, default and allowed range or choices.

    ``float_range`` is a (low, high) pair with low <= high, both in [minimum, maximum];
    ``int_pair`` is an (a, b) pair of ints, each in [minimum, maximum].
    """

    name: str
    type: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple = ()
    help: str = ""

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ValueError(f"parameter {self.name}: unknown type {self.type!r}")

    def _check_number(self, value: Any, owner: str, integer: bool) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RegistryError(f"{owner}: {self.name} must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise RegistryError(f"{owner}: {self.name} must be finite, got {value!r}")
        if integer:
            if isinstance(value, float) and not value.is_integer():
                raise RegistryError(f"{owner}: {self.name} must be a whole number, got {value!r}")
            value = int(value)
        else:
            try:
                value = float(value)
            except OverflowError:
                raise RegistryError(f"{owner}: {self.name} = {value} is too large") from None
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        if not low <= value <= high:
            raise RegistryError(f"{owner}: {self.name} = {value} is outside the allowed range [{low}, {high}]")
        return value

    def validate(self, value: Any, owner: str = "") -> Any:
        """Return ``value`` converted to this parameter's type, or raise :class:`RegistryError`."""
        if self.type == "bool":
            if not isinstance(value, bool):
                raise RegistryError(f"{owner}: {self.name} must be true or false, got {value!r}")
            return value
        if self.type == "choice":  # the matching choice itself: 3.0 is the choice 3; True is not 1
            match = [c for c in self.choices if c == value and isinstance(c, bool) == isinstance(value, bool)]
            if not match:
                raise RegistryError(f"{owner}: {self.name} = {value!r} is not one of: "
                                    f"{', '.join(map(str, self.choices))}")
            return match[0]
        if self.type in ("float_range", "int_pair"):
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise RegistryError(f"{owner}: {self.name} must be a pair [a, b], got {value!r}")
            pair = tuple(self._check_number(v, owner, self.type == "int_pair") for v in value)
            if self.type == "float_range" and pair[0] > pair[1]:
                raise RegistryError(f"{owner}: {self.name} must be [low, high] with low <= high, got {list(pair)}")
            return pair
        return self._check_number(value, owner, self.type == "int")

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "default": self.default, "minimum": self.minimum,
                "maximum": self.maximum, "choices": list(self.choices), "help": self.help}


class LazyFactory:
    """A factory named ``"package.module:attribute"`` and imported on first use, so a registry
    can be listed (and configs validated) without importing heavy modules such as torch."""

    def __init__(self, target: str):
        module, _, attribute = target.partition(":")
        if not module or not attribute:
            raise ValueError(f"a lazy factory is 'module:attribute', got {target!r}")
        self.target, self._module, self._attribute = target, module, attribute
        self._loaded: Any = None

    def load(self) -> Any:
        if self._loaded is None:
            import importlib

            obj = importlib.import_module(self._module)
            for part in self._attribute.split("."):
                obj = getattr(obj, part)
            self._loaded = obj
        return self._loaded

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"LazyFactory({self.target!r})"


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered item: what builds it, its parameters and a one-line description."""

    name: str
    factory: T
    params: tuple[Param, ...]
    description: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def load(self) -> T:
        """The factory itself (imported now if it was registered lazily)."""
        return self.factory.load() if isinstance(self.factory, LazyFactory) else self.factory


class Registry(Generic[T]):
    """Named entries of one kind (e.g. ``"augmentation"``)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def add(self, name: str, factory: T, params: Iterable[Param] = (), description: str = "", **meta: Any) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, factory, tuple(params), description, dict(meta))
        return factory

    def register(self, name: str, params: Iterable[Param] = (), description: str = "",
                 **meta: Any) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda factory: self.add(name, factory, params, description, **meta)

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise RegistryError(f"unknown {self.kind} {name!r}; valid: {', '.join(self._entries)}") from None

    def resolve(self, name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overlaid with ``params``, every value validated."""
        entry = self.get(name)
        declared = {p.name: p for p in entry.params}
        unknown = set(params or {}) - set(declared)
        if unknown:
            valid = ", ".join(declared) or "none"
            raise RegistryError(f"{self.kind} {name!r} has no parameter {', '.join(sorted(unknown))}; valid: {valid}")
        values = entry.defaults()
        for key, value in (params or {}).items():
            values[key] = declared[key].validate(value, f"{self.kind} {name!r}")
        check = entry.meta.get("check")  # limits between parameters, e.g. alpha + beta > 0
        problem = check(values) if check is not None else None
        if problem:
            raise RegistryError(f"{self.kind} {name!r}: {problem}")
        return values
