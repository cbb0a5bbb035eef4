"""The library rows of a pull: early metadata while bytes stream, the installed model at the end."""

from __future__ import annotations

import json
from pathlib import Path

from application.downloads.progress import _ActivePull
from application.downloads.targets import infer_type_and_family
from application.downloads.verification import _same_path
from application.downloads.ports import RemoteListing
from application.library.ports import ModelStore
from domain.catalog.model import ModelSource
from domain.downloads.model import Download
from domain.downloads.rank_files import TAG_PREFIX
from domain.enums import DownloadStatus
from domain.library.models import Model, ModelFile


def _sources_summary(records: list[ModelFile]) -> str | None:
    labels = sorted({r.source for r in records if r.source})
    return ", ".join(labels) or None


def _read_json(store: ModelStore, path: Path) -> dict | None:
    try:
        data = json.loads(store.read_text(path))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class InstallRecords:
    """Steps of `DownloadService` that write the Model and Download rows of an install. A mixin, not a collaborator object: every step shares the service's locks, unit-of-work factory and table of active pulls, and the split is by size, not by state."""

    # -- internals: rows ------------------------------------------------------------------------
    def _installed_model(self, key: str) -> Model | None:
        with self._db_lock, self._uow_factory() as uow:
            model = uow.models.get(key)
        if model is None or not model.is_installed:
            return None
        if not self.layout.exists(Path(model.local_path)):  # type: ignore[arg-type]
            return None
        return model

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
            config = json.loads(self.layout.read_text(config_path))
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
        config = _read_json(self.layout, local_path / "config.json")
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
            # A rank's files only (`mlxm pull --rank`): tagged, so a later full pull fetches the rest.
            model.tags = [t for t in model.tags if not t.startswith(TAG_PREFIX)]
            if target.shard is not None:
                model.tags.append(target.shard.tag)
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
                            and _same_path(self.layout, Path(stale.local_path), adopted_from):
                        uow.models.remove(stale.model_id)
                        active.notes.append(f"library entry {stale.model_id} (the adopted folder) is now {model.model_id}")
            row = uow.downloads.get(active.download_id)
            assert row is not None
            row.downloaded_bytes = model.size_bytes
            row.transition(DownloadStatus.COMPLETED, now=self._clock.now())
            uow.downloads.add(row)
            uow.commit()
            return model
