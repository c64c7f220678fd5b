"""What the Predictions panel's views show: hands the precomputed display image, overlays,
truth outline, scores and step thumbnails of the current image to the Before/After views, the
table and the step strip, or a clean-up step large in the After view, and sets the overlays'
opacity without touching an array. :class:`PredictionDisplayMixin` does this for
:class:`~app.ui.predictions_panel.PredictionsPanel`; arrays are drawn in background jobs.
"""

from __future__ import annotations

import numpy as np

from .image_view import ImageCanvas
from .prediction_cache import CacheEntry

OUTLINE_MIN_OPACITY = 0.9  # object outlines stay visible at low fill opacity
LAYER_Z = {"prediction": 20, "outline": 25, "truth": 30}


def direct_paint(item) -> None:
    """Let a pyqtgraph item paint its uint8 RGB(A) data as it is: with levels (0, 255),
    as ImageCanvas sets them, every repaint of a 2048² image rescales it (~30–80 ms)."""
    item.setLevels(None)


class PredictionDisplayMixin:
    """Drawing of :class:`~app.ui.predictions_panel.PredictionsPanel`'s current entry."""

    def _display_entry(self) -> None:
        """Overlays, scores and step thumbnails of the current entry (all precomputed)."""
        names = self._step_names()
        if self._shown_step is not None and self._shown_step not in names:
            self._shown_step = None
        self._render()
        self._show_metrics()
        self._show_steps(self._current_entry().thumbs)

    def _step_names(self) -> list[str]:
        entry = self._current_entry()
        return [name for name, _ in entry.thumbs] if entry is not None and entry.result is not None else []

    def _overlay_options(self) -> tuple[bool, bool]:
        source = self._source(self._current_key)
        has_truth = source is not None and source[2] is not None
        return self.errors_check.isChecked() and has_truth, self.objects_check.isChecked()

    def _layers_current(self, entry: CacheEntry) -> bool:
        return entry.layers is not None and entry.layers.options == self._overlay_options()

    def _render(self, *_args) -> None:
        """Hand the current overlays to the views (cheap: arrays are built in background jobs)."""
        if self._closed:
            return
        source, view, entry = self._source(self._current_key), self._current_view(), self._current_entry()
        has_truth = source is not None and source[2] is not None
        self._update_legend(has_truth, self._overlay_options()[0])
        truth = view.truth_layer if view is not None and self.truth_check.isChecked() else None
        ready = view is not None and entry is not None and entry.result is not None
        layers = entry.layers if ready and self._layers_current(entry) else None
        if ready and layers is None:
            self._make_overlays(entry)
        self._put(self.before_canvas, "truth", truth)
        self._put(self.before_canvas, "prediction", layers.before if layers else None)
        if self._shown_step is not None and ready:
            self._render_step(entry)
        else:
            if self._after_shows_step:
                self._after_shows_step = False
                self.after_canvas.set_title("After watershed")
                self._set_image(self.after_canvas, view.display if view is not None else None)
            self._put(self.after_canvas, "truth", truth)
            self._put(self.after_canvas, "prediction", layers.after if layers else None)
            self._put(self.after_canvas, "outline", layers.outline if layers else None)
        self._apply_opacity()

    @staticmethod
    def _put(canvas: ImageCanvas, name: str, rgba: np.ndarray | None) -> None:
        """Set a layer unless it already shows that very array."""
        if canvas.layer(name) is not rgba:
            canvas.set_layer(name, rgba, z=LAYER_Z[name])
            if rgba is not None:
                direct_paint(canvas._layers[name])

    @staticmethod
    def _set_image(canvas: ImageCanvas, rgb: np.ndarray | None) -> None:
        """Show an RGB uint8 image unless the view already shows that very array."""
        if rgb is None or canvas.image() is not rgb:
            canvas.set_image(rgb)
            if rgb is not None:
                direct_paint(canvas.image_item)

    def _apply_opacity(self, *_args) -> None:
        """The slider's opacity on the prediction overlays' items (no array is rebuilt)."""
        opacity = self.opacity_slider.value() / 100.0
        for canvas in (self.before_canvas, self.after_canvas):
            items = canvas._layers  # the canvas's pyqtgraph items (no public accessor)
            if "prediction" in items:
                items["prediction"].setOpacity(opacity)
            if "outline" in items:
                items["outline"].setOpacity(max(opacity, OUTLINE_MIN_OPACITY))

    def _render_step(self, entry: CacheEntry) -> None:
        """The shown step large in the After view, once drawn (in the background)."""
        self._after_shows_step = True
        self.after_canvas.set_title(f"After watershed · step: {self._shown_step}")
        for name in ("prediction", "outline", "truth"):
            self._put(self.after_canvas, name, None)
        shown = self._step_image
        if shown is not None and shown[0] is entry.result and shown[1] == self._shown_step:
            self._set_image(self.after_canvas, shown[2])
        else:
            self._make_step_image(entry, self._shown_step)

    def _on_step_image(self, entry: CacheEntry, result, name: str | None, out) -> None:
        self._pending["step"] = None
        steps, rgb = out
        if entry is not self._current_entry() or entry.result is not result:
            return
        result.steps, self._steps_entry = steps, entry
        if name is not None:
            self._step_image = (result, name, rgb)
            if name == self._shown_step:
                self._render()

    def _show_steps(self, thumbs: list[tuple[str, np.ndarray]]) -> None:
        """One clickable thumbnail per clean-up step (from its small RGB), its name underneath."""
        self.steps_area.set_steps(thumbs, self._shown_step)

    def _on_step_clicked(self, name: str) -> None:
        self.show_step(None if name == self._shown_step else name)

    def _clear_results(self) -> None:
        """No prediction for the image shown: only the image and its truth."""
        self._show_steps([])
        self._show_metrics()
        self._render()
