"""A background audit writer: requests enqueue rows, one thread stores them in batches.

Streaming never waits for the database, and a periodic retention cleanup runs on the same thread.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable

import structlog

from domain.audit.model import AuditEntry

log = structlog.get_logger("mlxm.audit")

_STOP = object()


class ThreadedAuditWriter:
    def __init__(
        self,
        write_batch: Callable[[list[AuditEntry]], None],
        cleanup: Callable[[], int] | None = None,
        *,
        batch_size: int = 100,
        flush_interval: float = 0.5,
        cleanup_interval: float = 3600.0,
    ) -> None:
        self._write_batch = write_batch
        self._cleanup = cleanup
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._cleanup_interval = cleanup_interval
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._next_cleanup = 0.0  # the first cleanup runs as soon as the writer starts

    def record(self, entry: AuditEntry) -> None:
        """Non-blocking: the row is stored by the writer thread."""
        self._ensure_started()
        self._queue.put(entry)

    def start(self) -> None:
        self._ensure_started()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every row queued so far is stored (tests, shutdown)."""
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mlxm-audit-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        pending: list[AuditEntry] = []
        while True:
            self._maybe_cleanup()
            try:
                item = self._queue.get(timeout=self._flush_interval)
            except queue.Empty:
                item = None
            if isinstance(item, AuditEntry):
                pending.append(item)
                # Drain what is already queued into the same batch.
                while len(pending) < self._batch_size:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(nxt, AuditEntry):
                        pending.append(nxt)
                    else:
                        item = nxt
                        break
            if pending and (item is None or not isinstance(item, AuditEntry) or len(pending) >= self._batch_size):
                self._store(pending)
                pending = []
            if isinstance(item, threading.Event):
                self._store(pending)
                pending = []
                item.set()
            elif item is _STOP:
                self._store(pending)
                return

    def _store(self, batch: list[AuditEntry]) -> None:
        if not batch:
            return
        try:
            self._write_batch(list(batch))
            return
        except Exception:  # noqa: BLE001 - the audit log must never take the server down
            if len(batch) == 1:
                log.exception("audit write failed", request_id=batch[0].request_id)
                return
            log.warning("audit batch write failed; storing its rows one by one", rows=len(batch), exc_info=True)
        # One bad row must not take the other rows of its batch with it.
        for entry in batch:
            try:
                self._write_batch([entry])
            except Exception:  # noqa: BLE001
                log.exception("audit row dropped", request_id=entry.request_id)

    def _maybe_cleanup(self) -> None:
        if self._cleanup is None or time.monotonic() < self._next_cleanup:
            return
        self._next_cleanup = time.monotonic() + self._cleanup_interval
        try:
            deleted = self._cleanup()
            if deleted:
                log.info("audit retention cleanup", deleted=deleted)
        except Exception:  # noqa: BLE001
            log.exception("audit retention cleanup failed")
