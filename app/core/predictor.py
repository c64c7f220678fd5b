"""A trained model ready to predict: built from a checkpoint, with its normalisation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .arrays import as_hwc
from .config import ConfigError, ExperimentConfig
from .postprocess import PostprocessResult, WatershedParams, watershed_postprocess


@dataclass
class Prediction:
    probabilities: np.ndarray  # classes × H × W
    labels: np.ndarray  # H × W class indices (argmax)


class Predictor:
    """Loads a checkpoint safely (weights only) and predicts whole images of any size."""

    def __init__(self, model, config: ExperimentConfig, normaliser, device, checkpoint: Path,
                 image_dtype: str | None = None):
        self.model, self.config, self.normaliser = model, config, normaliser
        self.image_dtype = np.dtype(image_dtype) if image_dtype else None
        self.device, self.checkpoint = device, checkpoint
        self.in_channels = model.in_channels
        self.num_classes = model.num_classes

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "auto") -> "Predictor":
        import torch

        from .models import build_model
        from .training.checkpoint import CheckpointError, load_checkpoint, load_model_state
        from .training.data import Normaliser
        from .training.device import resolve_device
        from .training.precision import prefers_channels_last

        path = Path(path)
        torch_device = resolve_device(device)
        state = load_checkpoint(path, map_location="cpu")
        try:
            config = ExperimentConfig.from_dict(state["config"])
            model = build_model(config.model.name, int(state["in_channels"]), int(state["num_classes"]),
                                **config.model.params)
            load_model_state(model, state, path)
            norm = state.get("normaliser", {"mean": [0.0], "std": [1.0]})
            normaliser = Normaliser(norm["mean"], norm["std"])
            image_dtype = state.get("image_dtype")
            if image_dtype is not None:
                np.dtype(image_dtype)  # a name numpy knows, or the checkpoint is damaged
        except CheckpointError:
            raise
        except (ConfigError, KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise CheckpointError(f"{path}: its settings are unusable, the file is damaged or not from "
                                  f"SegStudio ({type(exc).__name__}: {exc})") from None
        model.to(torch_device).eval()
        if prefers_channels_last(torch_device):
            model.to(memory_format=torch.channels_last)
        return cls(model, config, normaliser, torch_device, path, image_dtype)

    def _to_training_depth(self, image: np.ndarray) -> np.ndarray:
        """An image of another bit depth than the training images is rescaled to theirs."""
        from .arrays import dtype_range

        trained = self.image_dtype
        if trained is None or image.dtype == trained or image.dtype.kind not in "ui" or trained.kind not in "ui":
            return image
        return image.astype(np.float32) * np.float32(dtype_range(trained)[1] / dtype_range(image.dtype)[1])

    def predict(self, image: np.ndarray, *, flip_tta: bool | None = None, progress=None,
                should_stop=None) -> Prediction:
        from .inference import predict_probabilities, tile_settings_for
        from .training.precision import autocast_dtype

        image = as_hwc(image)
        if image.dtype.kind == "f" and not np.isfinite(image).all():  # NaN spreads through every tile it touches
            bad = int(image.size - np.count_nonzero(np.isfinite(image)))
            raise ValueError(f"{bad} pixel(s) are NaN or infinite; fill them before predicting")
        image = self._to_training_depth(image)
        if image.shape[2] != self.in_channels:
            if self.in_channels == 3 and image.shape[2] == 1:
                image = np.repeat(image, 3, axis=2)
            elif self.in_channels == 1 and image.shape[2] == 3:
                image = image.mean(axis=2, keepdims=True).astype(image.dtype)
            else:
                raise ValueError(f"the model takes {self.in_channels}-channel images, this one has {image.shape[2]}")
        t = self.config.training
        settings = tile_settings_for(self.config, flip_tta)
        probs = predict_probabilities(self.model, self.normaliser(image), settings, device=self.device,
                                      autocast=autocast_dtype(self.device, t.mixed_precision),
                                      progress=progress, should_stop=should_stop)
        labels = probs.argmax(0).astype(np.uint8 if probs.shape[0] <= 256 else np.uint16)
        return Prediction(probs, labels)

    @property
    def watershed_params(self) -> WatershedParams:
        """The clean-up settings the run was set up with (defaults filled in)."""
        return WatershedParams.from_dict(self.config.postprocess)

    def postprocess(self, prediction: Prediction, params: WatershedParams | None = None, *,
                    keep_steps: bool = True) -> PostprocessResult:
        """Watershed clean-up of the foreground probability (binary models) or mask."""
        params = params or self.watershed_params
        source = prediction.probabilities[1] if prediction.probabilities.shape[0] == 2 else (prediction.labels > 0)
        return watershed_postprocess(source, params, keep_steps=keep_steps)
