"""``segstudio install-desktop``: the menu entry and icons go in and come out of $XDG_DATA_HOME."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.cli.desktop import (ICON_SIZES, desktop_entry, desktop_exec, installed_paths, launcher_command,
                             quote_exec_argument)
from app.core.paths import resources_dir

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="freedesktop entries are for Linux")


def entry_keys(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "[Desktop Entry]"
    return dict(line.split("=", 1) for line in lines[1:] if "=" in line)


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    home = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def test_install_writes_the_entry_and_every_icon_size_then_uninstall_removes_exactly_them(data_home, capsys):
    neighbour = data_home / "applications" / "other.desktop"
    neighbour.parent.mkdir(parents=True)
    neighbour.write_text("[Desktop Entry]\nName=Other\n")

    assert main(["install-desktop"]) == 0
    out = capsys.readouterr().out
    entry = data_home / "applications" / "segstudio.desktop"
    assert str(entry) in out and "--uninstall" in out
    keys = entry_keys(entry)
    assert keys["Name"] == "SegStudio" and keys["Icon"] == "segstudio" and keys["Type"] == "Application"
    launcher = launcher_command()
    assert Path(launcher[0]).is_absolute() and keys["TryExec"] == launcher[0]
    assert keys["Exec"].endswith(" %f") and keys["Exec"].split()[0] == launcher[0]
    for size in ICON_SIZES:
        icon = data_home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "segstudio.png"
        assert icon.read_bytes() == (resources_dir() / "icons" / f"segstudio-{size}.png").read_bytes()
    assert (data_home / "icons" / "hicolor" / "scalable" / "apps" / "segstudio.svg").is_file()
    if shutil.which("desktop-file-validate"):
        result = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr

    assert main(["install-desktop", "--uninstall"]) == 0
    assert "removed" in capsys.readouterr().out
    assert not any(path.exists() for path in installed_paths(data_home))
    assert neighbour.read_text() == "[Desktop Entry]\nName=Other\n"  # nothing else touched


def test_uninstall_without_an_install_says_so(data_home, capsys):
    assert main(["install-desktop", "--uninstall"]) == 0
    assert "no SegStudio desktop entry" in capsys.readouterr().out


def test_data_home_defaults_to_local_share_and_can_be_given(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert main(["install-desktop"]) == 0
    assert (tmp_path / "home" / ".local" / "share" / "applications" / "segstudio.desktop").is_file()
    assert main(["install-desktop", "--data-home", str(tmp_path / "root")]) == 0
    assert (tmp_path / "root" / "icons" / "hicolor" / "48x48" / "apps" / "segstudio.png").is_file()


def test_the_frozen_bundle_points_the_entry_at_its_own_executable(tmp_path, monkeypatch):
    exe = tmp_path / "Seg Studio" / "segstudio"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))
    assert launcher_command() == [str(exe)]
    text = desktop_entry((resources_dir() / "segstudio.desktop").read_text(), launcher_command())
    assert f'Exec="{exe}" %f' in text and f"TryExec={exe}" in text
    assert text.count("Exec=") == 2  # TryExec and Exec, the template's own ones replaced


def test_exec_arguments_are_quoted_as_the_desktop_entry_spec_asks():
    assert quote_exec_argument("/opt/segstudio/bin/segstudio-gui") == "/opt/segstudio/bin/segstudio-gui"
    assert quote_exec_argument("/home/a b/x") == '"/home/a b/x"'
    assert quote_exec_argument('/p/$HOME"q') == '"/p/\\\\$HOME\\\\"q"'  # escaped once for Exec, once for the value
    assert quote_exec_argument("/p/100%") == "/p/100%%"


def test_the_shipped_template_is_a_valid_entry_that_opens_a_file():
    template = resources_dir() / "segstudio.desktop"
    keys = entry_keys(template)
    assert keys["Exec"] == "segstudio-gui %f" and keys["Terminal"] == "false"
    assert desktop_exec(template) == "segstudio-gui %f"
    if shutil.which("desktop-file-validate"):
        result = subprocess.run(["desktop-file-validate", str(template)], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_other_systems_are_told_what_to_use_instead(monkeypatch, capsys, data_home):
    monkeypatch.setattr(sys, "platform", "win32")
    assert main(["install-desktop"]) == 2
    assert "installer" in capsys.readouterr().err
    assert not data_home.exists()


def test_an_icon_that_is_a_link_is_replaced_not_written_through(data_home, tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    mine = dotfiles / "my-icon.png"
    mine.write_bytes(b"my own icon")
    icon = data_home / "icons" / "hicolor" / "48x48" / "apps" / "segstudio.png"
    icon.parent.mkdir(parents=True)
    icon.symlink_to(mine)
    assert main(["install-desktop"]) == 0
    assert mine.read_bytes() == b"my own icon"
    assert not icon.is_symlink() and icon.read_bytes() == (resources_dir() / "icons" / "segstudio-48.png").read_bytes()
