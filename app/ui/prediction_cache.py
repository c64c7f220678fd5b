"""Byte-bounded caches of the Predictions panel and what they hold: a network output as cached
(:class:`CachedPrediction`), an image's display and truth outline (:class:`ImageView`), the
overlay layers of a prediction (:class:`OverlayLayers`) and a cache entry with its latest
clean-up (:class:`CacheEntry`), each reporting its size in bytes, plus :func:`trim`, which drops
the oldest items of an ordered cache beyond a byte budget. No Qt here.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.postprocess import WatershedParams


def nbytes_of(*arrays) -> int:
    """Total bytes of ``arrays`` (None and non-arrays count 0)."""
    return sum(int(getattr(a, "nbytes", 0)) for a in arrays if a is not None)


@dataclass
class CachedPrediction:
    """A prediction as cached: its ``labels`` (argmax of the network's float32 output) and
    only what the clean-up needs exactly. A binary model keeps its foreground probability as
    float32 (the background one is its complement; float16 would shift the watershed's 8-bit
    input and, now and then, its objects); a model with more classes, whose clean-up uses the
    labels, keeps every probability as float16."""

    labels: np.ndarray
    foreground: np.ndarray | None = None  # float32 H×W, binary models
    probabilities16: np.ndarray | None = None  # float16 C×H×W, other models

    @classmethod
    def of(cls, prediction) -> "CachedPrediction":
        probabilities = prediction.probabilities
        if probabilities.shape[0] == 2:
            return cls(prediction.labels, foreground=np.ascontiguousarray(probabilities[1], np.float32))
        return cls(prediction.labels, probabilities16=probabilities.astype(np.float16))

    @property
    def nbytes(self) -> int:
        return nbytes_of(self.labels, self.foreground, self.probabilities16)

    def cleanup_source(self) -> np.ndarray:
        """What the watershed cleans, as ``Predictor.postprocess`` chooses it."""
        return self.foreground if self.foreground is not None else self.labels > 0

    def expanded(self):
        """The :class:`~app.core.predictor.Prediction` with float32 probabilities."""
        from app.core.predictor import Prediction

        if self.foreground is not None:
            probabilities = np.stack([1.0 - self.foreground, self.foreground]).astype(np.float32, copy=False)
        else:
            probabilities = self.probabilities16.astype(np.float32)
        return Prediction(probabilities, self.labels)


@dataclass
class ImageView:
    """What is drawn for an image whatever the model: the display RGB (shared by both views)
    and the ground-truth outline layer (None without truth)."""

    display: np.ndarray
    truth_layer: np.ndarray | None

    @property
    def nbytes(self) -> int:
        return nbytes_of(self.display, self.truth_layer)


@dataclass
class OverlayLayers:
    """Prediction overlays at full alpha (the views set their opacity): ``before`` on the raw
    prediction, ``after`` on the cleaned result and, when objects are coloured, ``outline``
    (their contours, kept more opaque than the fill)."""

    options: tuple[bool, bool]  # (errors, objects)
    before: np.ndarray
    after: np.ndarray
    outline: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return nbytes_of(self.before, self.after, self.outline)


@dataclass
class CacheEntry:
    """A cached prediction and its latest clean-up. The clean-up's full-size step images are
    kept only while the entry is shown (``result.steps`` is emptied otherwise); the step
    thumbnails stay."""

    prediction: CachedPrediction
    params: WatershedParams | None = None
    result: Any = None  # app.core.postprocess.PostprocessResult
    metrics: dict | None = None
    thumbs: list[tuple[str, np.ndarray]] = field(default_factory=list)
    layers: OverlayLayers | None = None

    @property
    def nbytes(self) -> int:
        total = self.prediction.nbytes
        if self.result is not None:
            total += nbytes_of(self.result.mask, self.result.labels, *(array for _, array in self.result.steps))
        total += nbytes_of(*(array for _, array in self.thumbs))
        return total + (self.layers.nbytes if self.layers is not None else 0)


def trim(cache: OrderedDict, budget: int, keep) -> None:
    """Drop the oldest items of ``cache`` (values with ``nbytes``) until it fits ``budget``;
    the key ``keep`` stays."""
    total = sum(value.nbytes for value in cache.values())
    for key in list(cache):
        if total <= budget:
            return
        if key != keep:
            total -= cache.pop(key).nbytes
