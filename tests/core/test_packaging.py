"""Packaging: resources complete and shipped by a wheel, the spec portable, resources found inside
a frozen bundle, and the built bundle's own self-test (skipped when no bundle was built)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from app.core import paths

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
ICONS = ROOT / "resources" / "icons"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
BUNDLE = Path(os.environ.get("SEGSTUDIO_BUNDLE", ROOT / "dist" / "SegStudio"))
EXECUTABLE = BUNDLE / ("segstudio-cli.exe" if sys.platform == "win32" else "segstudio")
NO_BUNDLE = (f"no bundle at {BUNDLE}: build it with `packaging/build.sh` (about 7 minutes on 2 cores; see "
             "packaging/README.md) or point SEGSTUDIO_BUNDLE at one, and this test runs its self-test; "
             "on CI (CI set) the test builds one itself")


@pytest.fixture
def fresh_resources_dir():
    paths.resources_dir.cache_clear()
    yield
    paths.resources_dir.cache_clear()


def test_resources_hold_the_icon_in_every_size_the_platforms_need():
    for size in PNG_SIZES:
        with Image.open(ICONS / f"segstudio-{size}.png") as image:
            assert image.size == (size, size) and image.mode == "RGBA"
            assert image.getpixel((size // 2, size // 2))[3] == 255  # drawn, not transparent
    with Image.open(ICONS / "segstudio.ico") as ico:
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    with Image.open(ICONS / "segstudio.icns") as icns:
        assert icns.format == "ICNS" and icns.size == (1024, 1024)
    assert (ICONS / "segstudio.svg").read_text().startswith("<svg")
    assert (ROOT / "resources" / "style.qss").stat().st_size > 0


def test_a_wheel_ships_every_resource(tmp_path):
    """A non-editable ``pip install`` has resources/ under <prefix>/share/segstudio."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data_files = config["tool"]["setuptools"]["data-files"]
    shipped = {Path(dest) / Path(match).name for dest, patterns in data_files.items()
               for pattern in patterns for match in map(str, ROOT.glob(pattern))}
    expected = {paths.INSTALLED_RESOURCES / path.relative_to(ROOT / "resources")
                for path in (ROOT / "resources").rglob("*") if path.is_file()}
    assert shipped == expected
    source = tmp_path / "source"  # a copy, so that the build writes nothing into the checkout
    for name in ("app", "resources"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PIP_NO_INDEX": "1"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    wheel = next(tmp_path.glob("segstudio-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in expected:
        assert any(name.endswith(f".data/data/{path.as_posix()}") for name in names), path


def test_the_spec_and_build_scripts_name_no_path_of_any_machine():
    absolute = re.compile(r"""["'](/(home|root|work|tmp|usr|opt|Users)/|[A-Za-z]:\\\\)""")
    for name in ("segstudio.spec", "build.sh", "build.ps1", "smoke_test.sh", "linux/install.sh",
                 "linux/make_tarball.sh", "windows/segstudio.iss", "macos/make_dmg.sh"):
        text = (PACKAGING / name).read_text()
        assert not absolute.search(text), f"{name}: {absolute.search(text).group(0)}"
    spec = (PACKAGING / "segstudio.spec").read_text()
    assert "SPECPATH" in spec and "console=False" in spec and "COLLECT(" in spec and "BUNDLE(" in spec
    for hook_target in ("tkinter", "PyQt5", "pytest"):  # left out of the bundle
        assert f'"{hook_target}"' in spec


def test_frozen_bundle_resources_come_from_meipass(tmp_path, monkeypatch, fresh_resources_dir):
    bundle = tmp_path / "_internal"
    (bundle / "resources" / "icons").mkdir(parents=True)
    (bundle / "resources" / "style.qss").write_text("/* bundled */")
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert paths.is_frozen()
    assert paths.resources_dir() == bundle / "resources"


def test_an_installed_copy_is_found_under_the_prefix(tmp_path, monkeypatch, fresh_resources_dir):
    prefix = tmp_path / "venv"
    installed = prefix / paths.INSTALLED_RESOURCES
    installed.mkdir(parents=True)
    (installed / "style.qss").write_text("/* installed */")
    monkeypatch.setattr(sys, "prefix", str(prefix))
    candidates = paths.resource_candidates()
    assert installed in candidates
    assert candidates.index(ROOT / "resources") < candidates.index(installed)  # a checkout wins
    monkeypatch.setattr(paths, "resource_candidates", lambda: [tmp_path / "nowhere", installed])
    assert paths.resources_dir() == installed


def test_user_data_goes_to_the_platform_folder_never_beside_the_program(monkeypatch):
    monkeypatch.delenv("SEGSTUDIO_DATA_DIR", raising=False)
    folder = paths.user_data_dir()
    assert folder.name == "SegStudio" and not folder.is_relative_to(ROOT)
    assert not folder.is_relative_to(Path(sys.executable).parent)


def bundle_files(bundle: Path) -> dict[str, int]:
    return {str(p.relative_to(bundle)): p.stat().st_mtime_ns for p in bundle.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The built bundle: dist/SegStudio (or $SEGSTUDIO_BUNDLE) when there is one; on CI
    (``CI`` set, unless ``SEGSTUDIO_SKIP_BUNDLE_BUILD`` is) one built here with packaging/build.sh
    (about 8 minutes on 2 cores) and removed afterwards; otherwise the tests skip."""
    if EXECUTABLE.is_file():
        yield BUNDLE
        return
    if not os.environ.get("CI") or os.environ.get("SEGSTUDIO_SKIP_BUNDLE_BUILD"):
        pytest.skip(NO_BUNDLE)
    if not sys.platform.startswith("linux"):
        pytest.skip("CI builds the bundle on Linux only (build.ps1 / build.sh on Windows and macOS)")
    work = Path(tempfile.mkdtemp(prefix="segstudio-bundle-"))
    try:
        result = subprocess.run(["bash", str(PACKAGING / "build.sh"), "--python", sys.executable, "--venv",
                                 str(work / "venv"), "--dist", str(work / "dist"), "--no-smoke-test", "--no-tarball"],
                                capture_output=True, text=True, timeout=3600)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        yield work / "dist" / "SegStudio"
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.timeout(3600)  # its fixture may build the bundle first (about 8 minutes on 2 cores)
def test_the_bundle_passes_its_self_test_and_writes_only_to_user_folders(bundle, tmp_path):
    executable = bundle / EXECUTABLE.name
    before = bundle_files(bundle)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path / "home"),
           "XDG_DATA_HOME": str(tmp_path / "xdg")}
    env.pop("SEGSTUDIO_DATA_DIR", None)
    result = subprocess.run([str(executable), "--self-test"], capture_output=True, text=True, timeout=900,
                            env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "self-test: passed" in result.stdout
    assert bundle_files(bundle) == before  # nothing written inside the program's folder


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="freedesktop entries are for Linux")
@pytest.mark.timeout(3600)  # the first of the two to run builds the bundle
def test_the_bundle_installs_its_desktop_entry(bundle, tmp_path):
    executable = bundle / EXECUTABLE.name
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    installed = subprocess.run([str(executable), "install-desktop"], capture_output=True, text=True,
                               timeout=120, env=env)
    assert installed.returncode == 0, installed.stderr
    entry = tmp_path / "xdg" / "applications" / "segstudio.desktop"
    text = entry.read_text()
    assert f"Exec={executable} %f" in text or f'Exec="{executable}" %f' in text
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout
    removed = subprocess.run([str(executable), "install-desktop", "--uninstall"], capture_output=True, text=True,
                             timeout=120, env=env)
    assert removed.returncode == 0 and not entry.exists()
