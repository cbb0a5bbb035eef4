"""Pause and cancel across processes: a stop request the owning process polls.

A pull runs in the process that holds the model's lock (a `mlxm serve`, or a `mlxm pull` in another
terminal). `pause`/`cancel` in any other process write `staging/<key>.stop` ("<download id> <reason>")
beside that lock; the owner polls it while it holds the lock and stops its transfer exactly as for a
pause or cancel asked in its own process (its row and partial data are handled by the owner). The
asker waits until the row is no longer active. A file rather than a database row: the owner already
works beside that lock file, and polling it costs no database write under the owner's progress updates.
If the owner died without updating the row (its lock is then free), the asker applies the stop itself.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator

from application.downloads.progress import _ActivePull
from application.errors import Conflict
from domain.downloads.model import ACTIVE_STATUSES, Download
from domain.enums import DownloadStatus

STOP_POLL_SECONDS = 0.2  # how often the owner looks for a request (the stop then takes effect at the next chunk)
STOP_WAIT_SECONDS = 60.0  # how long the asker waits for the owner, as for a pull in its own process
OWNER_SETTLE_SECONDS = 2.0  # lock free but row still active: the owner may be writing its row right now


def _parse(text: str) -> tuple[int, str] | None:
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in ("pause", "cancel"):
        return None
    return int(parts[0]), parts[1]


class CrossProcessStops:
    """Steps of `DownloadService` for stop requests between processes. A mixin, not a collaborator
    object: it shares the service's model store, rows and the per-pull stop flag."""

    _stop_poll_seconds = STOP_POLL_SECONDS
    _stop_wait_seconds = STOP_WAIT_SECONDS

    # -- the owner ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _stop_requests_watched(self, active: _ActivePull, holding_lock: bool) -> Iterator[None]:
        """While the owner holds the model's lock, a request naming its download stops it."""
        if not holding_lock:
            yield
            return
        finished = threading.Event()
        watcher = threading.Thread(target=self._watch_stop_requests, args=(active, finished),
                                   name=f"stop-requests-{active.target.key}", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            finished.set()
            watcher.join(5)
            self._drop_stop_request(active.target.key, active.download_id)  # consumed (or moot: we are done)

    def _watch_stop_requests(self, active: _ActivePull, finished: threading.Event) -> None:
        key = active.target.key
        while not finished.is_set():
            request = self._read_stop_request(key)
            if request is not None:
                download_id, reason = request
                if download_id == active.download_id:
                    active.request_stop(reason)
                else:  # for a download that is over: whoever asked has stopped waiting
                    self._drop_stop_request(key, download_id)
            finished.wait(self._stop_poll_seconds)

    def _read_stop_request(self, key: str) -> tuple[int, str] | None:
        try:
            return _parse(self.layout.read_text(self.layout.stop_request_path(key)))
        except OSError:
            return None

    def _drop_stop_request(self, key: str, download_id: int) -> None:
        request = self._read_stop_request(key)
        if request is not None and request[0] == download_id:
            with contextlib.suppress(OSError):
                self.layout.unlink(self.layout.stop_request_path(key), missing_ok=True)

    # -- the asker ----------------------------------------------------------------------------------
    def _pulled_elsewhere(self, key: str) -> bool:
        with self.layout.model_lock(key, wait=False) as got:
            return not got

    def _stop_elsewhere(self, download: Download, reason: str) -> Download:
        """Ask the process that holds the model's lock to pause or cancel `download`, and wait."""
        key, download_id = download.model_id, download.id
        path = self.layout.stop_request_path(key)
        self.layout.mkdir(path.parent, parents=True, exist_ok=True)
        self.layout.write_text(path, f"{download_id} {reason}\n")
        deadline = time.monotonic() + self._stop_wait_seconds
        free_since: float | None = None
        try:
            while True:
                row = self.get(download_id)  # type: ignore[arg-type]
                if row.status is DownloadStatus.COMPLETED:
                    raise Conflict(f"download {download_id} completed before it could be "
                                   f"{'paused' if reason == 'pause' else 'cancelled'}")
                if row.status not in ACTIVE_STATUSES:
                    return row  # the owner stopped it (or it failed first: the row says so)
                with self.layout.model_lock(key, wait=False) as got:
                    if got:
                        free_since = free_since or time.monotonic()
                        if time.monotonic() - free_since >= OWNER_SETTLE_SECONDS:
                            return self._stop_orphan(row, reason)  # the owner died without a word
                    else:
                        free_since = None
                if time.monotonic() > deadline:
                    raise Conflict(f"{key} is being downloaded by another mlxm process, which did not {reason} "
                                   f"download {download_id} within {self._stop_wait_seconds:.0f} s")
                time.sleep(min(0.1, self._stop_poll_seconds))
        finally:
            self._drop_stop_request(key, download_id)  # type: ignore[arg-type]

    def _stop_orphan(self, row: Download, reason: str) -> Download:
        """Called with the model's lock held: what the owner would have done."""
        if reason == "cancel":
            self.layout.clear_staging(row.model_id)
            self._transition(row.id, DownloadStatus.CANCELLED, downloaded_bytes=0)
            self._forget_uninstalled_model(row.model_id)
        else:
            self._transition(row.id, DownloadStatus.PAUSED)
            self._set_model_status(row.model_id, DownloadStatus.PAUSED)
        return self.get(row.id)  # type: ignore[arg-type]
