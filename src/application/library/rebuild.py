"""The library row of a downloaded model, written again from its installed revision (the database was lost).

Start-up recovery finds `models/.revisions/<key>/<rev>/.mlxm.json` without a library row. A revision mlxm
downloaded (or adopted with verified provenance) that `models/<key>` points at is indexed again when every
file its manifest lists is there with the listed size and sha256: repo, revision and files from the
manifest; type, family, aliases, tags and description from the catalog (else from config.json); and the
user's overlays (mlxm edit) from the manifest, over those values.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from pathlib import Path
from typing import Callable

from application.catalog.ports import CatalogProvider
from application.library.ports import ModelStore
from application.ports import Clock, UnitOfWork
from domain.enums import DownloadStatus
from domain.library.importing import infer_family, infer_model_type
from domain.library.layout import Manifest
from domain.library.models import Model, ModelFile
from domain.library.overlays import adopt_overlays, overlays_from_list


class DownloadedRevisions:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], store: ModelStore, catalog: CatalogProvider,
                 clock: Clock) -> None:
        self._uow_factory = uow_factory
        self._store = store
        self._catalog = catalog
        self._clock = clock

    @staticmethod
    def applies(manifest: Manifest) -> bool:
        return (manifest.created_by in ("mlxm", "adopted") and bool(manifest.repo_id)
                and not (manifest.source or "").startswith("import:"))

    def adopt(self, folder: Path, manifest: Manifest) -> Model | None:
        """Index the revision again; None (left for the user) when it is not the installed one or a file differs."""
        store = self._store
        if not self.applies(manifest):
            return None
        installed = store.installed_revision_dir(manifest.key)
        if installed is None or store.realpath(installed) != store.realpath(folder):
            return None  # an older revision an update left behind, or a link mlxm did not make
        # The pull that writes this row holds the model's lock: a revision mid-install is not an orphan.
        with store.model_lock(manifest.key, wait=False) as got:
            if not got:
                return None
            files = self._verified_files(folder, manifest)
            if not files:
                return None
            model = self._model(folder, manifest, files)
            overlays = overlays_from_list(manifest.key, manifest.overlays)
            adopt_overlays(model, overlays)
            with self._uow_factory() as uow:
                if uow.models.find(manifest.key) is not None:
                    return None
                uow.models.add(model)
                if overlays.items:
                    uow.overlays.add(overlays)
                uow.commit()
        return model

    def _verified_files(self, folder: Path, manifest: Manifest) -> list[ModelFile]:
        store, files = self._store, []
        for entry in manifest.files:
            relative = entry.get("path") if isinstance(entry, dict) else None
            if not isinstance(relative, str) or not relative or PurePosixPath(relative).is_absolute() \
                    or ".." in PurePosixPath(relative).parts:
                return []
            path = folder / relative
            if not store.is_file(path) or store.file_size(path) != entry.get("size") \
                    or store.sha256_of(path) != entry.get("sha256"):
                return []
            files.append(ModelFile(relative, entry["size"], entry["sha256"], manifest.revision, manifest.source))
        return files

    def _model(self, folder: Path, manifest: Manifest, files: list[ModelFile]) -> Model:
        entry = self._catalog.load_catalog().find(manifest.key)
        cat = entry if entry is not None and entry.id == manifest.key else None
        model = Model(model_id=manifest.key, repo_id=manifest.repo_id, canonical_id=cat.id if cat else None,
                      local_path=str(self._store.model_path(manifest.key)), size_bytes=sum(f.size for f in files),
                      status=DownloadStatus.COMPLETED, revision=manifest.revision, source=manifest.source,
                      downloaded_at=self._clock.now(), managed=True, files=files)
        if cat is not None:
            model.model_type, model.family = cat.model_type, cat.family
            model.aliases, model.tags, model.description = list(cat.aliases), list(cat.tags), cat.description
            return model
        config = self._config(folder)
        model.model_type = infer_model_type(config).model_type if config is not None else None
        model.family = infer_family(config)
        return model

    def _config(self, folder: Path) -> dict | None:
        try:
            data = json.loads(self._store.read_text(folder / "config.json"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None
