"""Saving an app link config (`FileMappingConfigStore.save`) replaces it atomically and durably: written to a
temp file, fsynced, then renamed into place; a failure midway leaves the previous config as it was."""

from __future__ import annotations

import errno
import io
import os

import pytest

from adapters.filesystem.mapping_configs import FileMappingConfigStore
from domain.library.mapping import AppMapping, MappingRule


def studio(root: str) -> AppMapping:
    return AppMapping("studio", root, (MappingRule("llm"),))


@pytest.fixture
def store(tmp_path):
    return FileMappingConfigStore(tmp_path / "configs")


def test_a_save_that_fails_midway_leaves_the_previous_config_intact_and_no_temp_file(store, monkeypatch):
    store.save(studio("/apps/first"))
    config = store.folder / "studio.json"
    previous = config.read_bytes()
    real_open = io.open

    class DiskFull:
        """Takes half of what is written, then the disk is full."""

        def __init__(self, handle) -> None:
            self._handle = handle

        def write(self, data) -> int:
            self._handle.write(data[: len(data) // 2])
            self._handle.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self._handle.close()

    def open_(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        name = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.fspath(file)
        if any(c in mode for c in "wax+") and os.path.dirname(os.path.abspath(name)) == str(store.folder):
            return DiskFull(handle)
        return handle

    monkeypatch.setattr(io, "open", open_)
    with pytest.raises(OSError) as failed:
        store.save(studio("/apps/second"))
    monkeypatch.undo()
    assert failed.value.errno == errno.ENOSPC
    assert config.read_bytes() == previous, "the previous config is untouched"
    assert sorted(p.name for p in store.folder.iterdir()) == ["studio.json"], "no temp file left behind"
    assert store.get("studio").root == "/apps/first"


def test_a_saved_config_is_fsynced_before_it_is_renamed_into_place_and_keeps_its_permissions(store, monkeypatch):
    store.save(studio("/apps/first"))
    config = store.folder / "studio.json"
    os.chmod(config, 0o640)
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
    store.save(studio("/apps/second"))
    monkeypatch.undo()
    renamed = [path for kind, path in events if kind == "replace"]
    assert len(renamed) == 1, events
    assert ("fsync", renamed[0]) in events[: events.index(("replace", renamed[0]))], events  # was never fsynced
    assert store.get("studio").root == "/apps/second"
    assert os.stat(config).st_mode & 0o777 == 0o640  # a config the user restricted stays restricted


def test_a_new_config_gets_the_umasks_mode_without_mlxm_touching_the_process_umask(store, monkeypatch):
    # os.umask is process-wide: setting it (even to read it back) could give a file a server thread creates
    # meanwhile the wrong mode. The kernel applies the umask at creation instead.
    real_umask = os.umask
    previous = real_umask(0o027)
    try:
        def umask(_mask):
            raise AssertionError("os.umask called while saving a config")

        monkeypatch.setattr(os, "umask", umask)
        store.save(studio("/apps/first"))
        monkeypatch.undo()
    finally:
        real_umask(previous)
    config = store.folder / "studio.json"
    assert os.stat(config).st_mode & 0o777 == 0o640  # 0666 less the umask, as `open(..., "w")` gives
    assert store.get("studio").root == "/apps/first"
    assert sorted(p.name for p in store.folder.iterdir()) == ["studio.json"]
