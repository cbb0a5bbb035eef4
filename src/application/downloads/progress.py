"""Progress of a pull: the meter, the snapshots listeners get, and their throttled fan-out."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from application.downloads.targets import PullTarget
from application.errors import DownloadCancelled
from application.ports import Clock
from domain.downloads.model import Download
from domain.enums import DownloadStatus
from domain.library.models import Model


@dataclass(frozen=True)
class FileProgress:
    """One file of a pull: bytes so far (verified, reused or resumed bytes count) against its size."""
    path: str
    downloaded_bytes: int
    total_bytes: int | None
    done: bool = False

    def to_dict(self) -> dict:
        return {"path": self.path, "downloaded_bytes": self.downloaded_bytes, "total_bytes": self.total_bytes,
                "done": self.done}


@dataclass(frozen=True)
class PullProgress:
    download_id: int | None
    model_id: str
    status: DownloadStatus
    downloaded_bytes: int
    total_bytes: int | None
    bytes_per_second: float | None = None
    eta_seconds: float | None = None
    current_file: str | None = None
    files_done: int = 0
    files_total: int = 0
    error: str | None = None
    files: tuple[FileProgress, ...] = ()  # per file, in the listing's order (empty when no pull ran here)

    def to_dict(self) -> dict:
        return {
            "download_id": self.download_id, "model_id": self.model_id, "status": self.status.value,
            "downloaded_bytes": self.downloaded_bytes, "total_bytes": self.total_bytes,
            "bytes_per_second": self.bytes_per_second, "eta_seconds": self.eta_seconds,
            "current_file": self.current_file, "files_done": self.files_done, "files_total": self.files_total,
            "error": self.error, "files": [f.to_dict() for f in self.files],
        }


ProgressListener = Callable[[PullProgress], None]


class RecentFiles:
    """The last per-file bytes of pulls that ended here (bounded): the final SSE event still shows them."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[int, tuple[FileProgress, ...]] = OrderedDict()

    def put(self, download_id: int, files: tuple[FileProgress, ...]) -> None:
        with self._lock:
            self._items[download_id] = files
            self._items.move_to_end(download_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def get(self, download_id: int) -> tuple[FileProgress, ...]:
        with self._lock:
            return self._items.get(download_id, ())


class _Meter:
    """Adds per-file byte counts into one total, with a smoothed rate and an ETA."""

    def __init__(self, clock: Clock, total: int | None, files_total: int,
                 sizes: dict[str, int | None] | None = None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.total = total
        self.files_total = files_total
        self.files_done = 0
        self._sizes: dict[str, int | None] = dict(sizes or {})  # listing order; a size learnt while fetching fills in
        self._finished: set[str] = set()
        self._per_file: dict[str, int] = {}
        self._done = 0
        self._samples: list[tuple[float, int]] = []
        self.current_file: str | None = None

    def set(self, path: str, done: int, total: int | None = None) -> None:
        with self._lock:
            self._done += done - self._per_file.get(path, 0)
            self._per_file[path] = done
            if total is not None and self._sizes.get(path) is None:
                self._sizes[path] = total
            self.current_file = path
            now = self._clock.monotonic()
            if not self._samples or now - self._samples[-1][0] >= 0.05:
                self._samples.append((now, self._done))
                while len(self._samples) > 2 and now - self._samples[0][0] > 3.0:
                    self._samples.pop(0)

    @property
    def done(self) -> int:
        return self._done

    def finish(self, path: str) -> None:
        with self._lock:
            self._finished.add(path)
            self.files_done = len(self._finished)

    def files(self) -> tuple[FileProgress, ...]:
        """Each file's bytes; built only when a snapshot is emitted (throttled), never per chunk."""
        with self._lock:
            paths = list(self._sizes) + [p for p in self._per_file if p not in self._sizes]
            return tuple(FileProgress(p, self._per_file.get(p, 0), self._sizes.get(p), p in self._finished)
                         for p in paths)

    def rate(self) -> float | None:
        with self._lock:
            if len(self._samples) < 2:
                return None
            (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None

    def eta(self) -> float | None:
        rate = self.rate()
        if not rate or self.total is None:
            return None
        return max(0.0, (self.total - self.done) / rate)


@dataclass
class PullResult:
    model: Model
    download: Download | None
    notes: list[str] = field(default_factory=list)
    already_installed: bool = False
    bytes_fetched: int = 0  # from a source in this run
    bytes_reused: int = 0  # linked from the installed revision (delta update)


class _ActivePull:
    def __init__(self, target: PullTarget, download_id: int, check_remote: bool) -> None:
        self.target = target
        self.download_id = download_id
        self.check_remote = check_remote
        self.stop_reason: str | None = None
        self.done = threading.Event()
        self.result: PullResult | None = None
        self.error: BaseException | None = None
        self.listeners: list[ProgressListener] = []
        self.latest: PullProgress | None = None
        self.notes: list[str] = []
        self.thread: threading.Thread | None = None
        self.held_lock = False
        self.meter: _Meter | None = None
        self.last_emit: float | None = None
        self.last_persist: float | None = None
        self.reuse = None  # delta update: the installed revision's files (a `ReuseSource`)
        self.repair = False  # re-fetch only the installed revision's damaged files (downloads/repair.py)

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None or reason == "cancel":
            self.stop_reason = reason

    def check(self) -> None:
        if self.stop_reason is not None:
            raise DownloadCancelled(self.stop_reason)


class ProgressReporting:
    """Steps of `DownloadService` that report progress to listeners and to the download row. A mixin, not a collaborator object: every step shares the service's locks, unit-of-work factory and table of active pulls, and the split is by size, not by state."""

    # -- progress fan-out ------------------------------------------------------------------------
    def _emit(self, active: _ActivePull, *, force: bool = False, final: bool = False) -> None:
        """Throttled: listeners at most every `progress_interval`, the row every `persist_interval`."""
        meter = active.meter
        now = self._clock.monotonic()
        if not force and active.last_emit is not None and now - active.last_emit < self._progress_interval:
            return
        active.last_emit = now
        if meter is not None and not final:
            snapshot = PullProgress(active.download_id, active.target.key, DownloadStatus.DOWNLOADING, meter.done,
                                    meter.total, meter.rate(), meter.eta(), meter.current_file,
                                    meter.files_done, meter.files_total, files=meter.files())
        else:
            d = self.get(active.download_id)
            snapshot = PullProgress(d.id, d.model_id, d.status, d.downloaded_bytes, d.total_bytes,
                                    meter.rate() if meter else None, None, None,
                                    meter.files_done if meter else 0, len(d.files), d.error,
                                    files=meter.files() if meter else ())
        active.latest = snapshot
        if meter is not None and not final and (
            force or active.last_persist is None or now - active.last_persist >= self._persist_interval
        ):
            active.last_persist = now
            self._persist_progress(active.download_id, snapshot)
        for listener in list(active.listeners):
            try:
                listener(snapshot)
            except Exception:  # noqa: BLE001 - a broken progress display must not break the pull
                pass

    def _persist_progress(self, download_id: int, snapshot: PullProgress) -> None:
        with self._db_lock, self._uow_factory() as uow:
            row = uow.downloads.get(download_id)
            if row is None or row.status is not DownloadStatus.DOWNLOADING:
                return
            row.downloaded_bytes = snapshot.downloaded_bytes
            row.speed_bps = snapshot.bytes_per_second
            uow.downloads.add(row)
            uow.commit()
