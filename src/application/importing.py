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

import errno
import hashlib
import json
import os
import shutil
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from application.errors import Conflict, InvalidRequest
from application.library_layout import MANIFEST_NAME, LibraryLayout, Manifest
from application.ports.catalog import CatalogProvider
from application.ports.clock import Clock
from application.ports.repositories import UnitOfWork
from domain.enums import DownloadStatus
from domain.importing import (
    UnsafeImport,
    TypeInference,
    content_digest,
    infer_model_type,
    is_safe_relative_path,
    normalise_model_id,
    pickle_weight_files,
    weight_files,
)
from domain.models import Model, ModelFile

_CHUNK = 4 * 1024 * 1024
# A safetensors header beyond this is not a real checkpoint (real ones are a few MB at most).
_MAX_HEADER_BYTES = 100 * 1024 * 1024
IMPORTED_TAG = "imported"
IMPORT_RECORD = ".import.json"  # in staging/import-<id>/: where the payload came from
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


@dataclass
class _Scan:
    root: Path  # the real folder (or the file's real path)
    is_file: bool
    files: list[str]  # relative POSIX paths, sorted
    links: dict[str, Path] = field(default_factory=dict)  # relative path -> real file, for in-folder symlinks


def _is_hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


class ImportService:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        layout: LibraryLayout,
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
                self._layout.lock_path(workspace.name).unlink(missing_ok=True)

    def _import_staged(self, request: ImportRequest, scan: _Scan, model_id: str, workspace: Path) -> ImportResult:
        payload = workspace / "model"
        workspace.mkdir(parents=True)
        # What a crash must put back: a moved folder is the user's, never swept with the workspace.
        (workspace / IMPORT_RECORD).write_text(json.dumps({
            "source": str(scan.root), "move": request.move, "file": scan.files[0] if scan.is_file else None,
        }), encoding="utf-8")
        moved_from: Path | None = None
        try:
            if request.move and not scan.links:
                moved_from = self._move_into(scan, payload)
            if moved_from is None:
                files = [self._copy_and_hash(scan, rel, payload) for rel in scan.files]
            else:
                files = [self._hash_file(payload / rel, rel) for rel in scan.files]
            result = self._register(scan, files, model_id, payload=payload,
                                    mode="move" if request.move else "copy", request=request)
        except BaseException:
            if moved_from is not None and payload.exists():
                self._put_back(payload, moved_from, scan)
            shutil.rmtree(workspace, ignore_errors=True)
            raise
        if not result.created and moved_from is not None:
            # Already in the library: a no-op, so the user's files go back where they were.
            self._put_back(payload, moved_from, scan)
        elif result.created and request.move and moved_from is None:
            # Moved across filesystems (or from a folder with inner links): copied, now remove the original.
            self._remove_source(scan)
        shutil.rmtree(workspace, ignore_errors=True)
        return result

    # -- scan -----------------------------------------------------------------------------
    def _scan(self, source: Path, *, allow_pickle: bool) -> _Scan:
        if not os.path.lexists(source):
            raise InvalidRequest(f"{source}: no such file or folder")
        real = Path(os.path.realpath(source))
        if real.is_file():
            name = real.name
            if not weight_files([name]):
                raise InvalidRequest(f"{source} is not a weights file (.safetensors) nor a model folder")
            scan = _Scan(root=real, is_file=True, files=[name])
        elif real.is_dir():
            scan = self._scan_folder(real)
        else:
            raise InvalidRequest(f"{source} is neither a file nor a folder")
        pickled = pickle_weight_files(scan.files)
        if pickled and not allow_pickle:
            raise UnsafeImport(
                "refusing pickle-based weights (they can run code when loaded); pass --allow-pickle to import anyway",
                pickled,
            )
        if not weight_files(scan.files):
            raise InvalidRequest(f"{source} holds no weights (.safetensors)")
        return scan

    def _scan_folder(self, root: Path) -> _Scan:
        files: list[str] = []
        links: dict[str, Path] = {}
        escapes: list[str] = []
        for folder, dirs, names in os.walk(root):
            here = Path(folder)
            kept = []
            for name in sorted(dirs):
                path = here / name
                relative = path.relative_to(root).as_posix()
                if name.startswith("."):
                    continue
                if path.is_symlink():
                    if not _inside(Path(os.path.realpath(path)), root):
                        escapes.append(relative)
                    # A link to a folder inside: its files are imported from where they really are.
                    continue
                kept.append(name)
            dirs[:] = kept
            for name in sorted(names):
                path = here / name
                relative = path.relative_to(root).as_posix()
                if _is_hidden(relative):
                    continue
                if path.is_symlink():
                    target = Path(os.path.realpath(path))
                    if not _inside(target, root):
                        escapes.append(relative)
                        continue
                    if not target.is_file():
                        escapes.append(relative)  # dangling or a special file
                        continue
                    links[relative] = target
                elif not path.is_file():
                    continue  # sockets, fifos...
                files.append(relative)
        if escapes:
            raise UnsafeImport(
                "refusing paths that escape the model folder through symlinks (e.g. a Hugging Face cache "
                "snapshot: copy it with `cp -RL` first)", sorted(escapes))
        if not files:
            raise InvalidRequest(f"{root} is empty")
        self._check_index_files(root, files)
        return _Scan(root=root, is_file=False, files=sorted(files), links=links)

    @staticmethod
    def _check_index_files(root: Path, files: list[str]) -> None:
        """A sharded checkpoint's index must only name shards inside the folder, and all of them."""
        present = set(files)
        for relative in files:
            if not relative.endswith(".index.json"):
                continue
            try:
                data = json.loads((root / relative).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise InvalidRequest(f"{relative}: unreadable index file") from None
            weight_map = data.get("weight_map") if isinstance(data, dict) else None
            if not isinstance(weight_map, dict):
                continue
            base = relative.rsplit("/", 1)[0] + "/" if "/" in relative else ""
            shards = {str(v) for v in weight_map.values()}
            unsafe = sorted(s for s in shards if not is_safe_relative_path(s))
            if unsafe:
                raise UnsafeImport(f"{relative} points outside the model folder", unsafe)
            missing = sorted(s for s in shards if base + s not in present)
            if missing:
                raise InvalidRequest(f"{relative} names shards that are missing: {', '.join(missing)}")

    @staticmethod
    def _default_name(scan: _Scan) -> str:
        name = scan.root.name
        return name.rsplit(".", 1)[0] if scan.is_file else name

    def _check_catalog_name(self, model_id: str) -> None:
        entry = self._catalog.load_catalog().find(model_id)
        if entry is not None:
            raise Conflict(f"{model_id!r} is a catalog name (of {entry.id}); choose another --name for an imported model")

    # -- staging ----------------------------------------------------------------------------
    def _source_of(self, scan: _Scan, relative: str) -> Path:
        if scan.is_file:
            return scan.root
        return scan.links.get(relative) or scan.root / relative

    def _hash_in_place(self, scan: _Scan, relative: str) -> ModelFile:
        return self._hash_file(self._source_of(scan, relative), relative)

    @staticmethod
    def _hash_file(path: Path, relative: str) -> ModelFile:
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return ModelFile(path=relative, size=size, sha256=digest.hexdigest(), source="import")

    def _copy_and_hash(self, scan: _Scan, relative: str, payload: Path) -> ModelFile:
        """Copy one file and hash the bytes written, so the record describes exactly the copy."""
        target = payload / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with open(self._source_of(scan, relative), "rb") as src, open(target, "xb") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
        return ModelFile(path=relative, size=size, sha256=digest.hexdigest(), source="import")

    def _move_into(self, scan: _Scan, payload: Path) -> Path | None:
        """Rename the source into staging; None when it lives on another filesystem (then copy)."""
        try:
            if scan.is_file:
                payload.mkdir()
                os.rename(scan.root, payload / scan.files[0])
            else:
                os.rename(scan.root, payload)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                if payload.is_dir() and not any(payload.iterdir()):
                    payload.rmdir()
                return None
            raise
        return scan.root

    @staticmethod
    def _put_back(payload: Path, original: Path, scan: _Scan) -> None:
        if scan.is_file:
            os.rename(payload / scan.files[0], original)
        else:
            for extra in (MANIFEST_NAME,):
                with_extra = payload / extra
                if with_extra.exists():
                    with_extra.unlink()
            os.rename(payload, original)

    @staticmethod
    def _remove_source(scan: _Scan) -> None:
        """After a copy standing in for a move: delete what was imported, and nothing else.

        Hidden entries and special files were never imported, so they stay, and so do the
        folders that still hold them (never an rmtree of the user's folder).
        """
        if scan.is_file:
            scan.root.unlink()
            return
        for relative in scan.files:
            path = scan.root / relative
            if os.path.lexists(path):
                path.unlink()  # a symlink goes as a link; its target is removed only if it was imported too
        for folder, dirs, _ in os.walk(scan.root, topdown=False):
            for name in dirs:
                path = Path(folder) / name
                if path.is_symlink() and not name.startswith("."):
                    path.unlink()  # a link to a folder inside: its files were imported from where they are
                else:
                    try:
                        path.rmdir()
                    except OSError:
                        pass  # still holds something that was not imported
        try:
            scan.root.rmdir()
        except OSError:
            pass

    # -- inference --------------------------------------------------------------------------
    def infer(self, folder: Path, files: list[str]) -> TypeInference:
        """Type and family from `config.json` and the safetensors headers under `folder`."""
        config = None
        unreadable = None
        if "config.json" in files:
            try:
                loaded = json.loads((folder / "config.json").read_text(encoding="utf-8"))
                config = loaded if isinstance(loaded, dict) else None
                if config is None:
                    unreadable = "config.json is not a JSON object"
            except (OSError, ValueError) as exc:
                unreadable = f"config.json is unreadable ({exc.__class__.__name__})"
        tensors: list[str] = []
        for relative in files:
            if relative.endswith(".safetensors"):
                tensors.extend(read_safetensors_tensor_names(folder / relative, relative))
        inference = infer_model_type(config, tensors, has_weights=any(f.endswith(".safetensors") for f in files))
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
        if not link.is_symlink() or link.resolve() != revision_dir.resolve():
            return None
        relatives = sorted(rel for rel in (p.relative_to(revision_dir).as_posix() for p in revision_dir.rglob("*")
                                           if p.is_file()) if not _is_hidden(rel))
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
        with self._uow_factory() as uow:
            if uow.models.find(manifest.key) is not None or self._same_content(uow, digest) is not None:
                return None
            uow.models.add(model)
            uow.commit()
        return model

    def _same_content(self, uow: UnitOfWork, digest: str) -> Model | None:
        for model in uow.models.list():
            visible = [f for f in model.files if not _is_hidden(f.path)]
            if visible and all(f.sha256 for f in visible):
                if content_digest((f.path, f.sha256 or "") for f in visible) == digest:
                    return model
        return None

    def _install(self, model_id: str, revision: str, payload: Path, files: list[ModelFile],
                 scan: _Scan) -> tuple[Path, Path]:
        """Rename the staged folder into `.revisions/<id>/<rev>` and point `models/<id>` at it."""
        link = self._layout.model_path(model_id)
        revision_dir = self._layout.revision_dir(model_id, revision)
        if os.path.lexists(link) or os.path.lexists(revision_dir):
            raise Conflict(f"{link} already exists and is not in the library; mlxm will not overwrite it")
        manifest = Manifest(key=model_id, repo_id=None, revision=revision, source=f"import:{scan.root}",
                            files=[{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files])
        (payload / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        revision_dir.parent.mkdir(parents=True, exist_ok=True)
        os.rename(payload, revision_dir)
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(revision_dir, link.parent), link)
        except BaseException:
            os.rename(revision_dir, payload)
            raise
        return link, revision_dir

    @staticmethod
    def _uninstall(link: Path, revision_dir: Path, payload: Path) -> None:
        if link.is_symlink():
            link.unlink()
        if revision_dir.exists():
            os.rename(revision_dir, payload)
            manifest = payload / MANIFEST_NAME
            if manifest.exists():
                manifest.unlink()
        for parent in (revision_dir.parent,):
            try:
                parent.rmdir()
            except OSError:
                pass


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def read_safetensors_tensor_names(path: Path, label: str | None = None) -> list[str]:
    """Tensor names from a safetensors header: 8-byte little-endian length, then that much JSON.

    Raises `InvalidRequest` for a file that is not a well-formed safetensors file (a header that
    does not fit the file, or data offsets past its end), so corrupt weights are never imported.
    """
    label = label or path.name
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise InvalidRequest(f"{label}: not a safetensors file (too short)")
        (length,) = struct.unpack("<Q", prefix)
        if length > _MAX_HEADER_BYTES or 8 + length > size:
            raise InvalidRequest(f"{label}: not a safetensors file (header length {length} does not fit)")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except ValueError:
        raise InvalidRequest(f"{label}: not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise InvalidRequest(f"{label}: not a safetensors file (header is not an object)")
    data_size = size - 8 - length
    names = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets) or not 0 <= offsets[0] <= offsets[1] <= data_size):
            raise InvalidRequest(f"{label}: tensor {name!r} lies outside the file (truncated or corrupt)")
        names.append(name)
    return sorted(names)
