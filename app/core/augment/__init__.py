"""Joint image/mask augmentation: a registry of seeded transforms composed into a pipeline."""

from . import elastic, geometric, intensity  # noqa: F401  (registers the transforms)
from .base import TRANSFORMS, Augmented, Transform
from .pipeline import Pipeline, Step, build_transform, default_pipeline


def available_augmentations() -> list[str]:
    """Names of every registered transform."""
    return TRANSFORMS.names()


__all__ = ["TRANSFORMS", "Augmented", "Pipeline", "Step", "Transform", "available_augmentations",
           "build_transform", "default_pipeline"]
