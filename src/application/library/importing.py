"""The import pipeline: bring a local model folder (or one weights file) into the library.

1. **Scan** the source: refuse symlinks that leave the folder, index files pointing outside it,
   and pickle-based weights (unless `allow_pickle`); require weights.
2. **Stage**: copy (hashing while copying) or move the files into `staging/import-<uuid>/`;
   `in_place` registers the folder where it is (the model is then `managed=False`, and mlxm
   never deletes that folder).
3. **Infer** type and family from `config.json` and safetensors tensor names, with a
   confidence; weak or disagreeing signals become review reasons on the model.
4. **Install + index in one step**: rename the staged folder into the library layout and add
   the model in one unit of work. If the database step fails, the rename is undone (a move is
   put back where it came from), so there is never an unindexed folder nor a dangling row.

Importing content that is already in the library (same files, same sha256s) is a no-op that
reports the existing model.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from application.errors import Conflict, InvalidRequest
from application.library.import_journal import IMPORT_RECORD, journal_path  # noqa: F401 - IMPORT_RECORD re-exported
from application.library.import_scan import ImportScanning, _is_hidden, _Scan
from application.library.import_staging import ImportStaging
from application.library.ports import ModelStore
from application.library.store_files import files_under
from domain.library.layout import Manifest
from application.catalog.ports import CatalogProvider
from application.ports import Clock
from application.ports import UnitOfWork
from domain.enums import DownloadStatus
from domain.library.importing import TypeInference, content_digest, infer_model_type, normalise_model_id
from domain.library.models import Model, ModelFile


IMPORTED_TAG = "imported"




NEEDS_REVIEW_TAG = "needs-review"


@dataclass(frozen=True)
class ImportRequest:
    path: str
    name: str | None = None
    move: bool = False
    in_place: bool = False
    allow_pickle: bool = False


@dataclass(frozen=True)
class ImportResult:
    model: Model
    created: bool
    mode: str  # copy | move | in-place
    content_sha256: str
    inference: TypeInference | None = None

    @property
    def review_reasons(self) -> list[str]:
        return list(self.model.review_reasons)


class ImportService(ImportScanning, ImportStaging):
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        layout: ModelStore,
        catalog: CatalogProvider,
        clock: Clock,
    ) -> None:
        self._uow_factory = uow_factory
        self._layout = layout
        self._catalog = catalog
        self._clock = clock

    # -- the use case ---------------------------------------------------------------------
    def import_model(self, request: ImportRequest) -> ImportResult:
        """Import `request.path`; see the module docstring for the steps and guarantees."""
        if request.move and request.in_place:
            raise InvalidRequest("--move and --in-place exclude each other")
        scan = self._scan(Path(request.path).expanduser(), allow_pickle=request.allow_pickle)
        if request.in_place and scan.is_file:
            raise InvalidRequest("--in-place needs a model folder, not a single file")
        model_id = normalise_model_id(request.name or self._default_name(scan))
        self._check_catalog_name(model_id)

        if request.in_place:
            files = [self._hash_in_place(scan, rel) for rel in scan.files]
            return self._register(scan, files, model_id, payload=scan.root, mode="in-place", request=request)

        workspace = self._layout.staging_dir / f"import-{uuid.uuid4().hex}"
        # Held while this import runs: start-up recovery leaves a live import's workspace alone.
        with self._layout.model_lock(workspace.name, wait=False):
            try:
                return self._import_staged(request, scan, model_id, workspace)
            finally:
                self._layout.unlink(self._layout.lock_path(workspace.name), missing_ok=True)

    def _import_staged(self, request: ImportRequest, scan: _Scan, model_id: str, workspace: Path) -> ImportResult:
        payload = workspace / "model"
        self._layout.mkdir(workspace, parents=True)
        # Journaled (durably) before anything moves: recovery must know whose folder the workspace holds.
        renaming = request.move and not scan.links
        record = {"model_id": model_id, "source": str(scan.root), "staging": str(payload), "move": request.move,
                  "file": scan.files[0] if scan.is_file else None, "state": "moving" if renaming else "copying",
                  "started_at": self._clock.now().isoformat()}
        self._layout.write_journal(journal_path(workspace), record)
        moved_from: Path | None = None
        try:
            if renaming:
                moved_from = self._move_into(scan, payload)
                # Moved: the payload is the user's. Not moved (another filesystem): what follows is a copy.
                self._layout.write_journal(journal_path(workspace),
                                           {**record, "state": "moved" if moved_from is not None else "copying"})
            if moved_from is None:
                files = [self._copy_and_hash(scan, rel, payload) for rel in scan.files]
            else:
                files = [self._hash_file(payload / rel, rel) for rel in scan.files]
            result = self._register(scan, files, model_id, payload=payload,
                                    mode="move" if request.move else "copy", request=request)
        except BaseException:
            if moved_from is not None and self._layout.exists(payload):
                self._put_back(payload, moved_from, scan)
            self._layout.remove_tree(workspace)
            raise
        if not result.created and moved_from is not None:
            # Already in the library: a no-op, so the user's files go back where they were.
            self._put_back(payload, moved_from, scan)
        elif result.created and request.move and moved_from is None:
            # Moved across filesystems (or from a folder with inner links): copied, now remove the original.
            self._remove_source(scan)
        self._layout.remove_tree(workspace)
        return result

    @staticmethod
    def _default_name(scan: _Scan) -> str:
        name = scan.root.name
        return name.rsplit(".", 1)[0] if scan.is_file else name

    def _check_catalog_name(self, model_id: str) -> None:
        entry = self._catalog.load_catalog().find(model_id)
        if entry is not None:
            raise Conflict(f"{model_id!r} is a catalog name (of {entry.id}); choose another --name for an imported model")

    # -- inference --------------------------------------------------------------------------
    def infer(self, folder: Path, files: list[str]) -> TypeInference:
        """Type and family from `config.json` and the safetensors headers under `folder`."""
        config = None
        unreadable = None
        if "config.json" in files:
            try:
                loaded = json.loads(self._layout.read_text(folder / "config.json"))
                config = loaded if isinstance(loaded, dict) else None
                if config is None:
                    unreadable = "config.json is not a JSON object"
            except (OSError, ValueError) as exc:
                unreadable = f"config.json is unreadable ({exc.__class__.__name__})"
        tensors: list[str] = []
        for relative in files:
            if relative.endswith(".safetensors"):
                tensors.extend(self._layout.safetensors_tensor_names(folder / relative, relative))
        inference = infer_model_type(config, tensors, has_weights=any(f.endswith(".safetensors") for f in files),
                                     sentence_transformers="modules.json" in files)
        if unreadable:
            inference = TypeInference(inference.model_type, inference.family, inference.confidence,
                                      inference.signals, (unreadable, *inference.review_reasons))
        return inference

    # -- install + index ----------------------------------------------------------------------
    def _register(self, scan: _Scan, files: list[ModelFile], model_id: str, *, payload: Path, mode: str,
                  request: ImportRequest) -> ImportResult:
        digest = content_digest((f.path, f.sha256 or "") for f in files if not _is_hidden(f.path))
        inference = self.infer(payload, [f.path for f in files])
        with self._uow_factory() as uow:
            existing = self._same_content(uow, digest)
            if existing is not None:
                return ImportResult(existing, False, mode, digest, inference)
            if uow.models.find(model_id) is not None:
                raise Conflict(f"a different model is already named {model_id!r}; choose another --name")
            revision = f"import-{digest[:12]}"
            model = Model(
                model_id=model_id,
                model_type=inference.model_type,
                family=inference.family,
                size_bytes=sum(f.size for f in files),
                status=DownloadStatus.COMPLETED,
                revision=revision,
                source=f"import:{scan.root}",
                tags=[IMPORTED_TAG] + ([NEEDS_REVIEW_TAG] if inference.needs_review else []),
                description=f"Imported from {scan.root}",
                downloaded_at=self._clock.now(),
                managed=mode != "in-place",
                files=files,
                review_reasons=list(inference.review_reasons),
            )
            if mode == "in-place":
                model.local_path = str(scan.root)
                uow.models.add(model)
                uow.commit()
                return ImportResult(model, True, mode, digest, inference)

            link, revision_dir = self._install(model_id, revision, payload, files, scan)
            try:
                model.local_path = str(link)
                uow.models.add(model)
                uow.commit()
            except BaseException:
                self._uninstall(link, revision_dir, payload)
                raise
            return ImportResult(model, True, mode, digest, inference)

    def adopt_installed(self, revision_dir: Path, manifest: Manifest) -> Model | None:
        """Index an import that a crash left installed without its row (start-up recovery).

        Every file is hashed again and must match the manifest written at install time; a
        mismatch is not adopted (None), and the folder stays for the user to look at.
        """
        link = self._layout.model_path(manifest.key)
        if not self._layout.is_symlink(link) or self._layout.realpath(link) != self._layout.realpath(revision_dir):
            return None
        relatives = sorted(rel for rel in (p.relative_to(revision_dir).as_posix()
                                           for p in files_under(self._layout, revision_dir)) if not _is_hidden(rel))
        files = [self._hash_file(revision_dir / rel, rel) for rel in relatives]
        expected = {(f.get("path"), f.get("sha256")) for f in manifest.files}
        if not files or {(f.path, f.sha256) for f in files} != expected:
            return None
        source = (manifest.source or "import:").removeprefix("import:")
        digest = content_digest((f.path, f.sha256 or "") for f in files if not _is_hidden(f.path))
        inference = self.infer(revision_dir, relatives)
        model = Model(
            model_id=manifest.key,
            model_type=inference.model_type,
            family=inference.family,
            local_path=str(link),
            size_bytes=sum(f.size for f in files),
            status=DownloadStatus.COMPLETED,
            revision=manifest.revision,
            source=manifest.source,
            tags=[IMPORTED_TAG] + ([NEEDS_REVIEW_TAG] if inference.needs_review else []),
            description=f"Imported from {source} (recovered after an interrupted import)",
            downloaded_at=self._clock.now(),
            managed=True,
            files=files,
            review_reasons=list(inference.review_reasons),
        )
        from domain.library.overlays import adopt_overlays, overlays_from_list

        # The user's corrections (mlxm edit) outlive the database: the manifest carries them.
        overlays = overlays_from_list(manifest.key, manifest.overlays)
        adopt_overlays(model, overlays)
        with self._uow_factory() as uow:
            if uow.models.find(manifest.key) is not None or self._same_content(uow, digest) is not None:
                return None
            uow.models.add(model)
            if overlays.items:
                uow.overlays.add(overlays)
            uow.commit()
        return model

    def _same_content(self, uow: UnitOfWork, digest: str) -> Model | None:
        for model in uow.models.list():
            visible = [f for f in model.files if not _is_hidden(f.path)]
            if visible and all(f.sha256 for f in visible):
                if content_digest((f.path, f.sha256 or "") for f in visible) == digest:
                    return model
        return None
