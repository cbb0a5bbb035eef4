"""A disk that fills: a file opener whose new files take `room` bytes, then every write fails with ENOSPC
(as write(2) does on a full disk). Tests patch a module's `open` with it, at the write under test, or
`io.open` for a write through `os.fdopen` (which hands `io.open` a descriptor, not a name)."""

from __future__ import annotations

import builtins
import errno
import os


def no_space() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FillingFile:
    def __init__(self, handle, disk: "FillingDisk") -> None:
        self._handle = handle
        self._disk = disk

    def write(self, data) -> int:
        part = data[: max(self._disk.room, 0)]
        if part:
            self._handle.write(part)
            self._disk.room -= len(part)
        if len(part) < len(data):
            self._disk.refused += 1
            raise no_space()
        return len(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self) -> "FillingFile":
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()


class FillingDisk:
    """`open` for a patched module: writes to the files it opens for writing whose name contains `name` stop
    after `room` bytes in all (other files are written as usual)."""

    def __init__(self, room: int, name: str) -> None:
        self.room = room
        self.name = name
        self.refused = 0

    def __call__(self, file, mode="r", *args, **kwargs):
        handle = builtins.open(file, mode, *args, **kwargs)
        if any(flag in mode for flag in "wax+") and self.name in os.path.basename(_name_of(file)):
            return FillingFile(handle, self)
        return handle


def _name_of(file) -> str:
    """The path `open` was given, or the one an open descriptor (from `os.fdopen`) stands for."""
    if not isinstance(file, int):
        return os.fsdecode(file)
    import fcntl

    if hasattr(fcntl, "F_GETPATH"):  # macOS has no /proc
        return os.fsdecode(fcntl.fcntl(file, fcntl.F_GETPATH, bytes(1024)).rstrip(b"\0"))
    return os.readlink(f"/proc/self/fd/{file}")
