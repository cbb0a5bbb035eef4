"""Replacing a file users read and edit (`write_atomic(..., user_file=True)`, the catalog `.sig` writer) is
atomic and durable: written to a temp file, fsynced, then renamed into place; a failure midway leaves the
previous file as it was, and no temp file behind."""

from __future__ import annotations

import errno
import io
import os

import pytest

from adapters.filesystem.durability import write_atomic
from tests.support.full_disk import FillingDisk


@pytest.fixture
def target(tmp_path):
    return tmp_path / "files" / "studio.json"


def test_a_write_that_fails_midway_leaves_the_previous_file_intact_and_no_temp_file(target, monkeypatch):
    write_atomic(target, b'{"root": "/apps/first"}\n', user_file=True)
    previous = target.read_bytes()
    disk = FillingDisk(10, target.name)  # the temp file `.studio.json.<random>.tmp` takes 10 bytes, then ENOSPC
    monkeypatch.setattr(io, "open", disk)  # os.fdopen opens the temp file's descriptor through io.open
    with pytest.raises(OSError) as failed:
        write_atomic(target, b'{"root": "/apps/second"}\n', user_file=True)
    monkeypatch.undo()
    assert disk.refused == 1  # the write under test did fail, halfway
    assert failed.value.errno == errno.ENOSPC
    assert target.read_bytes() == previous, "the previous file is untouched"
    assert sorted(p.name for p in target.parent.iterdir()) == ["studio.json"], "no temp file left behind"


def test_the_new_file_is_fsynced_before_it_is_renamed_into_place_and_keeps_the_old_ones_permissions(
        target, monkeypatch):
    write_atomic(target, b"first\n", user_file=True)
    os.chmod(target, 0o640)
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        events.append(("replace", os.fspath(src)))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_atomic(target, b"second\n", user_file=True)
    monkeypatch.undo()
    renamed = [path for kind, path in events if kind == "replace"]
    assert len(renamed) == 1, events
    assert ("fsync", renamed[0]) in events[: events.index(("replace", renamed[0]))], events  # was never fsynced
    assert target.read_bytes() == b"second\n"
    assert os.stat(target).st_mode & 0o777 == 0o640  # a file the user restricted stays restricted


def test_a_new_file_gets_the_umasks_mode_without_mlxm_touching_the_process_umask(target, monkeypatch):
    # os.umask is process-wide: setting it (even to read it back) could give a file a server thread creates
    # meanwhile the wrong mode. The kernel applies the umask at creation instead.
    real_umask = os.umask
    previous = real_umask(0o027)
    try:
        def umask(_mask):
            raise AssertionError("os.umask called while writing a user file")

        monkeypatch.setattr(os, "umask", umask)
        write_atomic(target, b"first\n", user_file=True)
        monkeypatch.undo()
    finally:
        real_umask(previous)
    assert os.stat(target).st_mode & 0o777 == 0o640  # 0666 less the umask, as `open(..., "w")` gives
    assert target.read_bytes() == b"first\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["studio.json"]
