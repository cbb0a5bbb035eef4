"""Moving an import's bytes: copy (hashing while copying) or move into staging, install, and undo."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

from application.errors import Conflict
from application.library.import_journal import return_moved
from application.library.import_scan import _Scan
from domain.library.layout import MANIFEST_NAME, Manifest
from domain.library.models import ModelFile

log = logging.getLogger(__name__)



class ImportStaging:
    """Steps of `ImportService` that stage, install and undo the files of an import. A mixin, not a collaborator: the steps share the service's layout, unit-of-work factory and scan state; the split is by size, not by state."""

    # -- staging ----------------------------------------------------------------------------
    def _source_of(self, scan: _Scan, relative: str) -> Path:
        if scan.is_file:
            return scan.root
        return scan.links.get(relative) or scan.root / relative

    def _hash_in_place(self, scan: _Scan, relative: str) -> ModelFile:
        return self._hash_file(self._source_of(scan, relative), relative)

    def _hash_file(self, path: Path, relative: str) -> ModelFile:
        size, sha256 = self._layout.hash_file(path)
        return ModelFile(path=relative, size=size, sha256=sha256, source="import")

    def _copy_and_hash(self, scan: _Scan, relative: str, payload: Path) -> ModelFile:
        """Copy one file and hash the bytes written, so the record describes exactly the copy."""
        size, sha256 = self._layout.copy_and_hash(self._source_of(scan, relative), payload / relative)
        return ModelFile(path=relative, size=size, sha256=sha256, source="import")

    def _move_into(self, scan: _Scan, payload: Path) -> Path | None:
        """Rename the source into staging; None when it lives on another filesystem (then copy)."""
        try:
            if scan.is_file:
                self._layout.mkdir(payload)
                self._layout.rename(scan.root, payload / scan.files[0])
            else:
                self._layout.rename(scan.root, payload)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                if self._layout.is_dir(payload) and not self._layout.list_dir(payload):
                    self._layout.rmdir(payload)
                return None
            raise
        return scan.root

    def _put_back(self, payload: Path, original: Path, scan: _Scan) -> Path:
        """The user's moved folder (or file) back where it was, or beside it when that path is taken now.
        Raises OSError when neither works: the caller then keeps the workspace (recovery retries)."""
        item = payload / scan.files[0] if scan.is_file else payload
        where, aside = return_moved(self._layout, item, original, self._clock.now())
        if aside:
            log.warning("%s was taken again during the import: your files are at %s", original, where)
        return where

    def _remove_source(self, scan: _Scan) -> None:
        """After a copy standing in for a move: delete what was imported, and nothing else.

        Hidden entries and special files were never imported, so they stay, and so do the
        folders that still hold them (never an rmtree of the user's folder).
        """
        if scan.is_file:
            self._layout.unlink(scan.root)
            return
        for relative in scan.files:
            path = scan.root / relative
            if self._layout.lexists(path):
                self._layout.unlink(path)  # a symlink goes as a link; its target is removed only if it was imported too
        for folder, dirs, _ in self._layout.walk(scan.root, top_down=False):
            for name in dirs:
                path = Path(folder) / name
                if self._layout.is_symlink(path) and not name.startswith("."):
                    self._layout.unlink(path)  # a link to a folder inside: its files were imported from where they are
                else:
                    try:
                        self._layout.rmdir(path)
                    except OSError:
                        pass  # still holds something that was not imported
        try:
            self._layout.rmdir(scan.root)
        except OSError:
            pass

    def _install(self, model_id: str, revision: str, payload: Path, files: list[ModelFile],
                 scan: _Scan) -> tuple[Path, Path]:
        """Rename the staged folder into `.revisions/<id>/<rev>` and point `models/<id>` at it."""
        link = self._layout.model_path(model_id)
        revision_dir = self._layout.revision_dir(model_id, revision)
        if self._layout.lexists(link) or self._layout.lexists(revision_dir):
            raise Conflict(f"{link} already exists and is not in the library; mlxm will not overwrite it")
        manifest = Manifest(key=model_id, repo_id=None, revision=revision, source=f"import:{scan.root}",
                            files=[{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files])
        self._layout.write_text(payload / MANIFEST_NAME, manifest.to_json())
        self._layout.mkdir(revision_dir.parent, parents=True, exist_ok=True)
        self._layout.rename(payload, revision_dir)
        try:
            self._layout.mkdir(link.parent, parents=True, exist_ok=True)
            self._layout.symlink_relative(link, revision_dir)
        except BaseException:
            self._layout.rename(revision_dir, payload)
            raise
        return link, revision_dir

    def _uninstall(self, link: Path, revision_dir: Path, payload: Path) -> None:
        if self._layout.is_symlink(link):
            self._layout.unlink(link)
        if self._layout.exists(revision_dir):
            self._layout.rename(revision_dir, payload)
            manifest = payload / MANIFEST_NAME
            if self._layout.exists(manifest):
                self._layout.unlink(manifest)
        for parent in (revision_dir.parent,):
            try:
                self._layout.rmdir(parent)
            except OSError:
                pass
