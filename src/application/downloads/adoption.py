"""Adopting a legacy folder (`models/<alias>`) instead of downloading it again, only with matching provenance."""

from __future__ import annotations

from pathlib import Path

from application.downloads.progress import PullResult, _ActivePull
from application.downloads.verification import _same_path, _verify
from application.errors import Conflict, IntegrityError
from domain.library.layout import Manifest
from application.downloads.ports import RemoteListing
from domain.library.models import ModelFile


class Adoption:
    """Steps of `DownloadService` that adopt an existing folder with matching provenance. A mixin, not a collaborator object: every step shares the service's locks, unit-of-work factory and table of active pulls, and the split is by size, not by state."""

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
        elif self.layout.is_symlink(key_path) and self.layout.exists(key_path) \
                and self.layout.installed_revision_dir(target.key) is None:
            raise Conflict(f"{key_path} is a link mlxm did not create (to {self.layout.realpath(key_path)}); "
                           "it is left alone")
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
            records = [ModelFile(f.path, self.layout.file_size(folder / f.path), self.layout.sha256_of(folder / f.path, use_cache=False),
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
        manifest = self.layout.read_manifest(folder)
        repo = manifest.repo_id if manifest is not None else None
        if repo is None:
            with self._db_lock, self._uow_factory() as uow:
                for model in uow.models.list():
                    if model.local_path and _same_path(self.layout, Path(model.local_path), folder):
                        repo = model.repo_id
                        break
        if repo is None:
            return "no record of which repository it came from"
        if repo.lower() != listing.repo_id.lower():
            return f"it came from {repo}, not {listing.repo_id}"
        link = self.layout.first_symlink(folder)
        if link is not None:
            # Verified through a link, the bytes live elsewhere: moving the folder could leave it dangling.
            return f"it holds a symbolic link ({link.relative_to(folder)}); only real files are adopted"
        for f in listing.files:
            path = folder / f.path
            if not self.layout.is_file(path):
                return f"{f.path} is missing"
            try:
                _verify(self.layout, f, path, use_cache=False)
            except IntegrityError as exc:
                return str(exc)
        return None
