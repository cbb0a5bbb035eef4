"""The transfer loop: list the files, fetch them in parallel with failover, verify, install atomically."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from application.downloads.delta import ReuseSource, byte_counts, linked_label, reuse_installed
from application.downloads.install import _sources_summary
from application.downloads.mirror_listing import fill_missing_sha256, listing_sources
from application.downloads.progress import PullResult, _ActivePull, _Meter
from application.downloads.targets import (
    PullTarget,
    covers,
    same_revision,
    is_fatal_source_error,
    _failure_reason,
    _reraise_fatal,
    _check_listing_revision,
    _is_safe_relative_path,
)
from application.downloads.verification import _verify
from application.errors import DownloadCancelled, IntegrityError, InvalidRequest, OutOfSpace, SourceError
from domain.library.layout import PART_SUFFIX, Manifest, is_commit_sha, scratch_name
from application.downloads.ports import RemoteFile, RemoteListing
from domain.catalog.model import ChainExhausted, ModelSource, run_failover
from domain.enums import DownloadStatus, SourceKind
from domain.downloads.rank_files import num_hidden_layers, pipeline_layers, rank_weight_files
from domain.errors import NoSourceAvailable
from domain.library.models import ModelFile


# Files whose early arrival lets the library show type and family while weights stream.
_FIRST_FILES = ("config.json",)


class Transfer:
    """Steps of `DownloadService` that list, fetch, verify and install a model's files. A mixin, not a collaborator object: every step shares the service's locks, unit-of-work factory and table of active pulls, and the split is by size, not by state."""

    def _execute(self, active: _ActivePull) -> PullResult:
        if active.repair:
            return self._repair(active)
        target = active.target
        installed = self._installed_model(target.key)
        complete = installed is not None and covers(installed.tags, target.shard)
        if complete and not active.check_remote and (
            target.revision is None or same_revision(target.revision, installed.revision)
        ):
            download = self._complete_row(active, installed, note="already installed")
            return PullResult(installed, download, ["already installed"], already_installed=True)

        self._transition(active.download_id, DownloadStatus.STARTING)
        listing, listing_source = self._list(target)
        active.check()
        if complete and same_revision(listing.revision, installed.revision):
            download = self._complete_row(active, installed, note="up to date")
            return PullResult(installed, download, ["up to date"], already_installed=True)

        if not listing.files:
            raise SourceError(f"{target.key}: the source lists no files at {listing.revision}")
        unsafe = [f.path for f in listing.files if not _is_safe_relative_path(f.path)]
        if unsafe:
            raise SourceError(f"{target.key}: the source lists unsafe file paths: {', '.join(unsafe[:3])}")
        total = sum(f.size or 0 for f in listing.files)
        self._begin_download(active, listing, listing_source, total, installed)

        if installed is None and target.shard is None:
            adopted = self._try_adopt(active, listing)
            if adopted is not None:
                return adopted  # a rename: it needs no free space
        self._check_disk_space(target.key, listing.revision, total)

        staging = self.layout.staging_for(target.key, listing.revision)
        scratch = self.layout.scratch_for(target.key, listing.revision)
        self.layout.clear_staging(target.key, keep_revision=listing.revision)  # other revisions cannot resume
        # Partials and hash caches live in `scratch`, so the staged tree holds only the model's files.
        files = [replace(f, dest=scratch / (scratch_name(f.path) + PART_SUFFIX)) for f in listing.files]
        self.layout.prune_unlisted(staging, {f.path for f in listing.files})
        installed_dir = self.layout.installed_revision_dir(target.key) if installed is not None else None
        if installed_dir is not None:  # delta update: unchanged files come from the installed revision
            active.reuse = ReuseSource.from_records(installed_dir, installed.revision, installed.files)
        if target.shard is not None:
            files = self._rank_files(active, files, staging, listing)
        records = self._fetch_all(active, files, staging, listing)

        manifest = Manifest(key=target.key, repo_id=listing.repo_id, revision=listing.revision,
                            source=_sources_summary(records),
                            files=[{"path": r.path, "size": r.size, "sha256": r.sha256} for r in records],
                            overlays=self._manifest_overlays(target.key))
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
        fetched, reused = byte_counts(records)
        return PullResult(model, self.get(active.download_id), active.notes, bytes_fetched=fetched,
                          bytes_reused=reused)

    def _rank_files(self, active: _ActivePull, files: list[RemoteFile], staging: Path,
                    listing: RemoteListing) -> list[RemoteFile]:
        """One pipeline rank's files: every file but the weights, and the weight files holding that rank's
        layers (from config.json and model.safetensors.index.json, fetched first); see domain.downloads.rank_files."""
        import json

        shard = active.target.shard
        assert shard is not None
        index_name = "model.safetensors.index.json"
        small = [f for f in files if f.path in ("config.json", index_name)]
        if index_name not in {f.path for f in small}:
            raise InvalidRequest(f"{active.target.key} has no {index_name} (its weights are one file): every rank "
                                 "needs every file; pull it without --rank")
        self._fetch_all(active, small, staging, listing)
        try:
            config = json.loads(self.layout.read_text(staging / "config.json"))
            weight_map = json.loads(self.layout.read_text(staging / index_name))["weight_map"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceError(f"{active.target.key}: cannot read config.json / {index_name}: {exc}") from None
        layers = num_hidden_layers(config)
        if layers is None:
            raise InvalidRequest(f"{active.target.key}: config.json gives no num_hidden_layers to split by rank")
        try:
            needed = rank_weight_files(weight_map, layers, shard)
        except ValueError as exc:
            raise InvalidRequest(f"{active.target.key}: {exc}") from None
        weights = set(weight_map.values())
        chosen = [f for f in files if f.path not in weights or f.path in needed]
        active.notes.append(f"rank {shard.rank} of {shard.ranks} (pipeline): {len(needed)} of {len(weights)} weight "
                            f"files, layers {pipeline_layers(layers, shard).start}-{pipeline_layers(layers, shard).stop - 1}")
        return chosen

    def _check_disk_space(self, key: str, revision: str, total: int) -> None:
        """Refuse early, with numbers, rather than fill the disk halfway through: the same condition (and exit
        code) as a disk that fills during the transfer."""
        needed = total - self.layout.staged_bytes(key, revision)
        free = self.layout.free_staging_bytes()
        if needed > free:
            raise OutOfSpace(f"not enough disk space for {key}: {needed} more bytes needed, "
                             f"{free} free under {self.layout.home}", path=str(self.layout.home))

    def _list(self, target: PullTarget) -> tuple[RemoteListing, ModelSource | None]:
        staging_root = self.layout.staging_root(target.key)

        def attempt(source: ModelSource) -> tuple[RemoteListing, ModelSource | None]:
            if source.kind is not SourceKind.HUGGINGFACE_REPO and (pinned := self._catalog_listing(target)):
                return pinned, None  # the catalog's pinned file list outranks a mirror's manifest
            listing = self._downloader.list_files(source, target.revision, staging_root)
            _check_listing_revision(source.label, listing)
            if source.kind is SourceKind.HUGGINGFACE_REPO:
                listing = fill_missing_sha256(listing, target.sources, self._downloader, staging_root)
            return listing, source

        try:
            # Hubs list first whatever the download priority: a mirror's manifest is not the truth.
            result, _ = run_failover(listing_sources(target.sources), attempt, is_fatal_source_error)
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
        meter = _Meter(self._clock, sum(f.size or 0 for f in files), len(files), {f.path: f.size for f in files})
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
                meter.finish(file.path)
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
        store = self.layout
        if store.is_file(final):  # verified in an earlier run (only verified files get their final name)
            try:
                digest = _verify(store, file, final, cache=final_cache)
                meter.set(file.path, store.file_size(final))
                return ModelFile(file.path, store.file_size(final), digest, file.revision,
                                 linked_label(store, active.reuse, file, final))
            except IntegrityError:
                store.unlink(final)
                store.unlink(final_cache, missing_ok=True)

        active.check()
        reused = reuse_installed(store, active.reuse, file, final, final_cache)
        if reused is not None:
            meter.set(file.path, reused.size)
            return reused

        def progress(path: str, done: int, total: int | None) -> None:
            active.check()
            meter.set(file.path, done, total)
            self._emit(active)

        def attempt(source: ModelSource) -> tuple[ModelSource, str]:
            try:
                self._downloader.download_from_source(source, file, progress)
                digest = _verify(self.layout, file, file.dest)
            except IntegrityError:
                store.unlink(file.dest, missing_ok=True)  # never resume from bytes known to be wrong
                self.layout.drop_hash_cache(file.dest)
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
        store.mkdir(final.parent, parents=True, exist_ok=True)
        cached = store.hash_cache_path(file.dest)
        store.replace(file.dest, final)
        if store.exists(cached):
            store.replace(cached, final_cache)  # a rename keeps size and mtime: still valid for `final`
        store.fsync_file(final)  # flushed here, while other files still stream, so install's fsync is quick
        size = store.file_size(final)
        meter.set(file.path, size)
        return ModelFile(file.path, size, digest, file.revision, source.label)
