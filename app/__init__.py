"""SegStudio: biomedical image segmentation experiments and review."""

__version__ = "0.1.0"
