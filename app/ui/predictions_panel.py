"""The Predictions panel: a trained model's prediction of one image, before and after the
watershed clean-up, with scores against the ground truth and every clean-up step.

Everything heavy runs in background tasks: the network (its output cached per (checkpoint,
image) within a memory budget, so going back to an image is instant), the display image and
ground-truth outline (once per image), the watershed with its scores, thumbnails and overlay
layers (changing a clean-up parameter re-runs only this, never the network), and the large
view of a clean-up step. The GUI thread only hands finished arrays to the views; the opacity
slider changes the overlay items' opacity without touching any array.

The panel's parts live beside it: the caches and their entries in ``prediction_cache``, what
the jobs compute and how they run in ``prediction_jobs``, the widgets in ``prediction_layout``
and ``steps_strip``, the model and image choice in ``prediction_sources`` and the drawing in
``prediction_display``. The drawing jobs below stay here (and call the renderers through this
module's names), as do the memory limits.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QToolButton, QWidget

from app.core.imageio import read_image
from app.core.postprocess import WatershedParams

from .image_view import ImageCanvas
from .prediction_cache import CachedPrediction, CacheEntry, ImageView, OverlayLayers, trim
from .prediction_display import PredictionDisplayMixin
from .prediction_jobs import (BackgroundJobsMixin, before_after_metrics, clean_up, file_mtime, image_metrics,
                              load_predictor, step_rgb, step_thumbnail)
from .prediction_layout import METRIC_ROWS, TRUTH_COLOUR, PredictionsLayoutMixin
from .prediction_sources import FILE_PREFIX, PredictionSourcesMixin
from .render import contour_of, error_overlay, mask_overlay, thumbnail, to_display
from .state import ExperimentState
from .steps_strip import THUMB_SIZE
from .styles import banner_style
from .tasks import TaskRunner

__all__ = ["PredictionsPanel", "CachedPrediction", "ImageView", "OverlayLayers", "METRIC_ROWS",
           "before_after_metrics", "image_metrics", "load_predictor", "overlay_layers", "prepare_view",
           "step_rgb", "step_thumbnail"]

CACHE_BYTES = 1 << 30  # predictions kept (oldest dropped first beyond this)
FILES_LIMIT = 20  # opened image files listed (the oldest leave the list)


# -- drawing jobs: they call the renderers through this module's names -------------------------
def prepare_view(image: np.ndarray, truth: np.ndarray | None) -> ImageView:
    """The display image and truth outline of an image (run in a worker)."""
    outline = mask_overlay(truth > 0, 1.0, "contour", TRUTH_COLOUR) if truth is not None else None
    return ImageView(to_display(image), outline)


def overlay_layers(labels: np.ndarray, result, truth: np.ndarray | None, options: tuple[bool, bool]) -> OverlayLayers:
    """The overlays of a prediction and its clean-up for ``options`` = (errors, objects):
    the error map (needs the truth), objects in their own colours with outlines, or the
    foreground fill."""
    errors, objects = options
    if errors and truth is not None:
        return OverlayLayers(options, error_overlay(labels, truth, 1.0), error_overlay(result.mask, truth, 1.0))
    before = mask_overlay(labels, 1.0, "fill")
    if not objects:
        return OverlayLayers(options, before, mask_overlay(result.mask, 1.0, "fill"))
    fill = mask_overlay(result.labels, 1.0, "fill")
    edge = contour_of(result.labels)
    outline = np.zeros_like(fill)
    outline[edge] = fill[edge]
    fill[edge, 3] = 0
    return OverlayLayers(options, before, fill, outline)


class PredictionsPanel(PredictionsLayoutMixin, PredictionSourcesMixin, PredictionDisplayMixin, BackgroundJobsMixin,
                       QWidget):
    """Predict an image with a checkpoint and compare the raw result with its watershed clean-up."""

    title = "Predictions"

    predictionReady = Signal(str)  # image name (sample name or file path) once shown with its clean-up
    postprocessed = Signal()  # after every clean-up refresh
    predictorLoaded = Signal(str)  # checkpoint path
    failed = Signal(str)  # message shown in the banner

    def __init__(self, state: ExperimentState, parent=None):
        super().__init__(parent)
        self.state = state
        self.network_passes = 0
        self._closed = False
        self._predictor = None
        self._model_key: tuple[str, int | None] | None = None  # (path, mtime) of the loaded checkpoint
        self._loading: tuple[str, int | None] | None = None  # (path, mtime) of the checkpoint being loaded
        self._params, params_problem = self._config_params()
        self._device_note = ""
        self._after_shows_step = False
        self._files: OrderedDict[str, tuple[str, np.ndarray]] = OrderedDict()  # key -> (label, image), newest last
        self._cache: OrderedDict[tuple, CacheEntry] = OrderedDict()
        self._views: OrderedDict[str, ImageView] = OrderedDict()
        self._current_key: str | None = None
        self._announce: str | None = None  # key whose predictionReady is pending
        self._shown_step: str | None = None
        self._steps_entry: CacheEntry | None = None  # the entry whose result holds its full-size steps
        self._step_image: tuple[Any, str, np.ndarray] | None = None  # (result, step, RGB) shown large
        self._pending: dict[str, Any] = {"overlay": None, "step": None}  # what the running job makes
        self._tokens = {name: 0 for name in ("load", "predict", "post", "read", "view", "overlay", "step")}
        self._load_runner = TaskRunner("load-checkpoint", self)
        self._predict_runner = TaskRunner("predict", self)
        self._post_runner = TaskRunner("postprocess", self)
        self._read_runner = TaskRunner("read-image", self)
        self._view_runner = TaskRunner("prepare-image", self)
        self._overlay_runner = TaskRunner("overlays", self)
        self._step_runner = TaskRunner("step-image", self)
        self._build()
        self._connect()
        self._refresh_images()
        self._update_status()
        if params_problem:
            self._show_error(params_problem)
        if state.checkpoint is not None:
            self._on_run_changed()

    def _connect(self) -> None:
        self.state.runChanged.connect(self._on_run_changed)
        self.state.trainingChanged.connect(self._on_training_changed)
        self.state.configChanged.connect(self._on_config_changed)
        self.state.datasetChanged.connect(self._on_dataset_changed)
        self.state.splitsChanged.connect(lambda _source: self._refresh_images())
        self.image_combo.currentIndexChanged.connect(self._on_combo_index)
        self.predictorLoaded.connect(lambda _path: self.folder_bar.update_enabled())
        self.params_form.changed.connect(self._on_params_edited)
        self.reset_button.clicked.connect(self.reset_defaults)
        for box in (self.truth_check, self.errors_check, self.objects_check):
            box.toggled.connect(self._render)
        self.opacity_slider.valueChanged.connect(self._apply_opacity)
        for runner in (self._load_runner, self._predict_runner, self._read_runner, self._view_runner):
            runner.busyChanged.connect(self._update_busy)

    # -- public API --------------------------------------------------------------------------
    @property
    def predictor(self):
        """The loaded :class:`~app.core.predictor.Predictor`, or None."""
        return self._predictor

    @property
    def current_key(self) -> str | None:
        """The chosen image: a sample name, or ``file:<path>`` for an opened file."""
        return self._current_key

    @property
    def step_buttons(self) -> list[QToolButton]:
        """The step strip's buttons, one per clean-up step of the result shown."""
        return self.steps_area.buttons

    def current_prediction(self):
        """The network's output for the image shown (a :class:`~app.core.predictor.Prediction`
        rebuilt from the cache; its foreground probability is exactly what was cleaned), or None."""
        entry = self._current_entry()
        return entry.prediction.expanded() if entry is not None else None

    def current_result(self):
        """The :class:`~app.core.postprocess.PostprocessResult` shown, or None."""
        entry = self._current_entry()
        return entry.result if entry is not None else None

    def metrics(self) -> dict[str, dict[str, float]]:
        """``{"before": {...}, "after": {...}}`` of the image shown (empty before a prediction)."""
        entry = self._current_entry()
        if entry is None or entry.metrics is None:
            return {}
        return {side: dict(values) for side, values in entry.metrics.items()}

    def params(self) -> WatershedParams:
        return self._params

    def overlay_opacity(self, canvas: ImageCanvas, name: str = "prediction") -> float | None:
        """The opacity a view draws its overlay ``name`` with (None when it has none)."""
        item = canvas._layers.get(name)
        return float(item.opacity()) if item is not None and canvas.layer(name) is not None else None

    def open_checkpoint(self, path) -> None:
        """Load a checkpoint in the background; a bad one leaves the current model in place.
        A request for the file (same modification time) already being loaded is ignored."""
        if self._closed:
            return
        path = Path(path)
        key = (str(path), file_mtime(path))
        if key == self._loading:
            return
        device = self.state.config.training.device
        self.status_label.setText(f"Loading {path.name}…")
        self._loading = key
        started = self._start(self._load_runner, "load", lambda ctx: load_predictor(path, device),
                              lambda result: self._on_loaded(key, path, result),
                              lambda message: self._on_load_failed(path, message))
        if not started:
            self._loading = None

    def open_image(self, path) -> None:
        """Read any image file in the background, add it to the image list and predict it."""
        path = Path(path)
        self._start(self._read_runner, "read", lambda ctx: read_image(path),
                    lambda image: self._on_image_read(path, image),
                    lambda message: self._show_error(f"Could not open image {path.name}: {message}"))

    def select_image(self, key: str) -> None:
        """Show (and predict) the image ``key`` (a sample name or ``file:<path>``)."""
        index = self.image_combo.findData(key)
        if index < 0:
            raise KeyError(f"no image {key!r} in the list")
        if index == self.image_combo.currentIndex():
            self._choose(key)
        else:
            self.image_combo.setCurrentIndex(index)

    def show_step(self, name: str | None) -> None:
        """Show the clean-up step ``name`` large in the After view (None, or a step the
        current result lacks: the result). The large image is drawn in the background."""
        self._shown_step = name if name is not None and name in self._step_names() else None
        self.steps_area.set_checked(self._shown_step)
        self._render()

    def reset_defaults(self) -> None:
        self.params_form.set_values(WatershedParams().to_dict())
        self._on_params_edited(self.params_form.values())

    def shutdown(self) -> None:
        """Cancel and wait for every background job and start no new one; safe to call twice."""
        self._closed = True
        for name in self._tokens:
            self._next(name)
        for runner in self._runners():
            runner.shutdown()
        self.folder_bar.shutdown()

    def _on_image_read(self, path: Path, image: np.ndarray) -> None:
        """List the file (newest last; beyond FILES_LIMIT the oldest leave) and show it."""
        key = FILE_PREFIX + str(path)
        self._forget_image(key)  # the file may have changed since it was last opened
        self._files[key] = (path.name, image)
        while len(self._files) > FILES_LIMIT:
            self._forget_image(next(iter(self._files)))
        self.banner.hide()
        self._refresh_images(select=key)

    def _show_view(self) -> bool:
        """Put the image's cached display in both views (True), or clear them and prepare it."""
        key, source = self._current_key, self._source(self._current_key)
        view = self._views.get(key) if source is not None else None
        if view is not None:
            self._views.move_to_end(key)
            self._stop("view", self._view_runner)
            self._set_image(self.before_canvas, view.display)
            self._set_image(self.after_canvas, view.display)
            return True
        self.before_canvas.set_image(None)
        self.after_canvas.set_image(None)
        if source is not None:
            name, image, truth = source
            self._start(self._view_runner, "view", lambda ctx: prepare_view(image, truth),
                        lambda prepared: self._on_view_ready(key, prepared),
                        lambda message: self._show_error(f"Could not display {Path(name).name}: {message}"))
        return False

    def _request_prediction(self) -> None:
        source = self._source(self._current_key)
        if source is None or self._predictor is None:
            self._update_status()
            return
        cache_key = self._cache_key(self._current_key)
        self._announce = self._current_key
        if cache_key in self._cache:
            self._cache.move_to_end(cache_key)
            self._stop("predict", self._predict_runner)
            self._run_postprocess()
            return
        name, image, _truth = source
        predictor = self._predictor

        def job(ctx):
            prediction = predictor.predict(image, progress=ctx.progress, should_stop=lambda: ctx.cancelled)
            ctx.check()
            return CachedPrediction.of(prediction)

        if self._start(self._predict_runner, "predict", job,
                       lambda prediction: self._on_predicted(cache_key, prediction),
                       lambda message: self._on_predict_failed(name, message), self._on_progress):
            self.network_passes += 1
            self.busy_bar.setRange(0, 0)
            self.status_label.setText(f"Predicting {Path(name).name}…")

    def _on_progress(self, done: int, total: int) -> None:
        self.busy_bar.setRange(0, max(1, total))
        self.busy_bar.setValue(done)

    def _on_predicted(self, cache_key: tuple, prediction) -> None:
        self._cache[cache_key] = CacheEntry(prediction)
        trim(self._cache, CACHE_BYTES, self._cache_key(self._current_key))
        self.banner.hide()
        self._update_status()
        if cache_key == self._cache_key(self._current_key):
            self._run_postprocess()

    def _on_predict_failed(self, name: str, message: str) -> None:
        self._announce = None
        self._update_status()
        self._show_error(f"Prediction of {Path(name).name} failed: {message}")

    # -- post-processing -----------------------------------------------------------------------
    def _config_params(self) -> tuple[WatershedParams, str]:
        """The experiment's clean-up settings, or the defaults and the reason they are unusable."""
        try:
            return WatershedParams.from_dict(self.state.config.postprocess or {}), ""
        except Exception as exc:  # noqa: BLE001 - a bad experiment file: fall back to the defaults
            return WatershedParams(), (f"The experiment's post-processing settings are invalid ({exc}); "
                                       "using the defaults")

    def _on_params_edited(self, values: dict) -> None:
        if self._closed:
            return
        try:
            params = WatershedParams.from_dict(values)
        except Exception as exc:  # noqa: BLE001 - shown, the previous settings stay
            self._show_error(f"Invalid clean-up settings: {exc}")
            return
        self._params = params
        self.state.update("postprocess", self, value=params.to_dict())
        self._run_postprocess()

    def _on_config_changed(self, section: str, source: object) -> None:
        if self._closed or source is self or section not in ("postprocess", "all"):
            return
        self._params, problem = self._config_params()
        self.params_form.set_values(self._params.to_dict())
        if problem:
            self._show_error(problem)
        self._run_postprocess()

    def _run_postprocess(self) -> None:
        """Clean the current prediction with the current settings (cached result when unchanged)."""
        entry, source = self._current_entry(), self._source(self._current_key)
        if entry is None or source is None:
            return
        if entry.result is not None and entry.params == self._params:
            self._stop("post", self._post_runner)
            self._show_entry()
            if not entry.result.steps:
                self._make_step_image(entry, None)  # bring back its full-size steps
            return
        if entry.result is not None and self._current_view() is not None:
            self._display_entry()  # the previous settings' result until the new one is ready
        params, truth, options = self._params, source[2], self._overlay_options()
        prediction = entry.prediction

        def job(ctx):
            result = clean_up(prediction, params)
            ctx.check()
            metrics = before_after_metrics(prediction.labels, result, truth)
            thumbs = [(name, thumbnail(step_thumbnail(array), THUMB_SIZE)) for name, array in result.steps]
            ctx.check()
            return result, metrics, thumbs, overlay_layers(prediction.labels, result, truth, options)

        self._start(self._post_runner, "post", job, lambda out: self._on_postprocessed(entry, params, out),
                    lambda message: self._show_error(f"Clean-up failed: {message}"))

    def _on_postprocessed(self, entry: CacheEntry, params: WatershedParams, out) -> None:
        entry.result, entry.metrics, entry.thumbs, entry.layers = out
        entry.params = params
        current = entry is self._current_entry()
        if current:
            self._steps_entry, self._step_image = entry, None
        else:
            entry.result.steps = []
        trim(self._cache, CACHE_BYTES, self._cache_key(self._current_key))
        if current:
            self._show_entry()

    def _show_entry(self) -> None:
        """Draw the current entry everywhere and announce it."""
        self._display_entry()
        self.postprocessed.emit()
        self._announce_if_ready()

    def _announce_if_ready(self) -> None:
        """Emit predictionReady once the image asked for is shown with its current clean-up."""
        entry, key = self._current_entry(), self._current_key
        if (self._announce != key or entry is None or entry.result is None or entry.params != self._params
                or self._current_view() is None or not self._layers_current(entry)):
            return
        self._announce = None
        self.predictionReady.emit(self._source(key)[0])

    def _make_overlays(self, entry: CacheEntry) -> None:
        """Build the current entry's overlays for the current options in the background."""
        options, result, truth = self._overlay_options(), entry.result, self._source(self._current_key)[2]
        pending = self._pending["overlay"]
        if pending is not None and pending[0] is result and pending[1] == options:
            return
        self._pending["overlay"] = (result, options)
        labels = entry.prediction.labels
        self._start(self._overlay_runner, "overlay", lambda ctx: overlay_layers(labels, result, truth, options),
                    lambda layers: self._on_overlays(entry, result, layers),
                    lambda message: self._show_error(f"Could not draw the overlays: {message}"))

    def _on_overlays(self, entry: CacheEntry, result, layers: OverlayLayers) -> None:
        self._pending["overlay"] = None
        if entry.result is not result:
            return
        entry.layers = layers
        trim(self._cache, CACHE_BYTES, self._cache_key(self._current_key))
        if entry is self._current_entry():
            self._render()
            self._announce_if_ready()

    def _make_step_image(self, entry: CacheEntry, name: str | None) -> None:
        """In the background: the entry's full-size steps when it lacks them, and the step
        ``name`` drawn as RGB (None: only the steps)."""
        result, params, prediction = entry.result, entry.params, entry.prediction
        pending = self._pending["step"]
        if pending is not None and pending[0] is result and pending[1] == name:
            return
        self._pending["step"] = (result, name)
        known = list(result.steps)

        def job(ctx):
            steps = known or clean_up(prediction, params).steps
            ctx.check()
            return steps, (step_rgb(dict(steps)[name]) if name is not None else None)

        self._start(self._step_runner, "step", job, lambda out: self._on_step_image(entry, result, name, out),
                    lambda message: self._show_error(f"Could not show the step {name}: {message}"))

    def show_banner(self, message: str, kind: str = "error") -> None:
        """A message above the views; an error is also announced by ``failed``."""
        self.banner.setStyleSheet(banner_style(kind, "QLabel"))
        self.banner.setText(message)
        self.banner.show()
        if kind == "error":
            self.failed.emit(message)

    def _show_error(self, message: str) -> None:
        self.show_banner(message, "error")

    def checkpoint_path(self) -> Path | None:
        """The loaded checkpoint's file, or None."""
        return Path(self._model_key[0]) if self._predictor is not None and self._model_key else None
