"""Updates and verification of installed models.

* `check_updates` compares each installed model's recorded revision and file hashes with what
  its source serves now, and lists newer catalog IDs that declare they supersede it.
* `update` pulls the new revision beside the old one (through `DownloadService`, which
  switches the library symlink only after every file verified).
* `verify` rehashes installed files against the recorded sizes and sha256s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from application.downloads.service import DownloadService
from application.downloads.progress import ProgressListener, PullResult
from application.downloads.targets import is_fatal_source_error, same_revision
from application.downloads.ports import ModelDownloader
from domain.catalog.model import ChainExhausted, run_failover
from domain.catalog.signed import newer_ids
from domain.library.models import Model
from application.downloads.mirror_listing import listing_sources
from application.downloads.repair import file_problems, is_pulled, repair_hint


@dataclass
class UpdateInfo:
    model_id: str
    installed_revision: str | None
    available_revision: str | None = None
    changed_files: list[str] = field(default_factory=list)
    superseded_by: list[str] = field(default_factory=list)
    # Newer canonical IDs of the same family in the catalog in use (the remote one when configured):
    # suggestions to pull, never switched to automatically, since a new ID is a new model.
    newer_ids: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def update_available(self) -> bool:
        return bool(self.available_revision) and not same_revision(self.available_revision, self.installed_revision)

    def to_dict(self) -> dict:
        return {"model_id": self.model_id, "installed_revision": self.installed_revision,
                "available_revision": self.available_revision, "update_available": self.update_available,
                "changed_files": self.changed_files, "superseded_by": self.superseded_by, "newer_ids": self.newer_ids,
                "error": self.error}


@dataclass
class VerifyReport:
    model_id: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    repair: str | None = None  # how to repair a damaged install (downloads/repair.py), when not ok
    repairable: bool = False  # pulled by mlxm: `DownloadService.repair` can re-fetch the damaged files

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"model_id": self.model_id, "ok": self.ok, "checked": self.checked, "problems": self.problems,
                "repair": self.repair}


@dataclass
class UpdateOutcome:
    model_id: str
    updated: bool
    old_revision: str | None
    new_revision: str | None
    error: str | None = None
    note: str | None = None
    bytes_fetched: int = 0
    bytes_reused: int = 0  # unchanged files linked from the installed revision (delta update)
    # The failure itself, not only its text: the entrypoint maps its kind (a full disk is not a failed source).
    exception: Exception | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "exception"}


class UpdateService:
    def __init__(self, downloads: DownloadService, downloader: ModelDownloader) -> None:
        self._downloads = downloads
        self._downloader = downloader

    def _installed(self, name: str | None) -> list[Model]:
        return self._downloads.installed_models(name)

    def check_updates(self, name: str | None = None) -> list[UpdateInfo]:
        """Per installed model: a newer revision at its source (and which files changed), newer catalog IDs."""
        catalog = self._downloads.catalog
        reports = []
        for model in self._installed(name):
            info = UpdateInfo(model.model_id, model.revision)
            key = model.canonical_id or model.model_id
            info.superseded_by = [m.id for m in catalog.superseded_by(key)]
            info.newer_ids = newer_ids(catalog, key)
            target = self._downloads.target_for_key(model.model_id, None) if model.managed else None
            if target is None or not target.sources:
                info.error = "no source to compare with (registered in place or not from a repository)"
                reports.append(info)
                continue
            staging = self._downloads.layout.staging_root(model.model_id)
            try:
                listing, _ = run_failover(
                    listing_sources(target.sources),  # a hub's listing is the truth, as for a pull
                    lambda s: self._downloader.list_files(s, target.revision, staging),
                    is_fatal_source_error,
                )
            except ChainExhausted as exc:
                info.error = str(exc)
                reports.append(info)
                continue
            except Exception as exc:  # noqa: BLE001 - one model's source problem does not stop the report
                info.error = str(exc)
                reports.append(info)
                continue
            info.available_revision = listing.revision  # type: ignore[attr-defined]
            recorded = {f.path: f for f in model.files}
            for remote in listing.files:  # type: ignore[attr-defined]
                mine = recorded.get(remote.path)
                if mine is None or (remote.size is not None and remote.size != mine.size) or (
                    remote.sha256 and mine.sha256 and remote.sha256.lower() != mine.sha256.lower()
                ):
                    info.changed_files.append(remote.path)
            remote_paths = {f.path for f in listing.files}  # type: ignore[attr-defined]
            info.changed_files += [p for p in recorded if p not in remote_paths]
            reports.append(info)
        return reports

    def update(self, name: str | None = None, listener: ProgressListener | None = None) -> list[UpdateOutcome]:
        """Download newer revisions beside the installed ones; each switches only once fully verified."""
        outcomes = []
        for model in self._installed(name):
            target = self._downloads.target_for_key(model.model_id, None) if model.managed else None
            if target is None:
                # Registered in place, or not from a repository: nothing to update from; not an error.
                outcomes.append(UpdateOutcome(model.model_id, False, model.revision, model.revision,
                                              note="no source: not managed by mlxm downloads"))
                continue
            try:
                result: PullResult = self._downloads.pull_target(target, listener, check_remote=True)
            except Exception as exc:  # noqa: BLE001 - reported per model; the old revision keeps working
                if name is not None:
                    raise
                outcomes.append(UpdateOutcome(model.model_id, False, model.revision, None, str(exc), exception=exc))
                continue
            new = result.model.revision
            outcomes.append(UpdateOutcome(model.model_id, not same_revision(new, model.revision),
                                          model.revision, new, bytes_fetched=result.bytes_fetched,
                                          bytes_reused=result.bytes_reused))
        return outcomes

    def verify(self, name: str | None = None) -> list[VerifyReport]:
        """Rehash installed files (no cached digests) against the recorded sizes and sha256s."""
        reports = []
        for model in self._installed(name):
            report = VerifyReport(model.model_id, checked=len(model.files))
            if not model.files:
                report.problems.append("no recorded files to verify against")
            report.problems += [problem for _, problem in file_problems(self._downloads.layout, model)]
            if model.files and report.problems:
                report.repair = repair_hint(model)
                report.repairable = is_pulled(model)
            reports.append(report)
        return reports
