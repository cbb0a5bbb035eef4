"""Early writeback: a partial file's bytes start going to disk while the rest still arrives.

Why: the fsync before install (application/downloads/transfer.py) then waits only for the last
few MB instead of the whole file. Profiled on the 4 x 256 MB loopback bench, each file's fsync
started after its last byte and took 0.1-0.35 s; it was the tail of every pull (notes/pull.md).

An optimisation only: that final fsync stays the durability guarantee, so an error here is ignored
(the final fsync reports it). A flush runs in a small shared pool so the receiving thread never
waits for the disk; `os.fdatasync`/`fsync` release the GIL.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

WRITEBACK_EVERY_BYTES = 8 * 1024 * 1024  # smallest fsync tail of 8, 32 and 64 MiB measured (notes/pull.md)
_sync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="writeback")
        return _pool


def _quiet_sync(fd: int) -> None:
    try:
        _sync(fd)
    except OSError:
        pass  # the fsync before install reports a real disk error


class EarlyWriteback:
    """Counts bytes written to `fh`; every `every_bytes` starts a background `fdatasync` of it.

    At most one flush per file is in flight (a slow disk never queues a backlog). Leave the
    `with` block before `fh` closes: exiting waits for the flush in flight, so no flush ever
    runs on a descriptor number the process has reused.
    """

    def __init__(self, fh: BinaryIO, every_bytes: int = WRITEBACK_EVERY_BYTES) -> None:
        self._fh = fh
        self._every = every_bytes
        self._unflushed = 0
        self._pending: Future | None = None
        self.started = 0  # flushes started (tests read it)

    def wrote(self, n: int) -> None:
        if self._every <= 0:
            return
        self._unflushed += n
        if self._unflushed < self._every or (self._pending is not None and not self._pending.done()):
            return
        self._unflushed = 0
        self._fh.flush()  # the few KB still in Python's buffer reach the kernel first
        self._pending = _executor().submit(_quiet_sync, self._fh.fileno())
        self.started += 1

    def wait(self) -> None:
        if self._pending is not None:
            self._pending.result()

    def __enter__(self) -> "EarlyWriteback":
        return self

    def __exit__(self, *exc: object) -> None:
        self.wait()
