"""A review folder on disk: ``review.json``, the corrected masks and the lock.

Every change is written at once and atomically (temporary file, then rename), corrections
before the record that points at them, so a crash at any moment leaves the last complete
state. Source images and masks are only ever read.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..imageio import ImageReadError, write_binary_png
from ..pairing import Problem
from ..postprocess import WatershedParams
from .case_data import CORRECTIONS_DIR, CaseData, load_case, mask_stats
from .lock import ReviewLock
from .record import (CASE_STATES, COMMENT_ENTRY, MASK_VARIANTS, Decision, ReviewCase, ReviewError, ReviewRecord,
                     now_iso)
from .sources import cases_from_checkpoint, cases_from_folders, check_review_folder, read_manifest

RECORD_NAME = "review.json"


class ReviewLockedError(ReviewError):
    """The review is open for editing elsewhere; ``owner`` says where."""

    def __init__(self, folder: Path, owner: str):
        self.folder, self.owner = Path(folder), owner
        super().__init__(f"the review {folder} is already open in {owner}. Open it read-only, or close it there "
                         "first.")


class ReviewStore:
    """An open review. Opened for editing it holds the folder's lock until :meth:`close`."""

    def __init__(self, folder: Path, record: ReviewRecord, lock: ReviewLock | None):
        self.folder = Path(folder)
        self.record = record
        self._lock = lock

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path, *, read_only: bool = False) -> "ReviewStore":
        """Open a review folder; raises :class:`ReviewLockedError` when another window holds it
        (unless ``read_only``)."""
        folder = Path(folder)
        path = folder / RECORD_NAME
        if not path.is_file():
            raise ReviewError(f"{folder} is not a review folder (no {RECORD_NAME})")
        lock = None
        if not read_only:
            lock = ReviewLock(folder)
            if not lock.acquire():
                raise ReviewLockedError(folder, lock.owner())
        try:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ReviewError(f"cannot read {path} ({exc})") from None
            store = cls(folder, ReviewRecord.from_json(text, path), lock)
            if lock is not None:
                store._tidy()
            return store
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @classmethod
    def _create(cls, review_dir: Path, sources: list[Path], build: Callable[[Path, list[Problem]], tuple],
                watershed: dict | None) -> "ReviewStore":
        review_dir = Path(review_dir)
        WatershedParams.from_dict(watershed or {})  # a bad setting is refused before any case is built
        check_review_folder(review_dir, sources)
        existed = review_dir.exists()
        review_dir.mkdir(parents=True, exist_ok=True)
        lock = ReviewLock(review_dir)
        if not lock.acquire():
            raise ReviewLockedError(review_dir, lock.owner())
        try:
            problems: list[Problem] = []
            cases, source, run_watershed = build(review_dir, problems)
            params = WatershedParams.from_dict({**run_watershed, **(watershed or {})}).to_dict()
            record = ReviewRecord(cases, source=source, watershed=params, position=cases[0].name,
                                  problems=[{"path": str(p.path), "reason": p.reason} for p in problems])
            store = cls(review_dir, record, lock)
            store.save()
            return store
        except BaseException:
            lock.release()
            _remove_new(review_dir, existed)
            raise

    @classmethod
    def create_from_folders(cls, review_dir: str | Path, images_dir: str | Path, masks_dir: str | Path, *,
                            watershed: dict | None = None, progress=None, should_stop=None) -> "ReviewStore":
        """A new review of existing predicted masks, paired with their images by file stem; the
        clean-up settings are those of the run that predicted them (its predictions.json), else
        the defaults, with ``watershed``'s entries in place of theirs."""
        images_dir, masks_dir = Path(images_dir).resolve(), Path(masks_dir).resolve()

        def build(_folder: Path, problems: list[Problem]):
            cases = cases_from_folders(images_dir, masks_dir, problems, progress, should_stop or (lambda: False))
            manifest = read_manifest(masks_dir)
            run_watershed = manifest.pop("postprocess", {})  # the clean-up the run was set up with
            source = {"kind": "folders", "images": str(images_dir), "masks": str(masks_dir), **manifest}
            return cases, source, run_watershed

        return cls._create(Path(review_dir), [images_dir, masks_dir], build, watershed)

    @classmethod
    def create_from_checkpoint(cls, review_dir: str | Path, checkpoint: str | Path, images_dir: str | Path, *,
                               device: str = "auto", watershed: dict | None = None, progress=None,
                               should_stop=None) -> "ReviewStore":
        """A new review of what ``checkpoint`` predicts for the images of ``images_dir``; the
        clean-up settings are the run's own, with ``watershed``'s entries in place of theirs."""
        images_dir = Path(images_dir).resolve()

        def build(folder: Path, problems: list[Problem]):
            cases, info = cases_from_checkpoint(Path(checkpoint), images_dir, folder, problems, device, progress,
                                                should_stop or (lambda: False))
            run_watershed = info.pop("postprocess", {})
            return cases, {"kind": "checkpoint", "images": str(images_dir), **info}, run_watershed

        return cls._create(Path(review_dir), [images_dir], build, watershed)

    # -- state -------------------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        return self._lock is None

    @property
    def cases(self) -> list[ReviewCase]:
        return self.record.cases

    def case(self, name: str) -> ReviewCase:
        return self.record.case(name)

    @property
    def watershed_params(self) -> WatershedParams:
        try:
            return WatershedParams.from_dict(self.record.watershed)
        except (ValueError, TypeError):
            return WatershedParams()

    def file_stem(self, name: str) -> str:
        """The stem of a case's files (corrections, exports): unique and safe, see :func:`unique_file_stems`."""
        stems = getattr(self, "_stems", None)
        if stems is None or name not in stems:
            stems = self._stems = unique_file_stems([c.name for c in self.record.cases])
        return stems[name]

    def load_case(self, name: str) -> CaseData:
        return load_case(self.folder, self.case(name))

    def export_mask(self, case: ReviewCase, data: CaseData | None = None) -> np.ndarray:
        """The mask a case exports: its correction, else the variant it was accepted on (0/1)."""
        data = data or load_case(self.folder, case)
        if data.corrected is not None:
            return data.corrected
        return data.variant_mask(case.variant, self.watershed_params)

    # -- changes (each saved at once) ---------------------------------------------------------
    def _writable(self) -> None:
        if self.read_only:
            raise ReviewError(f"the review {self.folder} is open read-only; nothing can be changed")

    def decide(self, name: str, state: str, reviewer: str, *, reason: str = "", comment: str | None = None,
               variant: str = "prediction", stats: tuple[int, int] | None = None) -> ReviewCase:
        """Set a case's state (accepted, rejected, needs_edit or unreviewed) and record who did it."""
        self._writable()
        if state not in CASE_STATES or state == "corrected":
            raise ReviewError(f"cannot set state {state!r}; valid: accepted, rejected, needs_edit, unreviewed")
        if variant not in MASK_VARIANTS:
            raise ReviewError(f"unknown mask {variant!r}; valid: {', '.join(MASK_VARIANTS)}")
        if not reviewer.strip():
            raise ReviewError("a decision needs the reviewer's name")
        if not reviewer.isprintable():
            raise ReviewError(f"the reviewer's name {reviewer!r} must be one line of printable text")
        case = self.case(name)
        case.state, case.reason = state, reason if state == "rejected" else ""  # no reason given: none recorded
        if comment is not None:
            case.comment = comment
        case.variant = variant
        if stats is not None:
            case.area, case.objects = (int(v) for v in stats)
        self._stamp(case, reviewer)
        self.save()
        return case

    def set_comment(self, name: str, comment: str, reviewer: str) -> ReviewCase:
        """Change a case's comment; who decided and when stay as they were, and the history
        notes who commented (one entry per reviewer and state while they keep editing it)."""
        self._writable()
        case = self.case(name)
        if case.comment != comment:
            case.comment = comment
            last = case.history[-1] if case.history else None
            if (last is not None and last.reviewer == reviewer and last.state == case.state
                    and last.reason == COMMENT_ENTRY):
                last.comment, last.time = comment, now_iso()
            else:
                case.history.append(Decision(case.state, reviewer, now_iso(), COMMENT_ENTRY, comment))
            self.save()
        return case

    def save_correction(self, name: str, mask: np.ndarray, reviewer: str,
                        stats: tuple[int, int] | None = None) -> ReviewCase:
        """Store a corrected mask (0/1 or boolean, the image's size; a 1-bit PNG); the case
        becomes corrected. ``stats``: the mask's ``mask_stats`` when the caller has them."""
        self._writable()
        case = self.case(name)
        binary = np.asarray(mask)
        if binary.dtype not in (np.uint8, np.bool_):
            binary = (binary > 0).view(np.uint8)
        rel = f"{CORRECTIONS_DIR}/{self.file_stem(name)}.png"
        (self.folder / CORRECTIONS_DIR).mkdir(exist_ok=True)
        write_binary_png(self.folder / rel, binary)  # the mask first, then the record pointing at it
        if case.state != "corrected":
            case.state_before_correction = case.state
        case.corrected, case.state, case.reason = rel, "corrected", ""
        case.area, case.objects = stats if stats is not None else mask_stats(binary)
        self._stamp(case, reviewer)
        self.save()
        return case

    def revert_correction(self, name: str, reviewer: str) -> ReviewCase:
        """Drop a case's correction; it returns to the state it had before."""
        self._writable()
        case = self.case(name)
        if not case.corrected:
            return case
        path = (self.folder / case.corrected).resolve()
        if path.parent == (self.folder / CORRECTIONS_DIR).resolve():  # never a file outside the review
            path.unlink(missing_ok=True)  # first: a crash now is finished on open
        self._forget_correction(case)
        try:
            case.area, case.objects = mask_stats(self.export_mask(case))  # what it exports (again)
        except ImageReadError:
            pass
        self._stamp(case, reviewer)
        self.save()
        return case

    @staticmethod
    def _forget_correction(case: ReviewCase) -> None:
        case.corrected = ""
        if case.state == "corrected":
            case.state = case.state_before_correction
            if case.state == "rejected":  # and the reason it was rejected for (not a comment's entry)
                case.reason = next((d.reason for d in reversed(case.history)
                                    if d.state == "rejected" and d.reason != COMMENT_ENTRY), "")

    def set_position(self, name: str) -> None:
        if not self.read_only and name != self.record.position:
            self.record.position = name
            self.save()

    def set_reasons(self, reasons: list[str]) -> None:
        self._writable()
        cleaned = list(dict.fromkeys(r.strip() for r in reasons if r.strip()))
        if not cleaned:
            raise ReviewError("keep at least one rejection reason")
        bad = [r for r in cleaned if not r.isprintable()]
        if bad:
            raise ReviewError(f"a rejection reason must be one line of printable text, not {bad[0]!r}")
        before, self.record.reasons = self.record.reasons, cleaned
        try:
            self.save()
        except BaseException:
            self.record.reasons = before  # memory keeps matching the file
            raise

    def watershed_exports(self) -> list[str]:
        """The cases whose export is (or, once their correction is dropped, is again) their
        watershed clean-up: accepted on it, or accepted on it and corrected since."""
        return [c.name for c in self.record.cases if c.variant == "watershed" and (
            (c.state == "accepted" and not c.corrected)
            or (c.state == "corrected" and c.state_before_correction == "accepted"))]

    def set_watershed(self, params: WatershedParams) -> None:
        """Change the clean-up settings; refused while an accepted case exports the clean-up made
        with the current ones (what a reviewer approved never changes behind their back)."""
        self._writable()
        if params.to_dict() == self.watershed_params.to_dict():
            return
        bound = self.watershed_exports()
        if bound:
            names = ", ".join(bound[:5]) + (" ..." if len(bound) > 5 else "")
            them = "them" if len(bound) > 1 else "it"
            raise ReviewError(f"{len(bound)} accepted case{'s export' if len(bound) > 1 else ' exports'} the "
                              f"watershed mask made with the current settings ({names}); accept {them} on the "
                              f"prediction or set {them} back to undecided (unreviewed) before changing the clean-up")
        before, self.record.watershed = self.record.watershed, params.to_dict()
        try:
            self.save()
        except BaseException:
            self.record.watershed = before
            raise

    def _stamp(self, case: ReviewCase, reviewer: str) -> None:
        case.reviewer, case.decided_at = reviewer, now_iso()
        case.history.append(Decision(case.state, reviewer, case.decided_at, case.reason, case.comment))

    def save(self) -> None:
        self._writable()
        try:
            atomic_write_text(self.folder / RECORD_NAME, self.record.to_json())
        except BaseException:
            self._reload()  # a change that did not reach the disk is not kept in memory either
            raise

    def _reload(self) -> None:
        try:
            path = self.folder / RECORD_NAME
            self.record = ReviewRecord.from_json(path.read_text(encoding="utf-8"), path)
        except (OSError, UnicodeDecodeError, ReviewError):
            pass  # nothing readable on disk: keep what is in memory

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- upkeep ------------------------------------------------------------------------------
    def _tidy(self) -> None:
        """Remove temporary files of interrupted saves and adopt a correction whose record
        update was interrupted."""
        for folder in (self.folder, self.folder / CORRECTIONS_DIR):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
        changed = False
        for case in self.record.cases:
            rel = f"{CORRECTIONS_DIR}/{self.file_stem(case.name)}.png"
            if not case.corrected and (self.folder / rel).is_file():
                try:  # a correction whose record update was interrupted: keep it
                    data = load_case(self.folder, dataclasses.replace(case, corrected=rel))
                except ImageReadError:
                    continue
                case.state_before_correction, case.corrected, case.state = case.state, rel, "corrected"
                case.area, case.objects = mask_stats(data.corrected)
                case.history.append(Decision("corrected", case.reviewer or "recovered", now_iso(), "",
                                             "correction recovered after an interrupted save"))
                changed = True
            elif case.corrected and not (self.folder / case.corrected).is_file():
                self._forget_correction(case)  # a revert interrupted after the file was removed
                changed = True
        if changed:
            self.save()


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".") or "_"


def unique_file_stems(names: list[str]) -> dict[str, str]:
    """A file-name stem per case name, safe on every file system and unique even where names
    differ only in characters that are replaced or in case: ``a b`` and ``a_b`` (or ``A`` and
    ``a``) get a short hash of the name appended; plain unique names stay as they are."""
    import hashlib

    safe = {name: _safe_name(name) for name in names}
    counts: dict[str, int] = {}
    for stem in safe.values():
        counts[stem.lower()] = counts.get(stem.lower(), 0) + 1
    out = {}
    for name, stem in safe.items():
        if stem != name or counts[stem.lower()] > 1:
            stem = f"{stem}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"
        out[name] = stem
    return out


def _remove_new(review_dir: Path, existed: bool) -> None:
    """Undo a failed creation: the folder was new or empty, so everything in it is ours."""
    if existed:
        for child in review_dir.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink(missing_ok=True)
    else:
        shutil.rmtree(review_dir, ignore_errors=True)
