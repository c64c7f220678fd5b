"""Atomic writes: the new content is flushed, then renamed over the target, then the rename
itself is flushed (the folder entry), so a power cut leaves the old file or the new one."""

import os
import stat

import pytest

from app.core import atomic


def test_file_then_folder_are_synced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def spy(fd):
        mode = os.fstat(fd).st_mode
        synced.append(("folder" if stat.S_ISDIR(mode) else "file",
                       (tmp_path / "out.txt").exists()))  # was the rename done yet?
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    atomic.atomic_write_text(tmp_path / "out.txt", "new")
    expected = [("file", False), ("folder", True)] if os.name == "posix" else [("file", False)]
    assert synced == expected
    assert (tmp_path / "out.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_folder_that_cannot_be_synced_does_not_fail_the_write(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def refuse_folders(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")  # e.g. some network file systems
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", refuse_folders)
    atomic.atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "keep.json"
    target.write_text("old")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        atomic.atomic_write_json(target, {"a": 1})
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]


def test_a_replaced_file_keeps_its_permissions_and_a_link_keeps_its_target(tmp_path):
    """Saving an experiment through a link replaced the link with a copy, and a 0600 file became 0644."""
    private = tmp_path / "private.json"
    private.write_text("old")
    os.chmod(private, 0o600)
    atomic.atomic_write_text(private, "new")
    assert private.read_text() == "new" and stat.S_IMODE(private.stat().st_mode) == 0o600
    (tmp_path / "shared").mkdir()
    target = tmp_path / "shared" / "exp.json"
    target.write_text("old")
    link = tmp_path / "exp.json"
    link.symlink_to(target)
    assert atomic.atomic_write_text(link, "new") == link
    assert link.is_symlink() and target.read_text() == "new"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".exp.json")]
