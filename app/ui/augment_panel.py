"""Augmentation panel: edit the training augmentation pipeline and preview exactly what training draws.

The left side edits ``config.augmentation`` (one row per transform: enabled, probability, params).
The right side shows, for an ``(epoch, index)`` key, the source sample and the augmented patch that
:func:`app.core.patch_plan.training_patch` gives for that key, i.e. the very patch the training
data set draws, plus a grid of the following draws. Pipelines run on a background thread
(augmenting large source images can take far longer than a frame), and so does turning large
images into display images and overlays; :meth:`AugmentPanel.refresh_now` computes and renders
synchronously for tests and callers that need the result at once.
"""
from __future__ import annotations

import copy
import html
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

from app.core.augment import TRANSFORMS, Augmented, Pipeline, default_pipeline
from app.core.augment.pipeline import PIPELINE_VERSION
from app.core.patch_plan import patches_in_epoch
from app.core.registry import RegistryError

from .augment_layout import GRID_COLUMNS, GRID_DRAWS, MASK_MODES, NOTE_STYLE, SEED_LIMIT, AugmentLayout
from .augment_preview import (TILE_MASK_OPACITY, TILE_SIZE, Draw, DrawTile, PreviewImages, PreviewRequest,
                              compute_draw, compute_preview, display_levels, display_rgb, draw_keys, render_pixels,
                              render_preview, shown_result, source_view, tile_images)
from .augment_rows import BANNER_STYLE, TransformRow
from .param_form import align_labels
from .sample_view import ViewCache
from .tasks import TaskRunner

__all__ = ["AugmentPanel", "BANNER_STYLE", "DEBOUNCE_MS", "Draw", "DrawTile", "GRID_COLUMNS", "GRID_DRAWS",
           "MASK_MODES", "NOTE_STYLE", "PreviewImages", "PreviewRequest", "SEED_LIMIT", "SYNC_RENDER_PIXELS",
           "TILE_MASK_OPACITY", "TILE_SIZE", "TransformRow", "compute_draw", "compute_preview", "display_levels",
           "display_rgb", "draw_keys", "render_pixels", "render_preview", "source_view", "tile_images"]

DEBOUNCE_MS = 40
# Up to this many pixels to convert (~30 ms), the preview is rendered at once on the GUI thread; beyond, in the
# background (8 draws of 256² patches stay synchronous). Read here at call time: tests may patch it on this module.
SYNC_RENDER_PIXELS = 600_000


# -- the panel -----------------------------------------------------------------------------------
class AugmentPanel(AugmentLayout, QWidget):
    """Edits ``config.augmentation`` and previews the exact training patches it produces."""

    title = "Augmentation"

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.transform_rows: list[TransformRow] = []
        self.grid_canvases: list[DrawTile] = []
        self._seed: Any = 0
        self._draws: list[Draw] = []
        self._images: PreviewImages | None = None  # what is on screen
        self._mask_keys: dict[str, tuple | None] = {}  # per canvas: what its mask layer was built from
        self._generation = 0
        self._stale = False
        self._closed = False
        self._levels_cache: dict = {}
        self.sources = ViewCache()  # source samples' display images and masks
        self.runner = TaskRunner("augment-preview", self)
        self.render_runner = TaskRunner("augment-render", self)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._start_background)
        self._build()
        self._connect_state()
        self._rebuild_rows()
        self._update_ranges()
        self._on_training(state.training)
        self.schedule_refresh()

    def _connect_state(self) -> None:
        self.state.configChanged.connect(self._on_config_changed)
        self.state.datasetChanged.connect(self._on_dataset_changed)
        self.state.splitsChanged.connect(self._on_splits_changed)
        self.state.trainingChanged.connect(self._on_training)

    # -- state changes -----------------------------------------------------------------------
    def _on_config_changed(self, section: str, source: object) -> None:
        if section in ("augmentation", "all") and source is not self:
            self._rebuild_rows()
        if section in ("data", "training", "all"):
            self._update_ranges()
        if section in ("augmentation", "data", "training", "all") and source is not self:
            self.schedule_refresh()

    def _on_dataset_changed(self) -> None:
        self._levels_cache = {}
        self.sources.clear()
        self._update_ranges()
        self.schedule_refresh()

    def _on_splits_changed(self, _source: object) -> None:
        self._update_ranges()
        self.schedule_refresh()

    def _on_training(self, running: bool) -> None:
        self.controls.setEnabled(not running)
        self.rows_box.setEnabled(not running)
        self.lock_label.setVisible(running)

    # -- the editor --------------------------------------------------------------------------
    def _rebuild_rows(self) -> None:
        """Recreate the rows from ``config.augmentation``; show why it is invalid if it is."""
        data = self.state.config.augmentation
        raw = data if isinstance(data, dict) else {}
        transforms = raw.get("transforms", [])
        transforms = transforms if isinstance(transforms, list) else []
        expanded = [row.expanded for row in self.transform_rows]
        for row in self.transform_rows:
            self.rows_layout.removeWidget(row)
            row.deleteLater()
        self.transform_rows = []
        for position, spec in enumerate(transforms):
            row = TransformRow(spec, position, len(transforms),
                               expanded[position] if position < len(expanded) else True)
            row.changed.connect(self._on_row_edited)
            row.moveRequested.connect(lambda delta, r=row: self.move_transform(self.transform_rows.index(r), delta))
            row.removeRequested.connect(lambda r=row: self.remove_transform(self.transform_rows.index(r)))
            self.rows_layout.addWidget(row)
            self.transform_rows.append(row)
        align_labels(label for row in self.transform_rows for label in row.labels())
        self.empty_label.setVisible(not transforms)
        self._seed = raw.get("seed", 0)
        self.seed_spin.blockSignals(True)
        self.seed_spin.setValue(self._seed if isinstance(self._seed, int) and not isinstance(self._seed, bool) else 0)
        self.seed_spin.blockSignals(False)
        self._show_error(self._validation_error(data))

    @staticmethod
    def _validation_error(data: Any) -> str | None:
        try:
            Pipeline.from_dict(data)
        except (RegistryError, TypeError, ValueError) as exc:
            return f"Augmentation pipeline is invalid: {exc}"
        return None

    def pipeline_dict(self) -> dict:
        """The pipeline as the editor shows it (not yet validated)."""
        return {"version": PIPELINE_VERSION, "seed": self._seed,
                "transforms": [row.spec() for row in self.transform_rows]}

    def apply_pipeline(self, data: Any) -> bool:
        """Validate ``data`` and make it the experiment's augmentation; False (banner shown) if invalid."""
        error = self._validation_error(data)
        self._show_error(error)
        if error is not None:
            return False
        self.state.update("augmentation", self, value=Pipeline.from_dict(data).to_dict())
        self.schedule_refresh()
        return True

    def _apply_structure(self, transforms: list) -> bool:
        """Commit a pipeline whose rows were added, removed or reordered, then redraw the rows."""
        ok = self.apply_pipeline({**self.pipeline_dict(), "transforms": transforms})
        if ok:
            self._rebuild_rows()
        return ok

    def _on_row_edited(self) -> None:
        self.apply_pipeline(self.pipeline_dict())

    def _on_seed(self, value: int) -> None:
        self._seed = value
        self.apply_pipeline(self.pipeline_dict())

    def _on_add_activated(self, index: int) -> None:
        name = self.add_combo.itemData(index)
        self.add_combo.setCurrentIndex(0)
        if name:
            self.add_transform(name)

    def add_transform(self, name: str) -> bool:
        """Append ``name`` with p = 0.5 and default parameters."""
        spec = {"name": name, "enabled": True, "p": 0.5, "params": TRANSFORMS.get(name).defaults()}
        ok = self._apply_structure([row.spec() for row in self.transform_rows] + [spec])
        if ok and self.transform_rows:
            QTimer.singleShot(0, self, self._show_last_row)
        return ok

    def _show_last_row(self) -> None:
        if self.transform_rows:
            self.editor_scroll.ensureWidgetVisible(self.transform_rows[-1])

    def remove_transform(self, position: int) -> bool:
        specs = [row.spec() for row in self.transform_rows]
        del specs[position]
        return self._apply_structure(specs)

    def move_transform(self, position: int, delta: int) -> bool:
        specs = [row.spec() for row in self.transform_rows]
        target = position + delta
        if not 0 <= target < len(specs):
            return False
        specs[position], specs[target] = specs[target], specs[position]
        return self._apply_structure(specs)

    def reset_to_default(self) -> bool:
        ok = self.apply_pipeline(default_pipeline().to_dict())
        if ok:
            self._rebuild_rows()
        return ok

    def _show_error(self, message: str | None) -> None:
        self.banner.setText(message or "")
        self.banner.setVisible(bool(message))

    # -- preview requests --------------------------------------------------------------------
    def _train_samples(self) -> list:
        dataset = self.state.dataset
        if dataset is None:
            return []
        return dataset.split("train")  # training draws from these only

    def _per_epoch(self, samples: list) -> int:
        return patches_in_epoch(self.state.config, samples)

    def _update_ranges(self) -> None:
        """Epoch and index spin boxes cover the configured run."""
        samples = self._train_samples()
        per_epoch = self._per_epoch(samples)
        epochs = max(1, int(self.state.config.training.epochs))
        self.epoch_spin.setRange(0, epochs - 1)
        self.index_spin.setRange(0, per_epoch - 1)
        self.epoch_spin.setToolTip(f"Training epoch of the draw, 0 … {epochs - 1} "
                                   "(sample order and augmentation depend on it)")
        self.index_spin.setToolTip(f"Index of the patch within the epoch, 0 … {per_epoch - 1}")

    def _request(self) -> PreviewRequest | str:
        """What to compute, or a hint why there is nothing to preview."""
        if self.state.dataset is None:
            return "No dataset loaded.\nOpen a dataset to preview the augmented training patches."
        samples = self._train_samples()
        if not samples:
            if self.state.dataset.samples:
                return ("No training samples: every sample is in val or test, and training draws only from "
                        "train.\nMove some to train in the Dataset panel to preview the training patches.")
            return "The dataset has no samples to preview."
        error = self._validation_error(self.state.config.augmentation)
        if error is not None:
            return f"{error}\nFix the pipeline to see the preview."
        config = copy.deepcopy(self.state.config)
        return PreviewRequest(config, list(samples), self.epoch_spin.value(), self.index_spin.value(),
                              GRID_DRAWS, self._per_epoch(samples), self._levels_cache,
                              self.whole_box.isChecked(), self.padding_box.isChecked(), self.sources.snapshot())

    def schedule_refresh(self, *_args) -> None:
        """Recompute the preview shortly after the last of a burst of edits."""
        if self._closed:
            return
        if not self.isVisible():
            self._stale = True
            return
        self._timer.start()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self._timer.start()

    def _start_background(self) -> None:
        if self._closed:
            return
        request = self._request()
        self._generation += 1
        if isinstance(request, str):
            self._show_hint(request)
            return
        generation = self._generation

        def job(ctx):
            draws = compute_preview(request, ctx.check)
            return draws, render_preview(draws, request.whole, request.padding, request.sources, ctx.check)

        self.runner.start(job, on_done=lambda result: self._on_computed(*result, generation),
                          on_failed=lambda message: self._on_compute_failed(message, generation))

    def refresh_now(self) -> None:
        """Compute and render the preview now, on this thread (nothing after :meth:`shutdown`)."""
        self._timer.stop()
        self._stale = False
        self.runner.cancel()
        self.render_runner.cancel()
        self._generation += 1
        if self._closed:
            return
        request = self._request()
        if isinstance(request, str):
            self._show_hint(request)
            return
        try:
            draws = compute_preview(request)
            images = render_preview(draws, request.whole, request.padding, request.sources)
        except (ValueError, RuntimeError, MemoryError, OSError) as exc:
            self._on_compute_failed(str(exc) or type(exc).__name__, self._generation)
            return
        self._on_computed(draws, images, self._generation)

    def _on_computed(self, draws: list[Draw], images: PreviewImages, generation: int) -> None:
        if generation != self._generation:
            return  # an older request finished after a newer one was made
        self._draws = draws
        self.preview_stack.setCurrentIndex(1)
        if (images.whole, images.padding) == self._render_options():
            self._show_images(images)
        else:  # the options changed while it was computed
            self._render()

    def _on_compute_failed(self, message: str, generation: int) -> None:
        if generation == self._generation:
            self._show_hint(f"The preview failed: {message}")

    def _show_hint(self, text: str) -> None:
        self._draws = []
        self._images = None
        self.hint_label.setText(text)
        self.preview_stack.setCurrentIndex(0)

    # -- navigation --------------------------------------------------------------------------
    def new_sample(self) -> None:
        """The next draw: index + 1 (into the next epoch after the last patch, if there is one)."""
        index, epoch = self.index_spin.value(), self.epoch_spin.value()
        if index < self.index_spin.maximum():
            self.index_spin.setValue(index + 1)
        elif epoch < self.epoch_spin.maximum():
            self.show_draw(epoch + 1, 0)
        else:
            self.show_draw(0, 0)

    def show_draw(self, epoch: int, index: int) -> None:
        """Preview the draw of ``(epoch, index)`` (clamped to the configured run)."""
        for spin, value in ((self.epoch_spin, epoch), (self.index_spin, index)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self.schedule_refresh()

    # -- rendering ---------------------------------------------------------------------------
    def current_draw(self) -> Draw | None:
        return self._draws[0] if self._draws else None

    def current_patch(self) -> Augmented | None:
        """The augmented image shown (the training patch, or the whole image before the crop)."""
        draw = self.current_draw()
        if draw is None:
            return None
        return draw.whole if self.whole_box.isChecked() else draw.patch

    def current_sample(self):
        """The sample the shown patch comes from."""
        draw = self.current_draw()
        return None if draw is None else draw.sample

    def _render_options(self) -> tuple[bool, bool]:
        return self.whole_box.isChecked(), self.padding_box.isChecked()

    def _render(self, *_args) -> None:
        """Show the current draws with the current options: at once when small, else in the background."""
        draws = self._draws
        if self._closed or not draws:
            return
        whole, padding = self._render_options()
        images = self._images
        if images is not None and images.draws is draws and (images.whole, images.padding) == (whole, padding):
            self._update_masks()
            return
        sources = self.sources.snapshot()
        if render_pixels(draws, whole, sources) <= SYNC_RENDER_PIXELS:
            self.render_runner.cancel()
            self._show_images(render_preview(draws, whole, padding, sources))
            return
        self.render_runner.start(lambda ctx: render_preview(draws, whole, padding, sources, ctx.check),
                                 on_done=self._on_rendered)

    def _on_rendered(self, images: PreviewImages) -> None:
        if images.draws is self._draws and (images.whole, images.padding) == self._render_options():
            self._show_images(images)

    def _show_images(self, images: PreviewImages) -> None:
        """Put prepared arrays on screen (cheap: no image conversion here)."""
        self._images = images
        self.sources.put(images.source)
        draw = images.draws[0]
        shown = shown_result(draw, images.whole)
        self.original_canvas.set_image(images.source.rgb)
        self.augmented_canvas.set_image(images.shown_rgb)
        self.augmented_canvas.set_layer("padding", images.padding_layer, z=11)
        self._update_masks()
        self._link_canvases(draw.sample.image.shape[:2] == shown.image.shape[:2])
        h, w = shown.image.shape[:2]
        self.original_canvas.set_title(f"Original: {draw.sample.name}")
        self.augmented_canvas.set_title(f"{'Augmented, before crop' if images.whole else 'Training patch'} {w}×{h}")
        self.applied_label.setText(self._describe(draw))
        for tile, draw, (rgb, thumb) in zip(self.grid_canvases, images.draws, images.tiles):
            tile.set_draw(rgb, (draw.epoch, draw.index), f"{draw.sample.name}\n{self._describe(draw, rich=False)}",
                          thumb)
        for tile in self.grid_canvases[len(images.draws):]:
            tile.set_draw(None, None)

    def _update_masks(self, *_args) -> None:
        """Redraw both mask layers for the chosen mode and opacity (a table look-up per pixel)."""
        images = self._images
        if images is None:
            return
        mode, opacity = self.mask_mode_combo.currentText(), self.opacity_slider.value() / 100
        for canvas, mask in ((self.original_canvas, images.source.mask), (self.augmented_canvas, images.shown_mask)):
            key = None if mask is None or mode == "off" else (mask, mode, opacity)  # holds it: no id reuse
            if key is not None and self._mask_keys.get(canvas.objectName()) == key:
                continue  # the same source sample again: its layer is already right
            self._mask_keys[canvas.objectName()] = key
            canvas.set_layer("mask", None if key is None else mask.overlay(opacity, mode, out=canvas.buffer("mask")),
                             z=10)

    def _update_busy(self, *_args) -> None:
        self.busy_label.setVisible(self.runner.busy or self.render_runner.busy)

    def _link_canvases(self, link: bool) -> None:
        if link:
            self.augmented_canvas.link(self.original_canvas)
        else:
            self.augmented_canvas.view.setXLink(None)
            self.augmented_canvas.view.setYLink(None)

    def _describe(self, draw: Draw, rich: bool = True) -> str:
        """Which transforms this draw applied, skipped (by chance) or had switched off."""
        groups = {status: [name for name, s in draw.steps if s == status] for status in ("applied", "skipped", "off")}
        size = self.state.config.data.patch_size
        parts = [f"applied: {', '.join(groups['applied']) or 'none'}"]
        if groups["skipped"]:
            parts.append(f"skipped by chance: {', '.join(groups['skipped'])}")
        if groups["off"]:
            parts.append(f"disabled: {', '.join(groups['off'])}")
        parts.append(f"then random crop {size}×{size}")
        text = " · ".join(parts)
        if rich:
            name = html.escape(draw.sample.name)
            return f"<b>{name}</b> (epoch {draw.epoch}, patch {draw.index}) · {html.escape(text)}"
        return text

    # -- lifetime ----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop pending refreshes and wait for running preview jobs; no slot starts background
        work afterwards (safe to call twice)."""
        self._closed = True
        self._timer.stop()
        self.runner.shutdown()
        self.render_runner.shutdown()
