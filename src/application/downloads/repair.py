"""Repair of an installed model: re-fetch only its damaged files from its sources, verify, switch.

`mlxm verify` finds a damaged file (rehashing against the sha256 recorded at install); a pull of an
installed model says "already installed" without rehashing (that would read every byte). A repair is
a pull of the *installed* revision limited to the damaged files, so it keeps the pull's guarantees:

* under the model's lock (one writer per model, across processes), with a Download row, progress,
  pause/resume/cancel and resumable partials in staging;
* each file is fetched from the model's sources with per-file failover and verified against the
  recorded size and sha256 before it counts; a corrupt download is deleted and never installed;
* each verified file is flushed, then replaces its damaged name in one atomic rename
  (`ModelStore.replace_installed_files`); the revision's good files are never touched, so a repair
  that fails or stops leaves the model as it was.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from application.downloads.install import _sources_summary
from application.downloads.ports import RemoteFile, RemoteListing
from application.downloads.progress import ProgressListener, PullResult, _ActivePull
from application.downloads.targets import PullTarget
from application.errors import InvalidRequest, NotInstalled
from application.library.ports import ModelStore
from domain.enums import DownloadStatus
from domain.library.layout import PART_SUFFIX, scratch_name
from domain.library.models import Model, ModelFile

REPAIR_SOURCE = "repair"  # the Download row's source while only damaged files are fetched


def file_problems(store: ModelStore, model: Model) -> list[tuple[ModelFile, str]]:
    """Installed files that differ from what was recorded at install: (record, problem), rehashed
    without cached digests. The problem text is what `mlxm verify` prints."""
    root = Path(model.local_path)  # type: ignore[arg-type]
    problems: list[tuple[ModelFile, str]] = []
    for recorded in model.files:
        path = root / recorded.path
        if not store.is_file(path):
            problems.append((recorded, f"{recorded.path}: missing"))
            continue
        size = store.file_size(path)
        if size != recorded.size:
            problems.append((recorded, f"{recorded.path}: expected {recorded.size} bytes, found {size} bytes"))
            continue
        if recorded.sha256:
            digest = store.sha256_of(path, use_cache=False)
            if digest != recorded.sha256.lower():
                problems.append((recorded, f"{recorded.path}: expected sha256 {recorded.sha256}, found sha256 {digest}"))
    return problems


def is_pulled(model: Model) -> bool:
    """Downloaded by mlxm from a source it can ask again (not imported from a folder, not registered in place)."""
    return bool(model.managed) and not (model.source or "").startswith("import")


def repair_hint(model: Model) -> str:
    """How to repair a damaged install: a pulled model re-fetches its damaged files; an imported one cannot."""
    if is_pulled(model):
        return f"mlxm verify --repair {model.model_id}"
    return f"re-import {model.model_id} from a good copy (`mlxm import PATH --name {model.model_id}`)"


class Repairing:
    """Steps of `DownloadService` that repair an installed model. A mixin, not a collaborator object:
    a repair runs as a pull (the service's locks, rows, table of active pulls and transfer loop)."""

    def repair(self, name: str, listener: ProgressListener | None = None) -> PullResult:
        """Re-fetch the damaged files of installed model `name` and wait (nothing when all verify)."""
        return self._wait(self._start(self._repair_target(name), listener, check_remote=False, repair=True))

    def start_repair(self, name: str, listener: ProgressListener | None = None):
        """`repair` in the background; returns its Download row."""
        active = self._start(self._repair_target(name), listener, check_remote=False, repair=True)
        return self.get(active.download_id)

    def _repair_target(self, name: str) -> PullTarget:
        model = self.installed_models(name)[0]
        if not is_pulled(model) or self.layout.installed_revision_dir(model.model_id) is None:
            raise InvalidRequest(f"{model.model_id} was imported, not pulled: mlxm has no source to re-fetch its "
                                 f"files from; {repair_hint(model)}")
        target = self.target_for_key(model.model_id, model.revision)
        if target is None or not target.sources:
            raise InvalidRequest(f"{model.model_id} has no source to re-fetch its files from")
        return target

    def _repair(self, active: _ActivePull) -> PullResult:
        """The worker's part, under the model's lock: find the damaged files, fetch, verify, switch."""
        key = active.target.key
        installed = self._installed_model(key)
        if installed is None:
            raise NotInstalled(f"{key} is not installed; pull it with `mlxm pull {key}`")
        damaged = file_problems(self.layout, installed)
        if not damaged:
            download = self._complete_row(active, installed, note="nothing to repair: every file verified")
            return PullResult(installed, download, active.notes, already_installed=True)
        revision = installed.revision or ""
        scratch = self.layout.scratch_for(key, revision)
        files = [RemoteFile(f.path, f.size, f.sha256, revision, scratch / (scratch_name(f.path) + PART_SUFFIX))
                 for f, _ in damaged]
        listing = RemoteListing(installed.repo_id or key, revision, tuple(files))
        total = sum(f.size or 0 for f in files)
        self._transition(active.download_id, DownloadStatus.STARTING)
        self._begin_repair_row(active, listing, total)
        self._check_disk_space(key, revision, total)
        staging = self.layout.staging_for(key, revision)
        self.layout.clear_staging(key, keep_revision=revision)  # a repair's own partials resume
        self.layout.prune_unlisted(staging, {f.path for f in files})
        records = self._fetch_all(active, files, staging, listing)  # each verified against the record
        self.layout.replace_installed_files(key, staging, [r.path for r in records])
        model = self._record_repaired(active, installed, records)
        self.layout.clear_staging(key)
        active.notes.append(f"repaired {len(records)} file(s): {', '.join(r.path for r in records)}")
        fetched = sum(r.size for r in records)
        return PullResult(model, self.get(active.download_id), active.notes, bytes_fetched=fetched)

    def _begin_repair_row(self, active: _ActivePull, listing: RemoteListing, total: int) -> None:
        with self._db_lock, self._uow_factory() as uow:
            row = uow.downloads.get(active.download_id)
            assert row is not None
            row.revision = listing.revision
            row.total_bytes = total
            row.downloaded_bytes = 0
            row.files = [f.path for f in listing.files]
            row.source = REPAIR_SOURCE
            row.transition(DownloadStatus.DOWNLOADING, now=self._clock.now())
            uow.downloads.add(row)
            uow.commit()

    def _record_repaired(self, active: _ActivePull, installed: Model, records: list[ModelFile]) -> Model:
        fresh = {r.path: r for r in records}
        with self._db_lock, self._uow_factory() as uow:
            model = uow.models.get(installed.model_id) or installed
            model.files = [replace(fresh[f.path], revision=f.revision) if f.path in fresh else f for f in model.files]
            model.source = _sources_summary(model.files) or model.source
            uow.models.add(model)
            row = uow.downloads.get(active.download_id)
            assert row is not None
            row.downloaded_bytes = sum(r.size for r in records)
            row.transition(DownloadStatus.COMPLETED, now=self._clock.now())
            uow.downloads.add(row)
            uow.commit()
            return model
