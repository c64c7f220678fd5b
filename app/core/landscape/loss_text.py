"""The text form of a loss set, ``"dice,bce,tversky:alpha=0.7"``, read without torch (so the
window can check what a user types)."""

from __future__ import annotations

import json
from typing import Any


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
