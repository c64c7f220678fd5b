"""The review record: every case's decision, comment, correction and history, as plain data.

It is stored as ``review.json`` in the review folder. Paths to files inside the review folder
are kept relative to it (the folder can be moved); source images and masks are absolute.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

FORMAT = "segstudio-review"
VERSION = 1
CASE_STATES = ("unreviewed", "accepted", "rejected", "needs_edit", "corrected")
REVIEWED_STATES = ("accepted", "rejected", "corrected")  # a decision was made ("needs edit" still waits)
EXPORTED_STATES = ("accepted", "corrected")
MASK_VARIANTS = ("prediction", "watershed")
DEFAULT_REASONS = ("Poor boundary", "Missed structure", "False positive", "Image quality too low", "Other")
_LABELS = {"unreviewed": "Unreviewed", "accepted": "Accepted", "rejected": "Rejected", "needs_edit": "Needs edit",
           "corrected": "Corrected"}


class ReviewError(Exception):
    """A review cannot be created, opened or changed; the message says why."""


def state_label(state: str) -> str:
    return _LABELS.get(state, state)


def now_iso() -> str:
    """The current time, UTC, to the second (ISO 8601)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


COMMENT_ENTRY = "comment"  # a history entry's reason when it records a comment, not a decision


@dataclass
class Decision:
    """One entry of a case's history: who set which state, when, and why."""

    state: str
    reviewer: str
    time: str
    reason: str = ""
    comment: str = ""


@dataclass
class ReviewCase:
    """One image and its predicted mask, and what the reviewer made of it."""

    name: str
    image: str
    mask: str
    probability: str = ""  # optional foreground probability map (8-bit), used by the watershed
    mask_digest: str = ""  # SHA-256 of a source mask file outside the review, checked on every read
    probability_digest: str = ""  # likewise for a probability map outside the review
    state: str = "unreviewed"
    reason: str = ""
    comment: str = ""
    reviewer: str = ""
    decided_at: str = ""
    variant: str = "prediction"  # which mask was on screen when accepted: prediction or watershed
    corrected: str = ""  # relative path of the corrected mask, when there is one
    state_before_correction: str = "unreviewed"
    area: int = 0  # of the mask that would be exported (or the prediction)
    objects: int = 0
    history: list[Decision] = field(default_factory=list)

    @property
    def reviewed(self) -> bool:
        return self.state in REVIEWED_STATES

    @property
    def exported(self) -> bool:
        return self.state in EXPORTED_STATES

    def to_dict(self) -> dict:
        data = dict(vars(self))  # flat fields; quicker than dataclasses.asdict's deep copy
        data["history"] = [dict(vars(entry)) for entry in self.history]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ReviewCase":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        _check_types(values, cls, "case")
        values["history"] = [Decision(**_check_types({k: v for k, v in entry.items()
                                                      if k in Decision.__dataclass_fields__}, Decision, "decision"))
                             for entry in _list_field(data, "history", dict, [])]
        case = cls(**values)
        if case.state not in CASE_STATES:
            raise ReviewError(f"case {case.name!r} has an unknown state {case.state!r}; "
                              f"valid: {', '.join(CASE_STATES)}")
        if case.variant not in MASK_VARIANTS:
            case.variant = "prediction"
        return case


@dataclass
class ReviewRecord:
    """A whole review: where its cases came from, the cases, and the reviewer's place in the queue."""

    cases: list[ReviewCase]
    source: dict = field(default_factory=dict)  # kind, images, masks, checkpoint, model
    watershed: dict = field(default_factory=dict)  # WatershedParams for the "after clean-up" view
    reasons: list[str] = field(default_factory=lambda: list(DEFAULT_REASONS))
    position: str = ""
    problems: list[dict] = field(default_factory=list)  # {"path", "reason"} of files left out
    created: str = field(default_factory=now_iso)
    _positions: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    def case(self, name: str) -> ReviewCase:
        i = self.index(name)
        if i < 0:
            raise ReviewError(f"the review has no case {name!r}")
        return self.cases[i]

    def index(self, name: str) -> int:
        """Position of case ``name`` (-1 if absent); constant time, so a queue of thousands of
        cases can look every case up without slowing down quadratically."""
        i = self._positions.get(name, -1) if self._positions is not None else -1
        if not (0 <= i < len(self.cases) and self.cases[i].name == name):  # stale after a change
            self._positions = {case.name: i for i, case in enumerate(self.cases)}
            i = self._positions.get(name, -1)
        return i

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(CASE_STATES, 0)
        for case in self.cases:
            counts[case.state] += 1
        return counts

    @property
    def reviewed_count(self) -> int:
        return sum(case.reviewed for case in self.cases)

    def to_json(self) -> str:
        """The record as JSON, one line per case (readable, diffable, and fast to write: the
        C encoder does the work, which an indented dump would not use)."""
        head = {"format": FORMAT, "version": VERSION, "created": self.created, "source": self.source,
                "watershed": self.watershed, "reasons": self.reasons, "position": self.position,
                "problems": self.problems}
        encode = json.JSONEncoder(ensure_ascii=False).encode
        lines = [f"  {json.dumps(key)}: {encode(value)}," for key, value in head.items()]
        cases = ",\n    ".join(encode(case.to_dict()) for case in self.cases)
        return "{\n" + "\n".join(lines) + f'\n  "cases": [\n    {cases}\n  ]\n}}\n'

    @classmethod
    def from_json(cls, text: str, path: Path | str = "review.json") -> "ReviewRecord":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ReviewError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ReviewError(f"{path} is not a SegStudio review")
        try:
            version = int(data.get("version", 0))
        except (TypeError, ValueError):
            raise ReviewError(f"{path} is damaged (version {data.get('version')!r})") from None
        if version > VERSION:
            raise ReviewError(f"{path} was written by a newer SegStudio (review format {data['version']})")
        try:
            cases = [ReviewCase.from_dict(entry) for entry in _list_field(data, "cases", dict, [])]
            seen: set[str] = set()
            for case in cases:  # decisions are kept by name: a second case of that name is unreachable
                if case.name in seen:
                    raise TypeError(f"two cases are named {case.name!r}")
                seen.add(case.name)
            problems = _list_field(data, "problems", dict, [])
            for problem in problems:  # {"path", "reason"} texts, as the panel lists them
                if not all(isinstance(problem.get(k), str) for k in ("path", "reason")):
                    raise TypeError(f"a left-out file needs a 'path' and a 'reason' text, not {problem!r}"[:200])
            watershed = _dict_field(data, "watershed")
            from ..postprocess import WatershedParams  # imported here: OpenCV is not needed to list cases

            try:
                WatershedParams.from_dict(watershed)  # a bad setting would silently give every default
            except (ValueError, TypeError) as exc:
                raise TypeError(f"clean-up settings: {exc}") from None
            return cls(cases=cases, source=_dict_field(data, "source", SOURCE_TEXTS), watershed=watershed,
                       reasons=_list_field(data, "reasons", str, list(DEFAULT_REASONS)),
                       position=str(data.get("position", "")), problems=problems,
                       created=str(data.get("created", "")))
        except ReviewError as exc:
            raise ReviewError(f"{path}: {exc}") from None
        except (TypeError, AttributeError, KeyError) as exc:
            raise ReviewError(f"{path} is damaged ({exc})") from None


SOURCE_TEXTS = ("kind", "images", "masks", "checkpoint", "model")
_FIELD_KINDS = {"str": (str, "a text"), "int": (int, "a whole number")}


def _check_types(values: dict, cls: type, what: str) -> dict:
    """``values`` with each text or number field of dataclass ``cls`` checked to be one (a
    hand-edited ``"name": 5`` or ``"mask": null`` would fail later, far from the cause)."""
    for f in fields(cls):
        kind = _FIELD_KINDS.get(f.type)
        if kind and f.name in values and (not isinstance(values[f.name], kind[0])
                                          or isinstance(values[f.name], bool)):
            raise TypeError(f"a {what}'s {f.name!r} must be {kind[1]}, not {values[f.name]!r}"[:200])
    return values


def _list_field(data: dict, key: str, kind: type, default: list) -> list:
    """``data[key]`` checked to be a list of ``kind`` (a hand-edited ``"reasons": "abc"`` would
    otherwise become the reasons a, b and c)."""
    value = data.get(key, default)
    if not isinstance(value, list) or not all(isinstance(item, kind) for item in value):
        raise TypeError(f"{key!r} must be a list of {'texts' if kind is str else 'objects'}")
    return list(value)


def _dict_field(data: dict, key: str, texts: tuple[str, ...] = ()) -> dict:
    """``data[key]`` checked to be a JSON object (empty when absent) whose keys ``texts`` are texts."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise TypeError(f"{key!r} must be an object")
    wrong = [k for k in texts if k in value and not isinstance(value[k], str)]
    if wrong:
        raise TypeError(f"{key!r}: {wrong[0]!r} must be a text")
    return dict(value)
