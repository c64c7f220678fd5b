"""The message banners' look, shared by every panel so errors and warnings read the same everywhere."""

from __future__ import annotations

BANNER_COLOURS = {  # kind -> (translucent background, border)
    "error": ("rgba(211, 47, 47, 0.22)", "#d32f2f"),
    "warning": ("rgba(245, 166, 35, 0.22)", "#f5a623"),
    "success": ("rgba(67, 160, 71, 0.22)", "#43a047"),
    "info": ("rgba(66, 133, 244, 0.18)", "#4285f4"),
}


def banner_style(kind: str = "error", selector: str | None = None) -> str:
    """A style sheet for a banner of ``kind``; scoped to ``selector`` (e.g. ``"QLabel"``) when given."""
    background, border = BANNER_COLOURS.get(kind, BANNER_COLOURS["info"])
    body = f"background: {background}; border: 1px solid {border}; border-radius: 4px; padding: 6px;"
    return f"{selector} {{ {body} }}" if selector else body
