"""Render SegStudio's icon from ``resources/icons/segstudio.svg`` into the files each platform wants.

Writes ``resources/icons/segstudio-<N>.png`` for N in 16…512, ``segstudio.ico`` (Windows: 16–256)
and ``segstudio.icns`` (macOS: 16–512 plus the @2x 1024). The SVG is rendered by Qt's
``QSvgRenderer`` (exact, anti-aliased); Pillow writes the ICO and ICNS containers. The outputs
are committed, so only someone who changes the SVG needs to run this::

    QT_QPA_PLATFORM=offscreen python packaging/make_icons.py
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)


SMALL = 32  # at this size and below the outlines are drawn thicker, so they stay visible


def render(svg: Path, size: int):
    """The SVG drawn into a ``size``×``size`` RGBA Pillow image."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    text = svg.read_text(encoding="utf-8")
    if size <= SMALL:
        text = text.replace('stroke-width="10"', 'stroke-width="18"')
    renderer = QSvgRenderer(QByteArray(text.encode("utf-8")))
    if not renderer.isValid():
        raise SystemExit(f"make_icons: {svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return Image.open(io.BytesIO(bytes(data))).convert("RGBA")


def main(folder: Path = ICONS) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # painting needs one
    svg = folder / "segstudio.svg"
    images = {size: render(svg, size) for size in sorted(set(PNG_SIZES) | set(ICNS_SIZES))}
    for size in PNG_SIZES:
        images[size].save(folder / f"segstudio-{size}.png", optimize=True)
    largest = images[max(ICO_SIZES)]
    largest.save(folder / "segstudio.ico", format="ICO", sizes=[(s, s) for s in ICO_SIZES],
                 append_images=[images[s] for s in ICO_SIZES if s != max(ICO_SIZES)])
    images[1024].save(folder / "segstudio.icns", format="ICNS",
                      append_images=[images[s] for s in ICNS_SIZES if s != 1024])
    written = [f"segstudio-{s}.png" for s in PNG_SIZES] + ["segstudio.ico", "segstudio.icns"]
    print(f"make_icons: wrote {', '.join(written)} in {folder}")
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
