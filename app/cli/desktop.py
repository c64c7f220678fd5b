"""``segstudio install-desktop``: put SegStudio in the Linux desktop menu, or take it out again.

Writes the freedesktop entry ``segstudio.desktop`` (its ``Exec`` pointing at this installation:
the bundle's executable, the ``segstudio-gui`` script of this environment, or ``python -m app``)
to ``$XDG_DATA_HOME/applications`` and the icon in every size to
``$XDG_DATA_HOME/icons/hicolor`` (``XDG_DATA_HOME`` defaults to ``~/.local/share``). Only those
files are touched; ``--uninstall`` removes exactly them.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

DESKTOP_FILE = "segstudio.desktop"  # the main window's QApplication.desktopFileName, plus .desktop
ICON_NAME = "segstudio"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "install-desktop",
        help="add SegStudio to the desktop menu (Linux): a .desktop entry and icons in your user folder",
        description="Write SegStudio's desktop entry and icon into your user folder "
                    "($XDG_DATA_HOME, default ~/.local/share), so that it appears in the desktop "
                    "menu and opens with a double-click; --uninstall removes them again.")
    p.add_argument("--uninstall", action="store_true", help="remove the desktop entry and icons written before")
    p.add_argument("--data-home", type=Path, metavar="DIR",
                   help="the folder to write into instead of $XDG_DATA_HOME (e.g. a packaging root)")
    p.set_defaults(func=cmd_install_desktop)


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or not absolute."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if value and os.path.isabs(value) else Path.home() / ".local" / "share"


def launcher_command() -> list[str]:
    """The command that opens the window for this installation, absolute."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).absolute())]
    here = Path(sys.executable).parent  # the environment's bin/ (not resolved: a venv's python is a link)
    for name in ("segstudio-gui", "segstudio-gui.exe"):
        if (here / name).is_file():
            return [str((here / name).absolute())]
    found = shutil.which("segstudio-gui")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "app"]


def quote_exec_argument(argument: str) -> str:
    """One argument of an ``Exec`` key, quoted and escaped as the Desktop Entry spec asks."""
    argument = argument.replace("%", "%%")
    if not any(ch in _EXEC_RESERVED for ch in argument):
        return argument
    escaped = "".join("\\" + ch if ch in '"`$\\' else ch for ch in argument)
    return '"' + escaped.replace("\\", "\\\\") + '"'  # the value itself escapes backslashes again


def desktop_entry(template: str, command: list[str]) -> str:
    """The template with ``Exec`` (taking one file, ``%f``) and ``TryExec`` set to ``command``."""
    exec_line = " ".join(quote_exec_argument(part) for part in command) + " %f"
    try_exec = command[0].replace("\\", "\\\\")
    lines, in_main = [], False
    for line in template.splitlines():
        if line.startswith("["):
            in_main = line.strip() == "[Desktop Entry]"
        elif in_main and line.split("=", 1)[0].strip() in ("Exec", "TryExec"):
            continue
        lines.append(line)
        if in_main and line.strip() == "[Desktop Entry]":
            lines.append("__EXEC__")
    text = "\n".join(lines).replace("__EXEC__", f"TryExec={try_exec}\nExec={exec_line}", 1)
    return text + "\n"


def installed_paths(home: Path) -> list[Path]:
    """Every file that installing writes under ``home``."""
    icons = home / "icons" / "hicolor"
    paths = [home / "applications" / DESKTOP_FILE, icons / "scalable" / "apps" / f"{ICON_NAME}.svg"]
    return paths + [icons / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png" for size in ICON_SIZES]


def install(home: Path | None = None, command: list[str] | None = None) -> list[Path]:
    """Write the entry and the icons; returns the files written."""
    from app.core.atomic import atomic_write_bytes, atomic_write_text
    from app.core.paths import resources_dir

    home = home or data_home()
    resources = resources_dir()
    template_path = resources / DESKTOP_FILE
    if not template_path.is_file():
        raise FileNotFoundError(f"the desktop entry template is missing: {template_path}")
    entry, svg, *pngs = installed_paths(home)
    sources = [resources / "icons" / f"{ICON_NAME}.svg"] + [
        resources / "icons" / f"{ICON_NAME}-{size}.png" for size in ICON_SIZES]
    missing = [str(s) for s in sources if not s.is_file()]
    if missing:
        raise FileNotFoundError(f"icon files are missing: {', '.join(missing)}")
    for source, target in zip(sources, [svg, *pngs]):
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, source.read_bytes(), through_links=False)  # replaces a link, not its target
    entry.parent.mkdir(parents=True, exist_ok=True)
    text = desktop_entry(template_path.read_text(encoding="utf-8"), command or launcher_command())
    atomic_write_text(entry, text, through_links=False)
    return [entry, svg, *pngs]


def uninstall(home: Path | None = None) -> list[Path]:
    """Remove what :func:`install` wrote; returns the files removed."""
    removed = []
    for path in installed_paths(home or data_home()):
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


def cmd_install_desktop(args) -> int:
    if not sys.platform.startswith("linux"):
        print("segstudio install-desktop: desktop entries are for Linux; on Windows use the SegStudio "
              "installer, on macOS drag SegStudio.app into Applications", file=sys.stderr)
        return 2
    home = args.data_home or data_home()
    if args.uninstall:
        removed = uninstall(home)
        if not removed:
            print(f"no SegStudio desktop entry in {home}")
        else:
            print(f"removed the SegStudio desktop entry and {len(removed) - 1} icon files from {home}")
        return 0
    written = install(home)
    print(f"installed {written[0]}\n  starts: {desktop_exec(written[0])}\n"
          f"  icons: {len(written) - 1} files in {home / 'icons' / 'hicolor'}\n"
          "SegStudio is now in the desktop menu (it may take a few seconds to appear); "
          "'segstudio install-desktop --uninstall' removes it.")
    return 0


def desktop_exec(entry: Path) -> str:
    """The ``Exec`` value of a desktop entry file ("" when it has none)."""
    for line in entry.read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            return line[len("Exec="):]
    return ""
