"""The application's identity: icon, style sheet, names, and the splash screen shown while the
window is built. Files come from a source checkout, a pip install or the frozen bundle (found by
:func:`app.core.paths.resources_dir`). Only QtGui/QtWidgets are imported, so the splash can be
up before the heavy window modules load."""

from __future__ import annotations

import sys

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QLabel

from app import __version__
from app.core.paths import resources_dir

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
DESKTOP_FILE_NAME = "segstudio"  # resources/segstudio.desktop, installed by `segstudio install-desktop`

__all__ = ["ICON_SIZES", "app_icon", "load_style", "resources_dir", "set_identity", "show_splash"]


def app_icon() -> QIcon:
    """SegStudio's icon: the rendered PNG sizes (no SVG plugin needed), else the SVG."""
    folder = resources_dir() / "icons"
    icon = QIcon()
    for size in ICON_SIZES:
        path = folder / f"segstudio-{size}.png"
        if path.is_file():
            icon.addFile(str(path))
    if icon.isNull() and (folder / "segstudio.svg").is_file():
        icon = QIcon(str(folder / "segstudio.svg"))
    return icon


def load_style() -> str:
    """The application style sheet, or "" when it cannot be read."""
    try:
        return (resources_dir() / "style.qss").read_text(encoding="utf-8")
    except OSError:
        return ""


def set_identity(app: QApplication) -> None:
    """Name, organisation (QSettings), version and desktop entry (the Linux menu entry; the
    Wayland app id) of ``app``: before its first window, the splash."""
    app.setApplicationName("SegStudio")
    app.setOrganizationName("SegStudio")
    app.setOrganizationDomain("segstudio.org")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(DESKTOP_FILE_NAME)
    if sys.platform == "win32":  # the taskbar shows SegStudio's icon, not Python's
        import ctypes

        ctypes.windll.shell32.SetCurrentProcessExplicitAppUserModelID("SegStudio.SegStudio")


def splash_pixmap(width: int = 440, height: int = 180) -> QPixmap:
    """A card with the icon, the name, the version and "Starting…"."""
    ratio = QApplication.primaryScreen().devicePixelRatio() if QApplication.primaryScreen() else 1.0
    pixmap = QPixmap(int(width * ratio), int(height * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(QColor("#1f2a36"))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    icon = app_icon().pixmap(128, 128)
    painter.drawPixmap(26, (height - 128) // 2, icon)
    title = QFont()
    title.setPointSize(22)
    title.setBold(True)
    painter.setFont(title)
    painter.setPen(QColor("#ffffff"))
    painter.drawText(QRect(172, 44, width - 180, 44), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                     "SegStudio")
    body = QFont()
    body.setPointSize(10)
    painter.setFont(body)
    painter.setPen(QColor("#9fb3c8"))
    painter.drawText(QRect(174, 90, width - 180, 22), Qt.AlignmentFlag.AlignLeft, f"version {__version__}")
    painter.setPen(QColor("#5fb3ff"))
    painter.drawText(QRect(174, 118, width - 180, 22), Qt.AlignmentFlag.AlignLeft, "Starting…")
    painter.end()
    return pixmap


def show_splash(app: QApplication) -> QLabel | None:
    """Show the splash screen now, centred (close it once the window is up); None on a platform
    without a screen (offscreen, minimal). A frameless label rather than QSplashScreen, whose
    show() waits up to a second for the window system to report the splash exposed."""
    if app.platformName() in ("offscreen", "minimal"):
        return None
    splash = QLabel()
    splash.setWindowFlags(Qt.WindowType.SplashScreen | Qt.WindowType.FramelessWindowHint
                          | Qt.WindowType.WindowStaysOnTopHint)
    splash.setPixmap(splash_pixmap())
    splash.resize(splash.sizeHint())
    screen = app.primaryScreen()
    if screen is not None:
        splash.move(screen.availableGeometry().center() - splash.rect().center())
    splash.show()
    app.processEvents()
    return splash
