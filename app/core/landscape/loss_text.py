"""The text form of a loss set, ``"dice,bce,tversky:alpha=0.7"``, read and checked against the loss
registry without torch (so the window and the experiment validation can check what a user types)."""

from __future__ import annotations

import json
from typing import Any

from ..losses import LOSSES


def parse_loss_item(text: str) -> tuple[str, dict[str, Any]]:
    """``"tversky:alpha=0.7:beta=0.3"`` → ``("tversky", {"alpha": 0.7, "beta": 0.3})``.

    Values are read as JSON (numbers, true/false) and otherwise kept as text."""
    name, *pairs = [part.strip() for part in text.strip().split(":")]
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"loss {text!r}: parameters are written name:key=value[:key=value], not {pair!r}")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value.strip()
    return name, params


def loss_items(text: str) -> list[str]:
    """The comma-separated items of ``text``, stripped, empty ones dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def check_loss_spec(text: str) -> tuple[list[str], str | None]:
    """The loss labels of ``text`` and the first problem (unknown loss, bad parameter, a loss
    listed twice), or None when every item is valid. Empty text: no labels, no problem (the
    checkpoint's own loss)."""
    items = loss_items(text)
    seen: set[str] = set()
    for item in items:
        if item in seen:
            return items, f"{item} is listed twice."
        seen.add(item)
        try:
            name, params = parse_loss_item(item)
            if name not in LOSSES:
                return items, f"{name!r} is not a loss; valid: {', '.join(LOSSES.names())}."
            LOSSES.resolve(name, params)
        except ValueError as exc:
            return items, f"{exc}."
    return items, None
