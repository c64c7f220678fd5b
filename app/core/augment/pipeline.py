"""A pipeline of transforms: a plain, JSON-serialisable description plus a seed.

Randomness is local: each transform draws from its own generator, seeded by the pipeline
seed, the caller's key (e.g. ``(epoch, sample_index)``) and the transform's name and
occurrence. The same pipeline, seed and key therefore give the same output everywhere (the
GUI preview shows exactly what training sees), and changing one transform's settings does
not change the random draws of the others.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..arrays import as_hwc
from ..registry import RegistryError
from .base import TRANSFORMS, Augmented, Transform

PIPELINE_VERSION = 1


@dataclass
class Step:
    """One transform's turn in :meth:`Pipeline.trace`."""

    name: str
    applied: bool
    result: Augmented


def build_transform(spec: dict) -> Transform:
    """Build a transform from ``{"name": ..., "p": ..., "enabled": ..., "params": {...}}``."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise RegistryError(f"an augmentation needs a name, got {spec!r}")
    unknown = set(spec) - {"name", "p", "enabled", "params"}
    if unknown:
        raise RegistryError(f"augmentation {spec['name']!r}: unknown key {', '.join(sorted(unknown))}; "
                            "valid: name, p, enabled, params")
    cls = TRANSFORMS.get(spec["name"]).factory
    params = spec.get("params", {})
    if not isinstance(params, dict):
        raise RegistryError(f"augmentation {spec['name']!r}: params must be an object, got {params!r}")
    return cls(p=spec.get("p", 1.0), enabled=spec.get("enabled", True), **params)


class Pipeline:
    """Transforms applied in order, each with its probability."""

    def __init__(self, transforms: Iterable[Transform] = (), seed: int = 0):
        self.transforms = list(transforms)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise RegistryError(f"pipeline seed must be an integer, got {seed!r}")
        self.seed = seed

    def _generators(self, key: Sequence[int]) -> list[np.random.Generator]:
        seen: dict[str, int] = {}
        generators = []
        for transform in self.transforms:
            occurrence = seen.get(transform.name, 0)
            seen[transform.name] = occurrence + 1
            entropy = [self.seed % 2**64, *(int(k) % 2**64 for k in key),
                       zlib.crc32(transform.name.encode()), occurrence]
            generators.append(np.random.default_rng(entropy))
        return generators

    def trace(self, image: np.ndarray, mask: np.ndarray | None = None,
              key: int | Sequence[int] = 0) -> list[Step]:
        """Every step's result in order (for the GUI); the last is what :meth:`__call__` returns."""
        key = (key,) if isinstance(key, (int, np.integer)) else tuple(key)
        sample = Augmented(as_hwc(image), mask, None)
        steps = []
        for transform, rng in zip(self.transforms, self._generators(key)):
            applied = transform.enabled and rng.random() < transform.p
            if applied:
                sample = transform.apply(sample, rng)
            steps.append(Step(transform.name, applied, sample))
        return steps

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None,
                 key: int | Sequence[int] = 0) -> Augmented:
        """Augment ``image`` (H×W or H×W×C) and ``mask`` (H×W) jointly; output arrays are contiguous."""
        steps = self.trace(image, mask, key)
        out = steps[-1].result if steps else Augmented(as_hwc(image), mask, None)
        return Augmented(np.ascontiguousarray(out.image),
                         None if out.mask is None else np.ascontiguousarray(out.mask),
                         None if out.valid is None else np.ascontiguousarray(out.valid))

    def to_dict(self) -> dict:
        return {"version": PIPELINE_VERSION, "seed": self.seed, "transforms": [t.to_dict() for t in self.transforms]}

    @classmethod
    def from_dict(cls, data: dict) -> "Pipeline":
        if not isinstance(data, dict):
            raise RegistryError(f"a pipeline is a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"version", "seed", "transforms"}
        if unknown:
            raise RegistryError(f"pipeline: unknown key {', '.join(sorted(unknown))}; valid: version, seed, transforms")
        version = data.get("version", PIPELINE_VERSION)
        if version != PIPELINE_VERSION:
            raise RegistryError(f"pipeline version {version!r} is not supported (this SegStudio reads {PIPELINE_VERSION})")
        transforms = data.get("transforms", [])
        if not isinstance(transforms, list):
            raise RegistryError(f"pipeline: transforms must be a list, got {transforms!r}")
        return cls([build_transform(t) for t in transforms], data.get("seed", 0))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Pipeline":
        return cls.from_dict(json.loads(text))

    def __repr__(self) -> str:
        return f"Pipeline(seed={self.seed}, transforms={self.transforms!r})"


def default_pipeline(seed: int = 0) -> Pipeline:
    """SegStudio's recommended training augmentation for microscopy-like data."""
    return Pipeline.from_dict({
        "seed": seed,
        "transforms": [
            {"name": "flip", "p": 0.75},
            {"name": "rotate90", "p": 0.5},
            {"name": "elastic", "p": 0.5},
            {"name": "brightness", "p": 0.5},
            {"name": "contrast", "p": 0.5},
            {"name": "gaussian_noise", "p": 0.3},
        ],
    })
