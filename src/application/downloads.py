"""The pull use case: resolve a name, plan sources, fetch files in parallel, verify, install atomically.

Guarantees (see `application/library_layout.py` for the on-disk layout):

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

import json
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

from application.errors import (
    Conflict,
    DownloadCancelled,
    Forbidden,
    IntegrityError,
    InvalidRequest,
    NotFound,
    NotInstalled,
    SourceError,
    Unauthorized,
)
from application.hash_cache import cache_path, drop_hash_cache, sha256_of
from application.library_layout import (
    PART_SUFFIX,
    LibraryLayout,
    Manifest,
    fsync_file,
    is_commit_sha,
    scratch_name,
)
from application.ports.catalog import CatalogProvider
from application.ports.clock import Clock
from application.ports.downloader import ModelDownloader, RemoteFile, RemoteListing
from application.ports.repositories import UnitOfWork
from domain.catalog import (
    Catalog,
    CatalogModel,
    ChainExhausted,
    ModelSource,
    is_repo_id,
    run_failover,
    split_repo_revision,
)
from domain.downloads import ACTIVE_STATUSES, Download
from domain.enums import DownloadStatus, ModelType, SourceKind
from domain.errors import NoSourceAvailable, UnknownModel
from domain.models import Model, ModelFile

UowFactory = Callable[[], UnitOfWork]

# Files whose early arrival lets the library show type and family while weights stream.
_FIRST_FILES = ("config.json",)


# --------------------------------------------------------------------------- names -> targets


@dataclass(frozen=True)
class PullTarget:
    """What to pull: the library key (canonical ID or `org/name`), its sources and revision."""

    key: str
    sources: tuple[ModelSource, ...]
    revision: str | None = None
    catalog_model: CatalogModel | None = None

    @property
    def repo_id(self) -> str | None:
        if self.catalog_model is not None:
            return self.catalog_model.primary_repo_id
        return self.sources[0].value if self.sources else None


def resolve_pull_target(catalog: Catalog, name: str) -> PullTarget:
    """A catalog ID or alias, or any HF repo `org/name[@revision]`."""
    name = (name or "").strip()
    repo, revision = split_repo_revision(name)
    found = catalog.find(name)
    if found is not None and (revision is None or revision == found.revision):
        return PullTarget(found.id, tuple(found.sources), revision or found.revision, found)
    if is_repo_id(repo):
        # A repo outside the catalog, or a catalog repo at another revision (a new revision is a new model).
        return PullTarget(repo, (ModelSource(SourceKind.HUGGINGFACE_REPO, repo),), revision, None)
    raise UnknownModel(name, catalog.suggestions(name))


def infer_type_and_family(config: dict) -> tuple[ModelType | None, str | None]:
    """Best guess of a model's type and family from its `config.json`."""
    family = config.get("model_type") if isinstance(config.get("model_type"), str) else None
    archs = " ".join(a for a in config.get("architectures", []) or [] if isinstance(a, str))
    lowered = (family or "").lower()
    if any(k in config for k in ("vision_config", "image_token_index", "image_token_id")):
        return ModelType.VISION, family
    if lowered in ("whisper", "parakeet", "voxtral", "kokoro", "sesame", "csm", "soprano", "pocket_tts") or \
            any(k in archs for k in ("ForConditionalGenerationAudio", "Whisper", "TTS", "SpeechSeq2Seq")) or \
            "sample_rate" in config or "sampling_rate" in config:
        return ModelType.AUDIO, family
    if lowered in ("bert", "xlm-roberta", "nomic_bert", "modernbert", "roberta") or \
            (archs and "ForCausalLM" not in archs and archs.endswith("Model")):
        return ModelType.EMBEDDINGS, family
    return ModelType.TEXT_GEN, family


# --------------------------------------------------------------------------- progress


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

    def to_dict(self) -> dict:
        return {
            "download_id": self.download_id, "model_id": self.model_id, "status": self.status.value,
            "downloaded_bytes": self.downloaded_bytes, "total_bytes": self.total_bytes,
            "bytes_per_second": self.bytes_per_second, "eta_seconds": self.eta_seconds,
            "current_file": self.current_file, "files_done": self.files_done, "files_total": self.files_total,
            "error": self.error,
        }


ProgressListener = Callable[[PullProgress], None]


class _Meter:
    """Adds per-file byte counts into one total, with a smoothed rate and an ETA."""

    def __init__(self, clock: Clock, total: int | None, files_total: int) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.total = total
        self.files_total = files_total
        self.files_done = 0
        self._per_file: dict[str, int] = {}
        self._done = 0
        self._samples: list[tuple[float, int]] = []
        self.current_file: str | None = None

    def set(self, path: str, done: int) -> None:
        with self._lock:
            self._done += done - self._per_file.get(path, 0)
            self._per_file[path] = done
            self.current_file = path
            now = self._clock.monotonic()
            if not self._samples or now - self._samples[-1][0] >= 0.05:
                self._samples.append((now, self._done))
                while len(self._samples) > 2 and now - self._samples[0][0] > 3.0:
                    self._samples.pop(0)

    @property
    def done(self) -> int:
        return self._done

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


# --------------------------------------------------------------------------- in-flight pulls


@dataclass
class PullResult:
    model: Model
    download: Download | None
    notes: list[str] = field(default_factory=list)
    already_installed: bool = False


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

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None or reason == "cancel":
            self.stop_reason = reason

    def check(self) -> None:
        if self.stop_reason is not None:
            raise DownloadCancelled(self.stop_reason)


def is_fatal_source_error(exc: Exception) -> bool:
    """Source errors move on to the next source; a stop request or a local failure ends the pull."""
    return not isinstance(exc, (SourceError, Unauthorized, Forbidden))


def _failure_reason(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --------------------------------------------------------------------------- the service


class DownloadService:
    """Pull, pause, resume and cancel model downloads; keeps the Download and Model rows current."""

    def __init__(
        self,
        uow_factory: UowFactory,
        catalog_provider: CatalogProvider,
        downloader: ModelDownloader,
        clock: Clock,
        layout: LibraryLayout,
        *,
        max_workers: int = 4,
        progress_interval: float = 0.2,
        persist_interval: float = 1.0,
    ) -> None:
        self._uow_factory = uow_factory
        self._catalog_provider = catalog_provider
        self._downloader = downloader
        self._clock = clock
        self.layout = layout
        self._max_workers = max(1, max_workers)
        self._progress_interval = progress_interval
        self._persist_interval = persist_interval
        self._lock = threading.RLock()
        self._db_lock = threading.RLock()  # one unit of work at a time (SQLite; the in-memory fake)
        self._active: dict[str, _ActivePull] = {}

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
        return PullProgress(d.id, d.model_id, d.status, d.downloaded_bytes, d.total_bytes,
                            d.speed_bps, None, None, 0, len(d.files), d.error)

    def is_active_here(self, download_id: int) -> bool:
        with self._lock:
            return any(a.download_id == download_id for a in self._active.values())

    # -- commands -------------------------------------------------------------------------
    def start(self, name: str, listener: ProgressListener | None = None, *, check_remote: bool = False) -> Download:
        """Start (or join) a pull in the background; returns its Download row."""
        active = self._start(self._resolve(name), listener, check_remote=check_remote)
        return self.get(active.download_id)

    def pull(self, name: str, listener: ProgressListener | None = None) -> PullResult:
        """Pull and wait. A pull of the same model already running in this process is joined."""
        target = self._resolve(name)
        with self._lock:
            running = target.key in self._active
        installed = None if running else self._installed_model(target.key)
        if installed is not None and (target.revision is None or same_revision(target.revision, installed.revision)):
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
            raise Conflict(f"download {download_id} is {download.status.value}; only an active download can be paused")
        with self.layout.model_lock(download.model_id, wait=False) as got:
            if not got:
                raise Conflict(f"{download.model_id} is being downloaded by another mlxm process")
            self._transition(download_id, DownloadStatus.PAUSED)
            self._set_model_status(download.model_id, DownloadStatus.PAUSED)
        return self.get(download_id)

    def resume(self, download_id: int, listener: ProgressListener | None = None) -> Download:
        """Continue a paused, failed or cancelled download from the bytes on disk."""
        download = self.get(download_id)
        if self.is_active_here(download_id):
            return download
        if download.status not in (DownloadStatus.PAUSED, DownloadStatus.FAILED, DownloadStatus.CANCELLED):
            raise Conflict(f"download {download_id} is {download.status.value}; only paused, failed or "
                           f"cancelled downloads can be resumed")
        target = self._target_for_key(download.model_id, download.revision)
        active = self._start(target, listener, check_remote=False, reuse_download_id=download_id)
        return self.get(active.download_id)

    def cancel(self, download_id: int) -> Download:
        """Stop a transfer and delete its partial data (an installed older revision is untouched)."""
        download = self.get(download_id)
        if self._stop_active(download_id, "cancel"):
            return self.get(download_id)
        if download.status in (DownloadStatus.COMPLETED, DownloadStatus.CANCELLED):
            raise Conflict(f"download {download_id} is already {download.status.value}")
        with self.layout.model_lock(download.model_id, wait=False) as got:
            if not got:
                raise Conflict(f"{download.model_id} is being downloaded by another mlxm process")
            self.layout.clear_staging(download.model_id)
            self._transition(download_id, DownloadStatus.CANCELLED)
            self._forget_uninstalled_model(download.model_id)
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
        target = resolve_pull_target(catalog, name)
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
               reuse_download_id: int | None = None) -> _ActivePull:
        with self._lock:
            active = self._active.get(target.key)
            if active is not None:  # one pull per model: join it
                if listener is not None:
                    active.listeners.append(listener)
                return active
            download_id = self._open_download_row(target.key, reuse_download_id)
            active = _ActivePull(target, download_id, check_remote)
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
            with self.layout.model_lock(key, should_stop=lambda: active.stop_reason is not None) as got:
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
                if self._active.get(key) is active:
                    del self._active[key]
            self._emit(active, force=True, final=True)
            active.done.set()

    def _after_stop(self, active: _ActivePull, reason: str) -> None:
        key = active.target.key
        if reason == "cancel":  # the partial data went in `_run`, while the lock was held
            self._transition(active.download_id, DownloadStatus.CANCELLED, downloaded_bytes=0)
            self._forget_uninstalled_model(key)
        else:
            self._transition(active.download_id, DownloadStatus.PAUSED, **self._bytes_on_disk(active))
            self._set_model_status(key, DownloadStatus.PAUSED)

    def _fail(self, active: _ActivePull, exc: Exception) -> None:
        message = _failure_reason(exc)
        self._transition(active.download_id, DownloadStatus.FAILED, error=message, **self._bytes_on_disk(active))
        self._set_model_status(active.target.key, DownloadStatus.FAILED)

    def _bytes_on_disk(self, active: _ActivePull) -> dict:
        """The row's byte count after a stop: what a resume will not fetch again (not a throttled sample)."""
        revision = self.get(active.download_id).revision
        if not revision or not active.held_lock:
            return {}
        return {"downloaded_bytes": self.layout.staged_bytes(active.target.key, revision)}

    def _execute(self, active: _ActivePull) -> PullResult:
        target = active.target
        installed = self._installed_model(target.key)
        if installed is not None and not active.check_remote and (
            target.revision is None or same_revision(target.revision, installed.revision)
        ):
            download = self._complete_row(active, installed, note="already installed")
            return PullResult(installed, download, ["already installed"], already_installed=True)

        self._transition(active.download_id, DownloadStatus.STARTING)
        listing, listing_source = self._list(target)
        active.check()
        if installed is not None and same_revision(listing.revision, installed.revision):
            download = self._complete_row(active, installed, note="up to date")
            return PullResult(installed, download, ["up to date"], already_installed=True)

        if not listing.files:
            raise SourceError(f"{target.key}: the source lists no files at {listing.revision}")
        unsafe = [f.path for f in listing.files if not _is_safe_relative_path(f.path)]
        if unsafe:
            raise SourceError(f"{target.key}: the source lists unsafe file paths: {', '.join(unsafe[:3])}")
        total = sum(f.size or 0 for f in listing.files)
        self._begin_download(active, listing, listing_source, total, installed)

        if installed is None:
            adopted = self._try_adopt(active, listing)
            if adopted is not None:
                return adopted  # a rename: it needs no free space
        self._check_disk_space(target.key, listing.revision, total)

        staging = self.layout.staging_for(target.key, listing.revision)
        scratch = self.layout.scratch_for(target.key, listing.revision)
        self.layout.clear_staging(target.key, keep_revision=listing.revision)  # other revisions cannot resume
        # Partials and hash caches live in `scratch`, so the staged tree holds only the model's files.
        files = [replace(f, dest=scratch / (scratch_name(f.path) + PART_SUFFIX)) for f in listing.files]
        _prune_unlisted(staging, {f.path for f in listing.files})
        records = self._fetch_all(active, files, staging, listing)

        manifest = Manifest(key=target.key, repo_id=listing.repo_id, revision=listing.revision,
                            source=_sources_summary(records),
                            files=[{"path": r.path, "size": r.size, "sha256": r.sha256} for r in records])
        old_revision = installed.revision if installed is not None else None
        previous_dir = self.layout.installed_revision_dir(target.key) if installed is not None else None
        local_path = self.layout.install(target.key, listing.revision, staging, manifest)
        try:
            model = self._record_installed(active, listing, records, local_path, installed)
        except BaseException:
            # Library index consistency: installed files never outlive a failed record of them.
            self.layout.uninstall(target.key, listing.revision, staging, previous_dir)
            raise
        self.layout.clear_staging(target.key)
        if old_revision and old_revision != listing.revision:
            self.layout.remove_revision(target.key, old_revision)
        return PullResult(model, self.get(active.download_id), active.notes)

    def _check_disk_space(self, key: str, revision: str, total: int) -> None:
        """Refuse early, with numbers, rather than fill the disk halfway through."""
        import shutil

        needed = total - self.layout.staged_bytes(key, revision)
        self.layout.staging_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.layout.staging_dir).free
        if needed > free:
            raise InvalidRequest(f"not enough disk space for {key}: {needed} more bytes needed, "
                                 f"{free} free under {self.layout.home}")

    def _list(self, target: PullTarget) -> tuple[RemoteListing, ModelSource | None]:
        staging_root = self.layout.staging_root(target.key)

        def attempt(source: ModelSource) -> tuple[RemoteListing, ModelSource]:
            listing = self._downloader.list_files(source, target.revision, staging_root)
            _check_listing_revision(source.label, listing)
            return listing, source

        try:
            result, _ = run_failover(target.sources, attempt, is_fatal_source_error)
            return result  # type: ignore[return-value]
        except ChainExhausted as exc:
            _reraise_fatal(exc)
            fallback = self._catalog_listing(target)
            if fallback is not None:
                return fallback, None
            raise NoSourceAvailable(target.key, [(s.label, _failure_reason(e)) for s, e in exc.failures]) from None

    def _catalog_listing(self, target: PullTarget) -> RemoteListing | None:
        """A pinned catalog entry with known files can be fetched from a mirror without a listing API."""
        model = target.catalog_model
        if model is None or not is_commit_sha(model.revision) or not model.files:
            return None
        if any(f.size is None and f.sha256 is None for f in model.files):
            return None
        staging = self.layout.staging_root(target.key)
        files = tuple(RemoteFile(f.path, f.size, f.sha256, model.revision, staging / f.path) for f in model.files)
        return RemoteListing(model.primary_repo_id or target.key, model.revision, files)

    def _fetch_all(self, active: _ActivePull, files: list[RemoteFile], staging: Path,
                   listing: RemoteListing) -> list[ModelFile]:
        meter = _Meter(self._clock, sum(f.size or 0 for f in files), len(files))
        active.meter = meter
        self._emit(active, force=True)
        ordered = sorted(files, key=lambda f: (f.path not in _FIRST_FILES, f.size or 0, f.path))
        records: dict[str, ModelFile] = {}
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="fetch") as pool:
            futures = {pool.submit(self._fetch_one, active, meter, f, staging / f.path): f for f in ordered}
            for future in as_completed(futures):
                file = futures[future]
                try:
                    records[file.path] = future.result()
                except BaseException as exc:  # noqa: BLE001 - one failure stops the other transfers
                    errors.append(exc)
                    active.request_stop("abort")
                    continue
                meter.files_done += 1
                if file.path == "config.json":
                    self._early_metadata(active, staging / file.path)
                self._emit(active, force=True)
        real = [e for e in errors if not isinstance(e, DownloadCancelled)]
        if real:
            raise real[0]
        if errors or active.stop_reason is not None:
            raise DownloadCancelled(active.stop_reason or "stopped")
        return [records[f.path] for f in files]

    def _fetch_one(self, active: _ActivePull, meter: _Meter, file: RemoteFile, final: Path) -> ModelFile:
        active.check()
        # The verified file's hash cache stays in the scratch folder, beside the partial's.
        final_cache = file.dest.with_name(file.dest.name[: -len(PART_SUFFIX)] + ".sha256")
        if final.is_file():  # verified in an earlier run (only verified files get their final name)
            try:
                digest = _verify(file, final, cache=final_cache)
                meter.set(file.path, final.stat().st_size)
                return ModelFile(file.path, final.stat().st_size, digest, file.revision, None)
            except IntegrityError:
                final.unlink()
                final_cache.unlink(missing_ok=True)

        def progress(path: str, done: int, total: int | None) -> None:
            active.check()
            meter.set(file.path, done)
            self._emit(active)

        def attempt(source: ModelSource) -> tuple[ModelSource, str]:
            try:
                self._downloader.download_from_source(source, file, progress)
                digest = _verify(file, file.dest)
            except IntegrityError:
                file.dest.unlink(missing_ok=True)  # never resume from bytes known to be wrong
                drop_hash_cache(file.dest)
                meter.set(file.path, 0)
                raise
            return source, digest

        try:
            (source, digest), _ = run_failover(active.target.sources, attempt, is_fatal_source_error)  # type: ignore[misc]
        except ChainExhausted as exc:
            _reraise_fatal(exc)
            raise NoSourceAvailable(
                active.target.key, [(s.label, _failure_reason(e)) for s, e in exc.failures]
            ) from None
        final.parent.mkdir(parents=True, exist_ok=True)
        cached = cache_path(file.dest)
        file.dest.replace(final)
        if cached.exists():
            cached.replace(final_cache)  # a rename keeps size and mtime: still valid for `final`
        fsync_file(final)  # flushed here, while other files still stream, so install's fsync is quick
        size = final.stat().st_size
        meter.set(file.path, size)
        return ModelFile(file.path, size, digest, file.revision, source.label)

    # -- internals: rows ------------------------------------------------------------------------
    def _installed_model(self, key: str) -> Model | None:
        with self._db_lock, self._uow_factory() as uow:
            model = uow.models.get(key)
        if model is None or not model.is_installed:
            return None
        if not Path(model.local_path).exists():  # type: ignore[arg-type]
            return None
        return model

    def _transition(self, download_id: int, status: DownloadStatus, *, error: str | None = None, **fields) -> None:
        with self._db_lock, self._uow_factory() as uow:
            row = uow.downloads.get(download_id)
            if row is None:
                return
            if row.status is not status:
                row.transition(status, now=self._clock.now(), error=error)
            for name, value in fields.items():
                setattr(row, name, value)
            uow.downloads.add(row)
            uow.commit()

    def _set_model_status(self, key: str, status: DownloadStatus) -> None:
        with self._db_lock, self._uow_factory() as uow:
            model = uow.models.get(key)
            if model is None or model.status is DownloadStatus.COMPLETED:
                return  # an installed model stays installed while a newer revision fails or pauses
            model.status = status
            uow.models.add(model)
            uow.commit()

    def _forget_uninstalled_model(self, key: str) -> None:
        with self._db_lock, self._uow_factory() as uow:
            model = uow.models.get(key)
            if model is not None and model.status is not DownloadStatus.COMPLETED:
                uow.models.remove(key)
                uow.commit()

    def _complete_row(self, active: _ActivePull, model: Model, note: str) -> Download:
        active.notes.append(note)
        with self._db_lock, self._uow_factory() as uow:
            row = uow.downloads.get(active.download_id)
            assert row is not None
            if row.status is DownloadStatus.PENDING:
                row.transition(DownloadStatus.STARTING)
            row.revision = model.revision
            row.total_bytes = model.size_bytes or row.total_bytes or 0
            row.transition(DownloadStatus.COMPLETED, now=self._clock.now())
            uow.downloads.add(row)
            uow.commit()
            return row

    def _begin_download(self, active: _ActivePull, listing: RemoteListing, source: ModelSource | None,
                        total: int, installed: Model | None) -> None:
        target = active.target
        cat = target.catalog_model
        already = self.layout.staged_bytes(target.key, listing.revision)
        with self._db_lock, self._uow_factory() as uow:
            row = uow.downloads.get(active.download_id)
            assert row is not None
            row.revision = listing.revision
            row.total_bytes = total
            row.downloaded_bytes = min(already, total)
            row.files = [f.path for f in listing.files]
            row.source = source.label if source is not None else "catalog"
            row.transition(DownloadStatus.DOWNLOADING, now=self._clock.now())
            uow.downloads.add(row)
            if installed is None:
                # Early metadata: the model is in the library index, `downloading`, from now on.
                model = uow.models.get(target.key) or Model(model_id=target.key)
                model.repo_id = listing.repo_id
                model.canonical_id = cat.id if cat is not None else None
                model.status = DownloadStatus.DOWNLOADING
                model.revision = listing.revision
                model.source = row.source
                model.size_bytes = total
                model.local_path = None
                if cat is not None:
                    model.model_type = cat.model_type
                    model.family = cat.family or model.family
                    model.aliases = list(cat.aliases)
                    model.tags = list(cat.tags)
                    model.description = cat.description
                uow.models.add(model)
            uow.commit()

    def _early_metadata(self, active: _ActivePull, config_path: Path) -> None:
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(config, dict):
            return
        model_type, family = infer_type_and_family(config)
        with self._db_lock, self._uow_factory() as uow:
            model = uow.models.get(active.target.key)
            if model is None or model.status is DownloadStatus.COMPLETED:
                return
            if model.model_type is None and active.target.catalog_model is None:
                model.model_type = model_type
            if not model.family:
                model.family = family
            uow.models.add(model)
            uow.commit()

    def _record_installed(self, active: _ActivePull, listing: RemoteListing, records: list[ModelFile],
                          local_path: Path, installed: Model | None, *, adopted_from: Path | None = None) -> Model:
        target = active.target
        cat = target.catalog_model
        config = _read_json(local_path / "config.json")
        guessed_type, guessed_family = infer_type_and_family(config) if config else (None, None)
        with self._db_lock, self._uow_factory() as uow:
            model = uow.models.get(target.key) or Model(model_id=target.key)
            model.repo_id = listing.repo_id
            model.canonical_id = cat.id if cat is not None else None
            model.local_path = str(local_path)
            model.status = DownloadStatus.COMPLETED
            model.revision = listing.revision
            model.source = _sources_summary(records)
            model.files = records
            model.size_bytes = sum(r.size for r in records)
            model.downloaded_at = self._clock.now()
            model.managed = True
            if cat is not None:
                model.model_type = cat.model_type
                model.family = cat.family or guessed_family
                model.aliases = list(cat.aliases)
            else:
                model.model_type = model.model_type or guessed_type
                model.family = model.family or guessed_family
            uow.models.add(model)
            if adopted_from is not None:
                # The adopted folder moved: rows that pointed at it now describe nothing (same transaction).
                for stale in uow.models.list():
                    if stale.model_id != model.model_id and stale.local_path \
                            and _same_path(Path(stale.local_path), adopted_from):
                        uow.models.remove(stale.model_id)
                        active.notes.append(f"library entry {stale.model_id} (the adopted folder) is now {model.model_id}")
            row = uow.downloads.get(active.download_id)
            assert row is not None
            row.downloaded_bytes = model.size_bytes
            row.transition(DownloadStatus.COMPLETED, now=self._clock.now())
            uow.downloads.add(row)
            uow.commit()
            return model

    # -- internals: legacy folders ----------------------------------------------------------------
    def _try_adopt(self, active: _ActivePull, listing: RemoteListing) -> PullResult | None:
        """Adopt `models/<alias>` (or a foreign `models/<key>`) only with matching provenance.

        Provenance = the same repo (from an mlxm manifest or the library row pointing at the
        folder) and every listed file present with the listed size and sha256.
        """
        target = active.target
        candidates: list[Path] = []
        key_path = self.layout.model_path(target.key)
        if self.layout.is_foreign_folder(key_path):
            candidates.append(key_path)
        elif key_path.is_symlink() and key_path.exists() and self.layout.installed_revision_dir(target.key) is None:
            raise Conflict(f"{key_path} is a link mlxm did not create (to {key_path.resolve()}); it is left alone")
        if target.catalog_model is not None:
            for alias in target.catalog_model.aliases:
                path = self.layout.model_path(alias)
                if "/" not in alias and path != key_path and self.layout.is_foreign_folder(path):
                    candidates.append(path)
        for folder in candidates:
            problem = self._provenance_problem(folder, listing)
            if problem is not None:
                active.notes.append(f"left alone {folder}: {problem}")
                continue
            records = [ModelFile(f.path, (folder / f.path).stat().st_size, sha256_of(folder / f.path, use_cache=False),
                                 listing.revision, "adopted") for f in listing.files]
            manifest = Manifest(key=target.key, repo_id=listing.repo_id, revision=listing.revision,
                                source="adopted", created_by="adopted", adopted_from=str(folder),
                                files=[{"path": r.path, "size": r.size, "sha256": r.sha256} for r in records])
            local_path = self.layout.adopt(target.key, listing.revision, folder, manifest)
            active.notes.append(f"adopted {folder} (same repo, every file verified)")
            try:
                model = self._record_installed(active, listing, records, local_path, None, adopted_from=folder)
            except BaseException:
                # Library index consistency: the folder goes back where it was when its row cannot be written.
                self.layout.uninstall(target.key, listing.revision, folder, None)
                raise
            return PullResult(model, self.get(active.download_id), active.notes)
        if key_path in candidates:
            raise Conflict(f"{key_path} exists and was not created by mlxm (its provenance does not match "
                           f"{listing.repo_id}@{listing.revision[:12]}); it is left alone — move it away to pull")
        return None

    def _provenance_problem(self, folder: Path, listing: RemoteListing) -> str | None:
        manifest = Manifest.read(folder)
        repo = manifest.repo_id if manifest is not None else None
        if repo is None:
            with self._db_lock, self._uow_factory() as uow:
                for model in uow.models.list():
                    if model.local_path and _same_path(Path(model.local_path), folder):
                        repo = model.repo_id
                        break
        if repo is None:
            return "no record of which repository it came from"
        if repo.lower() != listing.repo_id.lower():
            return f"it came from {repo}, not {listing.repo_id}"
        link = _first_symlink(folder)
        if link is not None:
            # Verified through a link, the bytes live elsewhere: moving the folder could leave it dangling.
            return f"it holds a symbolic link ({link.relative_to(folder)}); only real files are adopted"
        for f in listing.files:
            path = folder / f.path
            if not path.is_file():
                return f"{f.path} is missing"
            try:
                _verify(f, path, use_cache=False)
            except IntegrityError as exc:
                return str(exc)
        return None

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
                                    meter.files_done, meter.files_total)
        else:
            d = self.get(active.download_id)
            snapshot = PullProgress(d.id, d.model_id, d.status, d.downloaded_bytes, d.total_bytes,
                                    meter.rate() if meter else None, None, None,
                                    meter.files_done if meter else 0, len(d.files), d.error)
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


# --------------------------------------------------------------------------- helpers


def _verify(file: RemoteFile, path: Path, *, use_cache: bool = True, cache: Path | None = None) -> str:
    """Check size and sha256 (or, for a small non-LFS file, its git blob id); returns the sha256.

    Raises `IntegrityError` naming the file, the expected and the received value.
    """
    size = path.stat().st_size
    if file.size is not None and size != file.size:
        raise IntegrityError(file.path, f"{file.size} bytes", f"{size} bytes")
    if not file.sha256 and file.git_blob_sha1 and size <= _GIT_CHECK_MAX_BYTES:
        sha256, git_sha1 = _sha256_and_git_sha1(path, size)
        if git_sha1 != file.git_blob_sha1.lower():
            raise IntegrityError(file.path, f"git blob sha1 {file.git_blob_sha1}", f"git blob sha1 {git_sha1}")
        return sha256
    digest = sha256_of(path, use_cache=use_cache, cache=cache)
    if file.sha256 and digest != file.sha256.lower():
        raise IntegrityError(file.path, f"sha256 {file.sha256}", f"sha256 {digest}")
    return digest


_GIT_CHECK_MAX_BYTES = 64 * 1024 * 1024  # non-LFS files are small; never reread a big one for this


def _sha256_and_git_sha1(path: Path, size: int) -> tuple[str, str]:
    import hashlib

    sha256 = hashlib.sha256()
    git_sha1 = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as fh:
        while block := fh.read(1024 * 1024):
            sha256.update(block)
            git_sha1.update(block)
    return sha256.hexdigest(), git_sha1.hexdigest()


def _reraise_fatal(exc: ChainExhausted) -> None:
    for _, failure in exc.failures:
        if isinstance(failure, DownloadCancelled):
            raise failure
    if exc.failures and is_fatal_source_error(exc.failures[-1][1]):
        raise exc.failures[-1][1]


def _check_listing_revision(label: str, listing: RemoteListing) -> None:
    """The revision names folders on disk: only a commit sha is accepted from a source."""
    bad = next((r for r in [listing.revision, *(f.revision for f in listing.files)] if not is_commit_sha(r)), None)
    if bad is not None:
        raise SourceError(f"{label}: the source named revision {str(bad)[:60]!r}, not a 40-hex commit id")


def _is_safe_relative_path(path: str) -> bool:
    """A listed file must stay inside the model folder: relative, no `..`, not our manifest."""
    from pathlib import PurePosixPath

    parts = PurePosixPath(path).parts
    return bool(parts) and not path.startswith("/") and ".." not in parts and "\\" not in path \
        and path != ".mlxm.json"


def same_revision(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and (a == b or (len(a) >= 7 and b.startswith(a)) or (len(b) >= 7 and a.startswith(b)))


def _prune_unlisted(staging: Path, listed: set[str]) -> None:
    """Drop leftovers (an older layout's partials, caches) from the staged tree: only listed files install."""
    if not staging.is_dir():
        return
    for path in sorted(staging.rglob("*"), reverse=True):
        if path.is_symlink() or path.is_file():
            if path.relative_to(staging).as_posix() not in listed:
                path.unlink()


def _first_symlink(folder: Path) -> Path | None:
    """The first symbolic link inside `folder` (files or folders, never followed), if any."""
    import os

    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs + files):
            path = Path(root) / name
            if path.is_symlink():
                return path
    return None


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _sources_summary(records: list[ModelFile]) -> str | None:
    labels = sorted({r.source for r in records if r.source})
    return ", ".join(labels) or None


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


__all__ = [
    "DownloadService",
    "PullProgress",
    "PullResult",
    "PullTarget",
    "infer_type_and_family",
    "resolve_pull_target",
]
