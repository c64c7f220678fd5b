"""Which model and which image the Predictions panel shows: loading the run's checkpoint (once
per file version) and reporting failures, the image list (validation, test and training samples,
then opened files), choosing an image, its cached display and truth outline, the cache key of
its prediction, and the status line. :class:`PredictionSourcesMixin` does this for
:class:`~app.ui.predictions_panel.PredictionsPanel`.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog

from app.core.imageio import IMAGE_SUFFIXES

from .prediction_cache import CacheEntry, ImageView, trim
from .prediction_jobs import file_mtime

SPLIT_ORDER = ("val", "test", "train")
FILE_PREFIX = "file:"
VIEW_CACHE_BYTES = 256 << 20  # display images and ground-truth outlines kept


class PredictionSourcesMixin:
    """Model, image list and status of :class:`~app.ui.predictions_panel.PredictionsPanel`."""

    def _ask_checkpoint(self) -> None:
        start = str(self.state.checkpoint.parent) if self.state.checkpoint else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", start, "Checkpoints (*.pt);;All files (*)")
        if path:
            self.open_checkpoint(path)

    def _on_run_changed(self) -> None:
        """Load the run's checkpoint unless that very file (same modification time) is loaded
        or being loaded."""
        checkpoint = Path(self.state.checkpoint) if self.state.checkpoint is not None else None
        if self._closed or checkpoint is None:
            return
        if not checkpoint.is_file():
            if self.state.training:
                self.status_label.setText(f"Waiting for the run's first checkpoint ({checkpoint.name})…")
            else:
                self._show_error(f"The run {self.state.run_dir or checkpoint.parent} has no checkpoint "
                                 f"({checkpoint.name}) to predict with")
            return
        if (str(checkpoint), file_mtime(checkpoint)) not in (self._model_key, self._loading):
            self.open_checkpoint(checkpoint)

    def _on_training_changed(self, running: bool) -> None:
        if self._closed:
            return
        self._update_status()
        if not running:  # the run's best checkpoint may have changed
            self._on_run_changed()

    def _on_loaded(self, key: tuple[str, int | None], path: Path, result) -> None:
        predictor, note = result
        self._loading = None
        self._predictor, self._model_key, self._device_note = predictor, key, note
        self._drop_entries(lambda cache_key: cache_key[0] != key)  # other checkpoints' predictions
        self.banner.hide()
        model = html.escape(predictor.config.model.name)
        self.checkpoint_label.setText(f"<b>{model}</b> · {html.escape(path.name)} ({html.escape(str(path.parent))})")
        self.checkpoint_label.setToolTip(f"{path}\nmodel: {predictor.config.model.name}, device: {predictor.device}")
        self.predictorLoaded.emit(str(path))
        self._update_status()
        if self._current_key is None:
            self._refresh_images()
        else:
            self._choose(self._current_key)

    def _on_load_failed(self, path: Path, message: str) -> None:
        self._loading = None
        prefix = f"{path}: "
        cause = message[len(prefix):] if message.startswith(prefix) else message
        kept = " The previous model is kept." if self._predictor is not None else ""
        self._update_status()
        self._show_error(f"Could not load checkpoint {path.name} ({path}): {cause}.{kept}")

    # -- images --------------------------------------------------------------------------------
    def _ask_image(self) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", f"Images ({patterns});;All files (*)")
        if path:
            self.open_image(path)

    def _forget_image(self, key: str) -> None:
        self._files.pop(key, None)
        self._views.pop(key, None)
        self._drop_entries(lambda cache_key: cache_key[1] == key)

    def _drop_entries(self, condition: Callable[[tuple], bool]) -> None:
        for cache_key in [k for k in self._cache if condition(k)]:
            if self._cache.pop(cache_key) is self._steps_entry:
                self._steps_entry = None

    def _on_dataset_changed(self) -> None:
        if self._closed:
            return
        self._drop_entries(lambda cache_key: not cache_key[1].startswith(FILE_PREFIX))
        for key in [k for k in self._views if not k.startswith(FILE_PREFIX)]:
            del self._views[key]
        self._refresh_images(force=True)

    def _refresh_images(self, select: str | None = None, force: bool = False) -> None:
        """Rebuild the image list (val, test, train, then opened files) and keep the choice."""
        if self._closed:
            return
        wanted = select or self._current_key
        combo = self.image_combo
        combo.blockSignals(True)
        combo.clear()
        dataset = self.state.dataset
        if dataset is not None:
            for split in SPLIT_ORDER:
                for sample in dataset.split(split):
                    combo.addItem(f"{sample.name} ({split})", sample.name)
        for key, (label, _image) in self._files.items():
            combo.addItem(f"{label} (file)", key)
        index = combo.findData(wanted) if wanted else -1
        index = index if index >= 0 else (0 if combo.count() else -1)
        combo.setCurrentIndex(index)
        combo.blockSignals(False)
        key = combo.itemData(index) if index >= 0 else None
        if key != self._current_key or force or select is not None:
            self._choose(key)

    def _on_combo_index(self, index: int) -> None:
        self._choose(self.image_combo.itemData(index) if index >= 0 else None)

    def _source(self, key: str | None) -> tuple[str, np.ndarray, np.ndarray | None] | None:
        """``(name, image, truth or None)`` of an image key."""
        if key is None:
            return None
        if key in self._files:
            return key[len(FILE_PREFIX):], self._files[key][1], None
        sample = self.state.sample(key)
        return (sample.name, sample.image, sample.mask) if sample is not None else None

    def _choose(self, key: str | None) -> None:
        """Show the image ``key`` with whatever is cached for it, then bring it up to date."""
        if self._closed:
            return
        self._current_key = key
        self._shown_step, self._after_shows_step = None, False
        self.after_canvas.set_title("After watershed")
        entry = self._current_entry()
        if self._steps_entry is not None and self._steps_entry is not entry:
            self._steps_entry.result.steps = []  # full-size steps only for the image shown
            self._steps_entry = None
        self._step_image = None
        if not (self._show_view() and entry is not None and entry.result is not None):
            self._clear_results()  # (a cached result is drawn by _request_prediction)
        self._request_prediction()

    def _on_view_ready(self, key: str, view: ImageView) -> None:
        self._views[key] = view
        trim(self._views, VIEW_CACHE_BYTES, self._current_key)
        if key != self._current_key:
            return
        self._set_image(self.before_canvas, view.display)
        if not self._after_shows_step:
            self._set_image(self.after_canvas, view.display)
        entry = self._current_entry()
        if entry is not None and entry.result is not None:
            self._display_entry()
        else:
            self._render()
        self._announce_if_ready()

    def _current_view(self) -> ImageView | None:
        return self._views.get(self._current_key) if self._current_key is not None else None

    # -- prediction ----------------------------------------------------------------------------
    def _cache_key(self, key: str | None) -> tuple | None:
        return (self._model_key, key) if self._model_key is not None and key is not None else None

    def _current_entry(self) -> CacheEntry | None:
        cache_key = self._cache_key(self._current_key)
        return self._cache.get(cache_key) if cache_key is not None else None

    def _update_status(self) -> None:
        if self._predictor is None:
            text = "No model: open a checkpoint, or finish a training run to see its predictions."
        elif self._source(self._current_key) is None:
            text = "No image: load a dataset or open an image."
        else:
            text = f"Model on {self._predictor.device}."
            if self.state.training:
                text += " Training is running: predictions share the device with it, so both are slower."
        self.status_label.setText(f"{text} {self._device_note}".strip())

    def _update_busy(self, *_args) -> None:
        busy = any(r.busy for r in (self._load_runner, self._predict_runner, self._read_runner, self._view_runner))
        self.busy_bar.setVisible(busy)
        if busy and self._load_runner.busy:
            self.busy_bar.setRange(0, 0)
