"""The open review and the case on screen, as a Qt model the review widgets subscribe to.

It wraps a :class:`~app.core.review.ReviewStore` (every change saved at once by the store),
loads each case's pixels and watershed clean-up in a background task (the next case is
prefetched, recent ones cached), and keeps the mask being corrected with its undo history.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.core.postprocess import PostprocessResult, WatershedParams
from app.core.review import ReviewError, ReviewStore
from app.core.review.case_data import CaseData, load_case, mask_stats
from app.core.review.edit import EditHistory, paint_stroke

from .render import to_display
from .sample_view import MaskLayer
from .tasks import TaskRunner

CACHE_CASES = 6  # recently shown cases kept ready (the next one is prefetched) ...
CACHE_BYTES = 768 << 20  # ... within this much memory (a 4096² case holds about 250 MB)
HISTORY_BYTES = 256 << 20  # undo snapshots kept per case (at least 4)
VIEWS = ("prediction", "watershed", "correction")
VIEW_LABELS = {"prediction": "Prediction", "watershed": "After watershed", "correction": "Correction"}


@dataclasses.dataclass(eq=False)
class PreparedCase:
    """A case ready to show: its files, clean-up, display image, and each fixed mask's overlay
    code and (area, objects), all made in the loading worker, not on the GUI thread."""

    data: CaseData
    cleaned: PostprocessResult
    display: np.ndarray  # the image as shown: uint8 H×W×3
    layers: dict[str, MaskLayer]  # prediction, watershed and (if any) the saved correction
    stats: dict[str, tuple[int, int]]  # prediction and (if any) the saved correction

    @property
    def nbytes(self) -> int:
        arrays = [self.data.image, self.data.prediction, self.data.source_gray, self.data.corrected,
                  self.cleaned.mask, self.cleaned.labels, self.display, *(layer.code for layer in self.layers.values())]
        return sum(a.nbytes for a in arrays if a is not None)


def load_case_job(folder, case, params: WatershedParams):
    """Read a case, run its clean-up and prepare what the screen shows (in a worker thread: for
    a 4096² case, contrast-stretching and overlay codes take a good part of a second)."""
    def job(ctx):
        data = load_case(folder, case)
        ctx.check()
        cleaned = data.watershed(params)
        ctx.check()
        masks = {"prediction": data.prediction, "watershed": cleaned.labels, "correction": data.corrected}
        layers = {view: MaskLayer(mask) for view, mask in masks.items() if mask is not None}
        ctx.check()
        stats = {view: mask_stats(masks[view]) for view in ("prediction", "correction") if masks[view] is not None}
        return PreparedCase(data, cleaned, to_display(data.image), layers, stats)
    return job


class ReviewSession(QObject):
    """What is open and what is on screen; widgets listen to the signals."""

    opened = Signal()  # a review was opened or closed (``store`` is None then)
    currentChanged = Signal(str)  # another case is on screen (its pixels may still be loading)
    caseLoaded = Signal(str)  # the current case's pixels and clean-up are ready
    caseUpdated = Signal(str)  # a case's record changed: state, comment, correction
    maskChanged = Signal()  # the mask on screen changed: edit, undo, view
    failed = Signal(str)
    loadingChanged = Signal(bool)
    cleanupChanged = Signal()  # the review's clean-up settings changed; the case on screen is being redone

    def __init__(self, parent=None):
        super().__init__(parent)
        self.store: ReviewStore | None = None
        self.reviewer = ""
        self.current: str | None = None
        self.data: CaseData | None = None
        self.cleaned: PostprocessResult | None = None
        self.display_image: np.ndarray | None = None  # the image as shown: uint8 H×W×3
        self.working: np.ndarray | None = None  # the correction being made (uint8 0/1)
        self.view = "prediction"  # prediction, watershed or correction
        self.preferred_view = "prediction"  # what uncorrected cases open with
        self.history = EditHistory()
        self._had_correction = False
        self._unsaved: str | None = None  # the case whose correction on screen failed to save
        self._generation = 0  # bumped for every review opened: results of an older one are dropped
        self._cache: OrderedDict[str, PreparedCase] = OrderedDict()
        self._edits: dict[str, int] = {}  # saves per case: a copy read before the last save is stale
        self._revision = 0  # bumped whenever a mask may have changed: keys the memos below
        self._memo_revision = -1
        self._stats_memo: dict[int, tuple[np.ndarray, tuple[int, int]]] = {}  # id(mask) -> (mask, counts)
        self._layer_memo: dict[int, tuple[np.ndarray, MaskLayer]] = {}  # id(mask) -> (mask, overlay code)
        self._loader = TaskRunner("review-case", self)
        self._prefetcher = TaskRunner("review-prefetch", self)
        self._loader.busyChanged.connect(self.loadingChanged)

    # -- the review --------------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        return self.store is None or self.store.read_only

    def set_store(self, store: ReviewStore | None) -> None:
        """Show ``store`` (closing the review open before) at its saved position."""
        self.close()
        self.store = store
        self.opened.emit()
        if store is not None and store.cases:
            names = self.names()
            self.go_to(store.record.position if store.record.position in names else names[0])

    def close(self) -> None:
        self._generation += 1
        self._loader.cancel()
        self._prefetcher.cancel()
        if self.store is not None:
            self.store.close()
        self.store, self.current, self.data, self.cleaned, self.working = None, None, None, None, None
        self.display_image = None
        self._cache.clear()
        self._edits.clear()
        self._revision += 1
        self._stats_memo, self._layer_memo = {}, {}  # let go of the closed review's masks
        self.history.clear()

    def shutdown(self) -> None:
        self.close()
        self._loader.shutdown()
        self._prefetcher.shutdown()

    @property
    def params(self) -> WatershedParams:
        return self.store.watershed_params if self.store else WatershedParams()

    def set_params(self, params: WatershedParams) -> bool:
        """Change the review's clean-up settings and redo the clean-up of the case on screen in
        the loading worker (from the stored prediction: the network never runs again). False
        (and ``failed``) when the review refuses the change or cannot save it."""
        if self.store is None or self.read_only:
            return False
        try:
            self.store.set_watershed(params)
        except (OSError, ReviewError) as exc:
            self.failed.emit(f"The clean-up settings were not changed: {exc}")
            return False
        self._generation += 1  # loads under way use the old settings: their results are dropped
        self._prefetcher.cancel()
        self._cache.clear()
        self.cleanupChanged.emit()
        name, data, generation = self.current, self.data, self._generation
        if name is None:
            return True
        if data is None:  # still loading: load it again with the new settings
            self._loader.start(self._load_job(name), on_done=self._on_loaded(name),
                               on_failed=lambda message, n=name: self._load_failed(n, message))
            return True

        def job(ctx):
            cleaned = data.watershed(params)
            ctx.check()
            return cleaned, MaskLayer(cleaned.labels)
        self.cleaned = None  # until it is redone, no watershed mask is shown, decided on or edited
        self.maskChanged.emit()
        self._loader.start(job, on_done=lambda result: self._recleaned(name, generation, *result),
                           on_failed=lambda message: self._reclean_failed(name, generation, message))
        return True

    def _recleaned(self, name: str, generation: int, cleaned: PostprocessResult, layer: MaskLayer) -> None:
        if generation != self._generation or name != self.current or self.data is None:
            return  # another review, case or setting since
        self.cleaned = cleaned
        self._memos()[1][id(cleaned.labels)] = (cleaned.labels, layer)  # the overlay made in the worker
        self.maskChanged.emit()
        self._prefetch_next()

    def _reclean_failed(self, name: str, generation: int, message: str) -> None:
        if generation == self._generation and name == self.current:
            self.set_view("prediction")
            self.failed.emit(f"Cannot redo the clean-up of {name}: {message}")

    def names(self) -> list[str]:
        return [c.name for c in self.store.cases] if self.store else []

    # -- navigation --------------------------------------------------------------------------
    def go_to(self, name: str) -> None:
        if self.store is None or name == self.current and self.data is not None:
            return
        self.store.record.case(name)  # unknown names fail here
        self.current, self.data, self.cleaned, self.working, self.display_image = name, None, None, None, None
        self._had_correction, self._unsaved = False, None
        self.history.clear()
        if not self.read_only:
            try:
                self.store.set_position(name)
            except (OSError, ReviewError) as exc:
                self.failed.emit(f"Could not save the position in the queue: {exc}")
        self.currentChanged.emit(name)
        if name in self._cache:
            self._cache.move_to_end(name)
            self._show_loaded(name, self._cache[name])
        else:
            self._loader.start(self._load_job(name), on_done=self._on_loaded(name),
                               on_failed=lambda message, n=name: self._load_failed(n, message))

    def step(self, offset: int, names: list[str] | None = None) -> bool:
        """Move ``offset`` cases along ``names`` (the filtered queue; default all); False at an end."""
        names = names if names is not None else self.names()
        if not names:
            return False
        index = names.index(self.current) if self.current in names else -1
        target = index + offset
        if index == -1:
            target = 0 if offset > 0 else len(names) - 1
        if not 0 <= target < len(names):
            return False
        self.go_to(names[target])
        return True

    def _load_job(self, name: str):
        return load_case_job(self.store.folder, dataclasses.replace(self.store.case(name)), self.params)

    def _on_loaded(self, name: str):
        """The callback for a load of ``name`` starting now; it knows which review and which
        saved state of the case the copy it gets was read from."""
        generation, edits = self._generation, self._edits.get(name, 0)
        return lambda result: self._loaded(name, result, generation, edits)

    def _loaded(self, name: str, result, generation: int, edits: int = 0) -> None:
        if generation != self._generation:
            return  # from a review that is no longer open
        if edits != self._edits.get(name, 0):
            return  # read before the case's correction was last saved (a prefetch that lost the race)
        self._cache[name] = result
        while len(self._cache) > CACHE_CASES or (
                len(self._cache) > 1 and sum(c.nbytes for c in self._cache.values()) > CACHE_BYTES):
            self._cache.popitem(last=False)
        if name == self.current and self.data is None:  # shown once: a second copy never replaces edits
            self._show_loaded(name, result)

    def _show_loaded(self, name: str, case: PreparedCase) -> None:
        self._revision += 1
        data = case.data
        self.data, self.cleaned, self.display_image = data, case.cleaned, case.display
        self._had_correction = data.corrected is not None
        self.working = data.corrected.copy() if data.corrected is not None else None
        self.view = "correction" if self.working is not None else self.preferred_view
        stats, layers = self._memos()  # what the worker prepared: nothing of it is redone here
        shown = {"prediction": data.prediction, "watershed": case.cleaned.labels, "correction": self.working}
        for view, mask in shown.items():
            if mask is not None and view in case.layers:
                layers[id(mask)] = (mask, case.layers[view])
            if mask is not None and view in case.stats:
                stats[id(mask)] = (mask, case.stats[view])
        self.caseLoaded.emit(name)
        self.maskChanged.emit()
        self._prefetch_next()

    def _load_failed(self, name: str, message: str) -> None:
        if name == self.current:
            self.failed.emit(f"Cannot show {name}: {message}")

    def _prefetch_next(self) -> None:
        names = self.names()
        if self.current not in names:
            return
        index = names.index(self.current)
        for name in names[index + 1:index + 2]:
            if name not in self._cache:
                self._prefetcher.start(self._load_job(name), on_done=self._on_loaded(name))

    # -- what is shown -----------------------------------------------------------------------
    def set_view(self, view: str) -> None:
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; valid: {', '.join(VIEWS)}")
        if view == "correction" and self.working is None:
            return
        if view != "correction":
            self.preferred_view = view
        if view != self.view:
            self.view = view
            self.maskChanged.emit()

    def mask(self) -> np.ndarray | None:
        """The mask on screen (uint8 0/1), or None while loading (or redoing the clean-up shown)."""
        if self.data is None:
            return None
        if self.view == "correction" and self.working is not None:
            return self.working
        if self.view == "watershed":
            return self.cleaned.mask if self.cleaned is not None else None
        return self.data.prediction

    def stats(self) -> tuple[int, int] | None:
        """(area, objects) of the mask on screen; the clean-up's objects are its watershed instances."""
        mask = self.mask()
        if mask is None:
            return None
        if self.view == "watershed" and self.cleaned is not None:
            return int(np.count_nonzero(mask)), self.cleaned.object_count
        return self._mask_stats(mask)

    def cleanup_kept(self, area: int | None = None) -> float | None:
        """On the watershed view: the share of the predicted area the clean-up keeps (the
        reference defaults can drop most cells of a good prediction); else None. ``area``: the
        view's area when the caller has it from :meth:`stats`."""
        if self.view != "watershed" or self.cleaned is None or self.data is None:
            return None
        if area is None:
            stats = self.stats()
            if stats is None:
                return None
            area = stats[0]
        predicted = self._mask_stats(self.data.prediction)[0]
        return area / predicted if predicted else None

    def _memos(self) -> tuple[dict, dict]:
        """The statistics and overlay memos, emptied whenever a mask may have changed. Entries
        hold their mask, so an id is never reused while its entry lives."""
        if self._memo_revision != self._revision:
            self._memo_revision, self._stats_memo, self._layer_memo = self._revision, {}, {}
        return self._stats_memo, self._layer_memo

    @staticmethod
    def _remembered(memo: dict, mask: np.ndarray, make):
        entry = memo.get(id(mask))
        if entry is None or entry[0] is not mask:
            entry = memo[id(mask)] = (mask, make(mask))
        return entry[1]

    def _mask_stats(self, mask: np.ndarray) -> tuple[int, int]:
        """``mask_stats``, computed once per mask and change (a 4096² mask takes ~40 ms)."""
        return self._remembered(self._memos()[0], mask, mask_stats)

    def mask_layer(self) -> MaskLayer | None:
        """The overlay code of what is on screen (the watershed view: its instances), prepared
        once per mask and change; None while loading."""
        mask = self.mask()
        if mask is None:
            return None
        if self.view == "watershed" and self.cleaned is not None:
            mask = self.cleaned.labels
        return self._remembered(self._memos()[1], mask, MaskLayer)

    # -- decisions ---------------------------------------------------------------------------
    def decide(self, state: str, reason: str = "", comment: str | None = None) -> bool:
        """Record a decision on the case on screen; False (and ``failed``) when it was not saved."""
        if self.store is None or self.current is None:
            return False
        if self.data is not None and self.mask() is None:
            self.failed.emit("The clean-up is being redone with the new settings; decide once it is on screen.")
            return False
        if self._unsaved == self.current and not self._save_working():  # what is approved must be on disk
            self.failed.emit("The correction on screen is still not saved, so the decision was not recorded "
                             "(the export would not contain it). Check that the review folder can be written, "
                             "then decide again.")
            return False
        variant = self.view if self.view in ("prediction", "watershed") else self.store.case(self.current).variant
        try:
            self.store.decide(self.current, state, self.reviewer, reason=reason, comment=comment, variant=variant,
                              stats=self.stats())
        except (OSError, ReviewError) as exc:
            self.failed.emit(f"The decision was not saved: {exc}")
            return False
        self.caseUpdated.emit(self.current)
        return True

    def set_comment(self, comment: str) -> None:
        if self.store is None or self.current is None or self.read_only:
            return
        try:
            self.store.set_comment(self.current, comment, self.reviewer)
        except (OSError, ReviewError) as exc:
            self.failed.emit(f"The comment was not saved: {exc}")
            return
        self.caseUpdated.emit(self.current)

    # -- corrections -------------------------------------------------------------------------
    def begin_edit(self) -> bool:
        """Snapshot the mask before an edit (starting a correction from what is on screen); False
        when nothing can be edited."""
        if self.read_only or self.mask() is None:
            return False
        if self.working is None:
            self.working = self.mask().copy()
        self._revision += 1
        self.history.limit = max(4, min(64, HISTORY_BYTES // max(1, self.working.nbytes)))
        if self.view != "correction":
            self.view = "correction"
        self.history.record(self.working)
        return True

    def stroke(self, points: list[tuple[float, float]], radius: int, value: int) -> tuple[int, int, int, int] | None:
        """Paint part of a stroke into the working mask (after :meth:`begin_edit`); not saved yet.
        Returns the changed box ``(x0, y0, x1, y1)`` (exclusive ends) so the view can redraw
        just that part while the stroke goes on."""
        if self.working is None:
            return None
        self._revision += 1
        paint_stroke(self.working, points, radius, value)
        h, w = self.working.shape
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, y0 = max(0, int(min(xs)) - radius - 1), max(0, int(min(ys)) - radius - 1)
        x1, y1 = min(w, int(max(xs)) + radius + 2), min(h, int(max(ys)) + radius + 2)
        return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None

    def end_edit(self, redraw: bool = True) -> None:
        """Save the working mask as the case's correction (the stroke or click is complete).
        ``redraw`` False: the view drew the stroke as it went, so only the counts change."""
        self._save_working(redraw=redraw)

    def edit(self, operation, *args) -> bool:
        """One-click edit (fill a hole, remove an object): ``operation(mask, *args) -> changed``;
        an edit that changes nothing leaves the history (and redo) alone."""
        if self.read_only or self.mask() is None:
            return False
        trial = (self.working if self.working is not None else self.mask()).copy()
        if not operation(trial, *args):
            return False
        self.begin_edit()
        self.working = trial
        self._save_working()
        return True

    def undo(self) -> None:
        if self.working is not None and self.history.can_undo:
            self.working = self.history.undo(self.working)
            self._save_working()

    def redo(self) -> None:
        if self.mask() is not None and self.history.can_redo and not self.read_only:
            self.working = self.history.redo(self.working if self.working is not None else self.mask().copy())
            self.view = "correction"
            self._save_working()

    def revert(self) -> None:
        """Drop the correction; the case shows the prediction again."""
        if self.store is None or self.current is None or self.read_only:
            return
        self.history.clear()
        self._had_correction = False
        self._save_working(revert=True)

    def _save_working(self, revert: bool = False, redraw: bool = True) -> bool:
        """Write the working mask (or drop the correction); False when that failed."""
        name = self.current
        if name is None or self.store is None or (self.working is None and not revert):
            return True
        back_to_start = not self._had_correction and not self.history.can_undo
        self._revision += 1
        try:
            if revert or back_to_start:  # every edit undone: no correction any more
                self.store.revert_correction(name, self.reviewer)
                self.working, self.view = None, self.preferred_view
            else:
                self.store.save_correction(name, self.working, self.reviewer, stats=self._mask_stats(self.working))
            self._unsaved = None
        except (OSError, ReviewError) as exc:
            self._unsaved = name
            self.failed.emit(f"The correction was not saved: {exc}")
        self._cache.pop(name, None)  # the cached copy no longer shows the case as it is
        self._edits[name] = self._edits.get(name, 0) + 1  # and copies being read now are stale too
        if self.data is not None:
            self.data.corrected = None if self.working is None else self.working.copy()
        self.caseUpdated.emit(name)
        if redraw or self.working is None:
            self.maskChanged.emit()
        return self._unsaved is None
