"""The pieces every transform shares: the sample being augmented, the base class, the registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..registry import Param, Registry

TRANSFORMS: Registry[type["Transform"]] = Registry("augmentation")

PROBABILITY = Param("p", "float", 1.0, 0.0, 1.0, help="probability that the transform is applied")
ENABLED = Param("enabled", "bool", True, help="whether the transform is used at all")


@dataclass
class Augmented:
    """An image (H×W×C, its own dtype), its label mask (H×W) and where pixels are real.

    ``valid`` is False where a pixel comes from padding or from outside the source image
    (mirrored or constant fill); None means every pixel is valid.
    """

    image: np.ndarray
    mask: np.ndarray | None = None
    valid: np.ndarray | None = None

    def valid_or_ones(self) -> np.ndarray:
        if self.valid is None:
            return np.ones(self.image.shape[:2], dtype=bool)
        return self.valid


class Transform:
    """Base class: subclasses set ``name``, ``kind``, ``PARAMS`` and implement :meth:`apply`.

    ``kind`` is ``"geometric"`` (moves image, mask and valid region together; masks use
    nearest-neighbour so label values stay exact) or ``"intensity"`` (image only).
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    description: ClassVar[str] = ""

    def __init__(self, p: float = 1.0, enabled: bool = True, **params: Any):
        self.p = PROBABILITY.validate(p, f"augmentation {self.name!r}")
        self.enabled = ENABLED.validate(enabled, f"augmentation {self.name!r}")
        self.params = TRANSFORMS.resolve(self.name, params)

    def apply(self, sample: Augmented, rng: np.random.Generator) -> Augmented:
        raise NotImplementedError

    def to_dict(self) -> dict:
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()}
        return {"name": self.name, "enabled": self.enabled, "p": self.p, "params": params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}(p={self.p}, {args})"


def register_transform(cls: type[Transform]) -> type[Transform]:
    """Class decorator: add a :class:`Transform` subclass to :data:`TRANSFORMS`."""
    TRANSFORMS.add(cls.name, cls, cls.PARAMS, cls.description, kind=cls.kind)
    return cls


def restore_channels(result: np.ndarray, like: np.ndarray) -> np.ndarray:
    """OpenCV drops a trailing channel axis of length 1; put it back."""
    return result.reshape(result.shape[:2] + like.shape[2:]) if result.ndim == 2 and like.ndim == 3 else result
