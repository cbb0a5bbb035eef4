"""The pull use case: resolve a name, plan sources, fetch files in parallel, verify, install atomically.

Guarantees (see `domain/library/layout.py` and the `ModelStore` port for the on-disk layout):

* **Resume.** Partial bytes live in mlxm's staging area and survive pause, failure and kill -9;
  the downloader asks for the remainder with HTTP Range.
* **Verify.** Every file is checked against its LFS sha256; a file without one against its size
  (and its git blob id when the source lists it) before it counts as fetched. A bad file is deleted from staging and the next source is tried.
* **Atomic install.** The model becomes visible as installed only when every file (every shard
  of a sharded checkpoint) has verified; the library symlink is switched in one `os.replace`.
* **One writer per model.** In this process a second pull joins the first; across processes a
  `flock` on the model's lock file makes the second wait, then find the model installed.
* **Cancellation** is cooperative: the progress callback given to the downloader raises
  `DownloadCancelled` when a pause or cancel was requested.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Callable, Iterable

from application.downloads.adoption import Adoption
from application.downloads.install import InstallRecords
from application.downloads.repair import Repairing
from application.downloads.rows import DownloadRows
from application.downloads.stop_requests import CrossProcessStops
from application.downloads.progress import (
    PullProgress,
    ProgressListener,
    RecentFiles,
    PullResult,
    _ActivePull,
    ProgressReporting,
)
from application.downloads.targets import PullTarget, covers, resolve_pull_target, same_revision
from application.downloads.transfer import Transfer
from application.errors import Conflict, DownloadCancelled, NotFound, NotInstalled
from application.library.ports import ModelStore
from application.catalog.ports import CatalogProvider
from application.ports import Clock
from application.downloads.ports import ModelDownloader
from application.ports import UnitOfWork
from domain.catalog.model import Catalog
from domain.downloads.model import ACTIVE_STATUSES, Download
from domain.downloads.rank_files import RankShard
from domain.enums import DownloadStatus
from domain.errors import UnknownModel
from domain.library.models import Model


UowFactory = Callable[[], UnitOfWork]


class DownloadService(Transfer, InstallRecords, Adoption, ProgressReporting, Repairing, CrossProcessStops,
                      DownloadRows):
    """Pull, pause, resume and cancel model downloads; keeps the Download and Model rows current."""

    def __init__(
        self,
        uow_factory: UowFactory,
        catalog_provider: CatalogProvider,
        downloader: ModelDownloader,
        clock: Clock,
        layout: ModelStore,
        *,
        max_workers: int = 4,
        progress_interval: float = 0.2,
        persist_interval: float = 1.0,
        default_organization: str | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._catalog_provider = catalog_provider
        self._downloader = downloader
        self._clock = clock
        self.layout = layout
        self._max_workers = max(1, max_workers)
        self._progress_interval = progress_interval
        self._persist_interval = persist_interval
        self._default_organization = default_organization  # bare names: `<org>/<name>` after the catalog
        self._lock = threading.RLock()
        self._db_lock = threading.RLock()  # one unit of work at a time (SQLite; the in-memory fake)
        self._active: dict[str, _ActivePull] = {}
        self._recent_files = RecentFiles()  # per-file bytes of pulls that ended in this process

    # -- queries ------------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        return self._catalog_provider.load_catalog()

    def get(self, download_id: int) -> Download:
        if not 0 < download_id < 2**63:  # no row can have it (and SQLite cannot even be asked)
            raise NotFound(f"download {download_id} not found")
        with self._db_lock, self._uow_factory() as uow:
            download = uow.downloads.get(download_id)
        if download is None:
            raise NotFound(f"download {download_id} not found")
        return download

    def list(self, statuses: Iterable[DownloadStatus] | None = None) -> list[Download]:
        with self._db_lock, self._uow_factory() as uow:
            return uow.downloads.list(statuses)

    def progress_of(self, download_id: int) -> PullProgress:
        """The freshest progress: live for a pull in this process, else from the persisted row."""
        with self._lock:
            for active in self._active.values():
                if active.download_id == download_id and active.latest is not None:
                    return active.latest
        d = self.get(download_id)
        done = len(d.files) if d.status is DownloadStatus.COMPLETED else 0  # a finished row: every file is in
        return PullProgress(d.id, d.model_id, d.status, d.downloaded_bytes, d.total_bytes,
                            d.speed_bps, None, None, done, len(d.files), d.error,
                            files=self._recent_files.get(download_id))

    def is_active_here(self, download_id: int) -> bool:
        with self._lock:
            return any(a.download_id == download_id for a in self._active.values())

    # -- commands -------------------------------------------------------------------------
    def start(self, name: str, listener: ProgressListener | None = None, *, check_remote: bool = False) -> Download:
        """Start (or join) a pull in the background; returns its Download row."""
        active = self._start(self._resolve(name), listener, check_remote=check_remote)
        return self.get(active.download_id)

    def pull(self, name: str, listener: ProgressListener | None = None, *, shard: RankShard | None = None) -> PullResult:
        """Pull and wait. A pull of the same model already running in this process is joined.
        `shard`: only that pipeline rank's files (a partial install, tagged `rank-files:R/N`)."""
        target = replace(self._resolve(name), shard=shard)
        with self._lock:
            running = target.key in self._active
        installed = None if running else self._installed_model(target.key)
        if installed is not None and covers(installed.tags, shard) and \
                (target.revision is None or same_revision(target.revision, installed.revision)):
            with self._db_lock, self._uow_factory() as uow:
                latest = uow.downloads.latest_for(target.key)
            return PullResult(installed, latest, ["already installed"], already_installed=True)
        return self.pull_target(target, listener)

    def pull_target(self, target: PullTarget, listener: ProgressListener | None = None, *,
                    check_remote: bool = False) -> PullResult:
        """Pull a resolved target and wait; `check_remote` asks the source even when installed (updates)."""
        return self._wait(self._start(target, listener, check_remote=check_remote))

    def target_for_key(self, key: str, revision: str | None = None) -> PullTarget | None:
        """The pull target of a library key (canonical ID or repo id); None when it has no source."""
        try:
            return self._target_for_key(key, revision)
        except UnknownModel:
            return None

    def installed_models(self, name: str | None = None) -> list[Model]:
        """Every installed model, or the one `name` resolves to (library name, alias or catalog name)."""
        with self._db_lock, self._uow_factory() as uow:
            if name is None:
                return [m for m in uow.models.list() if m.is_installed]
            model = uow.models.find(name)
            if model is None:
                found = self.catalog.find(name)
                model = uow.models.get(found.id) if found is not None else None
        if model is None or not model.is_installed:
            raise NotInstalled(f"{name} is not installed")
        return [model]

    def wait(self, download_id: int, timeout: float | None = None) -> Download:
        with self._lock:
            active = next((a for a in self._active.values() if a.download_id == download_id), None)
        if active is not None:
            active.done.wait(timeout)
        return self.get(download_id)

    def pause(self, download_id: int) -> Download:
        """Stop a transfer and keep its partial data; `resume` continues from it."""
        download = self.get(download_id)
        if download.status is DownloadStatus.PAUSED:
            return download
        if self._stop_active(download_id, "pause"):
            return self.get(download_id)
        if download.status not in ACTIVE_STATUSES:
            raise Conflict(f"download {download_id} {_state(download.status)}; only an active download can be paused")
        with self.layout.model_lock(download.model_id, wait=False) as got:
            if got:
                self._transition(download_id, DownloadStatus.PAUSED)
                self._set_model_status(download.model_id, DownloadStatus.PAUSED)
        if not got:  # another process (a server, another CLI) is pulling it: ask it to stop
            return self._stop_elsewhere(download, "pause")
        return self.get(download_id)

    def resume(self, download_id: int, listener: ProgressListener | None = None) -> Download:
        """Continue a paused, failed or cancelled download from the bytes on disk."""
        download, active = self._resume(download_id, listener)
        return download if active is None else self.get(active.download_id)

    def resume_and_wait(self, download_id: int,
                        listener: ProgressListener | None = None) -> tuple[Download, Exception | None]:
        """`resume`, then wait for the end: the row, and the pull's own error when it failed in this process
        (the row keeps only its text; the error says what kind of failure it was, e.g. a full disk).
        Refusals to resume raise; a pause or cancel from elsewhere is no error (the row says which)."""
        download, active = self._resume(download_id, listener)
        if active is None:
            return download, None
        try:
            self._wait(active)
        except DownloadCancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - the pull's failure, handed to the caller with its row
            return self.get(active.download_id), exc
        return self.get(active.download_id), None

    def _resume(self, download_id: int, listener: ProgressListener | None) -> tuple[Download, _ActivePull | None]:
        download = self.get(download_id)
        with self._lock:
            active = next((a for a in self._active.values() if a.download_id == download_id), None)
        if active is not None:
            return download, active
        if download.status in ACTIVE_STATUSES and self._pulled_elsewhere(download.model_id):
            return download, None  # running in another process (a server, another CLI): nothing to resume
        if download.status not in (DownloadStatus.PAUSED, DownloadStatus.FAILED, DownloadStatus.CANCELLED):
            raise Conflict(f"download {download_id} {_state(download.status)}; only paused, failed or "
                           f"cancelled downloads can be resumed")
        target = self._target_for_key(download.model_id, download.revision)
        return download, self._start(target, listener, check_remote=False, reuse_download_id=download_id)

    def cancel(self, download_id: int) -> Download:
        """Stop a transfer and delete its partial data (an installed older revision is untouched)."""
        download = self.get(download_id)
        if self._stop_active(download_id, "cancel"):
            return self.get(download_id)
        if download.status in (DownloadStatus.COMPLETED, DownloadStatus.CANCELLED):
            raise Conflict(f"download {download_id} {_state(download.status, already=True)}")
        with self.layout.model_lock(download.model_id, wait=False) as got:
            if got:
                self.layout.clear_staging(download.model_id)
                self._transition(download_id, DownloadStatus.CANCELLED)
                self._forget_uninstalled_model(download.model_id)
        if not got and download.status in ACTIVE_STATUSES:  # pulled by another process: ask it
            return self._stop_elsewhere(download, "cancel")
        if not got:  # a paused/failed row whose model another process is pulling now
            raise Conflict(f"{download.model_id} is being downloaded by another mlxm process; "
                           f"cancel that download instead (`mlxm downloads`)")
        return self.get(download_id)

    def reconcile_after_crash(self) -> list[int]:
        """Rows left active by a dead process become paused (their partial data is kept)."""
        changed: list[int] = []
        for download in self.list(ACTIVE_STATUSES):
            if self.is_active_here(download.id):  # type: ignore[arg-type]
                continue
            with self.layout.model_lock(download.model_id, wait=False) as got:
                if not got:
                    continue  # another live process is pulling it
                with self._db_lock, self._uow_factory() as uow:
                    row = uow.downloads.get(download.id)  # type: ignore[arg-type]
                    if row is not None and row.reconcile_after_crash():
                        uow.downloads.add(row)
                        model = uow.models.get(row.model_id)
                        if model is not None and model.status in ACTIVE_STATUSES:
                            model.status = DownloadStatus.PAUSED
                            uow.models.add(model)
                        uow.commit()
                        changed.append(row.id)  # type: ignore[arg-type]
        return changed

    # -- internals: starting and waiting ------------------------------------------------------
    def _resolve(self, name: str) -> PullTarget:
        """`resolve_pull_target`, except that `org/name@<sha>` of a catalog model installed at that
        sha is that catalog model (no second copy under the repo id)."""
        catalog = self.catalog
        target = resolve_pull_target(catalog, name, self._default_organization)
        if target.catalog_model is not None or not target.revision:
            return target
        entry = catalog.find(target.key)
        installed = self._installed_model(entry.id) if entry is not None else None
        if installed is not None and (installed.repo_id or "").lower() == target.key.lower() \
                and same_revision(target.revision, installed.revision):
            return PullTarget(entry.id, tuple(entry.sources), installed.revision, entry)
        return target

    def _target_for_key(self, key: str, revision: str | None) -> PullTarget:
        found = self.catalog.get(key)
        if found is not None:
            return PullTarget(found.id, tuple(found.sources), revision or found.revision, found)
        target = resolve_pull_target(self.catalog, key)
        return replace(target, revision=revision or target.revision)

    def _start(self, target: PullTarget, listener: ProgressListener | None, *, check_remote: bool,
               reuse_download_id: int | None = None, repair: bool = False) -> _ActivePull:
        with self._lock:
            active = self._active.get(target.key)
            if active is not None:  # one pull per model: join it
                if listener is not None:
                    active.listeners.append(listener)
                return active
            download_id = self._open_download_row(target.key, reuse_download_id)
            active = _ActivePull(target, download_id, check_remote)
            active.repair = repair
            if listener is not None:
                active.listeners.append(listener)
            self._active[target.key] = active
            active.thread = threading.Thread(target=self._run, args=(active,), name=f"pull-{target.key}",
                                             daemon=True)
            active.thread.start()
            return active

    def _open_download_row(self, key: str, reuse_download_id: int | None) -> int:
        with self._db_lock, self._uow_factory() as uow:
            row = uow.downloads.get(reuse_download_id) if reuse_download_id is not None else None
            if row is None:
                latest = uow.downloads.latest_for(key)
                if latest is not None and latest.status in (DownloadStatus.PAUSED, DownloadStatus.FAILED):
                    row = latest  # pulling again continues the paused or failed download
            if row is not None:
                if row.status is not DownloadStatus.PENDING:
                    row.transition(DownloadStatus.PENDING)
                row.started_at = self._clock.now()
            else:
                row = Download(model_id=key, status=DownloadStatus.PENDING, started_at=self._clock.now())
            row = uow.downloads.add(row)
            uow.commit()
            return row.id  # type: ignore[return-value]

    def _wait(self, active: _ActivePull) -> PullResult:
        try:
            while not active.done.wait(0.2):
                pass
        except KeyboardInterrupt:
            active.request_stop("pause")  # Ctrl-C keeps the partial data for the next pull
            active.done.wait(30)
            raise
        if active.error is not None:
            raise active.error
        assert active.result is not None
        return active.result

    def _stop_active(self, download_id: int, reason: str) -> bool:
        with self._lock:
            active = next((a for a in self._active.values() if a.download_id == download_id), None)
        if active is None:
            return False
        active.request_stop(reason)
        active.done.wait(60)
        return True

    # -- internals: the worker ------------------------------------------------------------------
    def _run(self, active: _ActivePull) -> None:
        key = active.target.key
        try:
            with self.layout.model_lock(key, should_stop=lambda: active.stop_reason is not None) as got, \
                    self._stop_requests_watched(active, got):
                active.held_lock = got
                try:
                    active.check()
                    active.result = self._execute(active)
                except DownloadCancelled as exc:
                    if str(exc) == "cancel" and got:
                        # Still under our lock: once it is released another process may be pulling
                        # into this staging folder, and waiting for it could hang the cancel.
                        self.layout.clear_staging(key)
                    raise
        except DownloadCancelled as exc:
            active.error = exc
            self._after_stop(active, str(exc))
        except Exception as exc:  # noqa: BLE001 - recorded on the row and re-raised to the waiter
            active.error = exc
            self._fail(active, exc)
        finally:
            with self._lock:
                if active.meter is not None:  # before it leaves `_active`: progress_of never misses both
                    self._recent_files.put(active.download_id, active.meter.files())
                if self._active.get(key) is active:
                    del self._active[key]
            self._emit(active, force=True, final=True)
            active.done.set()


_STATE_PHRASES = {"failed": "has failed", "cancelled": "was cancelled", "completed": "is complete"}


def _state(status, *, already: bool = False) -> str:
    """`download 3 has failed`, `... is paused`, `... was cancelled` (not `is failed`)."""
    phrase = _STATE_PHRASES.get(status.value, f"is {status.value}")
    return phrase.replace(" ", " already ", 1) if already else phrase
