"""Start-up recovery of the library's files after a crash mid-import or mid-delete.

Called where download crash reconciliation is (server start, and before `mlxm import` / `mlxm rm`):

- `staging/import-<id>/`: an import that died. A folder it had *moved* there is the user's and
  goes back where it came from; everything else in the workspace was mlxm's copy and goes.
- `models/.trash/<id>/`: a delete that died. When the model's row is still there the commit
  never happened, so its folders go back; when the row is gone they are deleted.
- `models/.revisions/<key>/<rev>` without any library row: an import whose install happened but
  whose row was never written is indexed again (every file re-hashed against its manifest);
  anything else is only reported. A complete folder is never deleted here.

A workspace or trash entry whose lock another live process holds is left alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from application.library.deletion import TRASH_DIR, trash_lock_key, trash_record
from application.library.importing import IMPORT_RECORD, ImportService
from application.library.ports import ModelStore
from application.library.store_files import files_under
from domain.library.layout import MANIFEST_NAME
from application.ports import UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    staging_removed: list[str] = field(default_factory=list)  # dead import workspaces swept
    restored: list[str] = field(default_factory=list)  # folders put back (a moved import, an uncommitted delete)
    trash_emptied: list[str] = field(default_factory=list)  # committed deletes whose folders are now gone
    adopted: list[str] = field(default_factory=list)  # model ids indexed again
    unindexed: list[str] = field(default_factory=list)  # folders without a row, left for the user

    @property
    def changed(self) -> bool:
        return bool(self.staging_removed or self.restored or self.trash_emptied or self.adopted)


class LibraryRecovery:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], layout: ModelStore, importer: ImportService) -> None:
        self._uow_factory = uow_factory
        self._layout = layout
        self._importer = importer

    def recover(self) -> RecoveryReport:
        """Sweep what crashed imports and deletes left behind; see the module docstring."""
        report = RecoveryReport()
        self._sweep_imports(report)
        self._sweep_trash(report)
        self._adopt_orphans(report)
        for line in report.unindexed:
            log.warning("library folder without a library row, left alone: %s", line)
        return report

    # -- imports ---------------------------------------------------------------------------
    def _sweep_imports(self, report: RecoveryReport) -> None:
        staging = self._layout.staging_dir
        if not self._layout.is_dir(staging):
            return
        for workspace in [p for p in self._layout.list_dir(staging) if p.name.startswith("import-")]:
            if not self._layout.is_dir(workspace) or self._layout.is_symlink(workspace):
                continue
            with self._layout.model_lock(workspace.name, wait=False) as got:
                if not got:
                    continue  # a live import
                self._put_back_moved(workspace, report)
                self._layout.remove_tree(workspace)
                report.staging_removed.append(str(workspace))
            self._layout.unlink(self._layout.lock_path(workspace.name), missing_ok=True)

    def _put_back_moved(self, workspace: Path, report: RecoveryReport) -> None:
        try:
            record = json.loads(self._layout.read_text(workspace / IMPORT_RECORD))
        except (OSError, ValueError):
            record = {}
        payload = workspace / "model"
        if not isinstance(record, dict) or not record.get("move") or not record.get("source"):
            return
        source = Path(record["source"])
        moved = payload / record["file"] if record.get("file") else payload
        if self._layout.lexists(moved) and not self._layout.lexists(source):
            if self._layout.is_dir(moved):
                self._layout.unlink(moved / MANIFEST_NAME, missing_ok=True)  # written by the install step, not the user's
            self._layout.rename(moved, source)
            report.restored.append(str(source))

    # -- deletes ---------------------------------------------------------------------------
    def _sweep_trash(self, report: RecoveryReport) -> None:
        trash_dir = self._layout.models_dir / TRASH_DIR
        if not self._layout.is_dir(trash_dir):
            return
        for trash in [p for p in self._layout.list_dir(trash_dir)
                      if self._layout.is_dir(p) and not self._layout.is_symlink(p)]:
            key = trash_lock_key(trash)
            with self._layout.model_lock(key, wait=False) as got:
                if not got:
                    continue  # a live delete
                self._settle_trash(trash, report)
            self._layout.unlink(self._layout.lock_path(key), missing_ok=True)
        try:
            self._layout.rmdir(trash_dir)
        except OSError:
            pass

    def _settle_trash(self, trash: Path, report: RecoveryReport) -> None:
        record_path = trash_record(trash)
        try:
            record = json.loads(self._layout.read_text(record_path))
            model_id, moves = record["model_id"], [(Path(o), trash / i) for o, i in record["moves"]]
        except (OSError, ValueError, KeyError, TypeError):
            report.unindexed.append(f"{trash}: a delete's leftovers without a record")
            return
        with self._uow_factory() as uow:
            still_there = uow.models.get(model_id) is not None
        if still_there:
            for original, aside in moves:
                if self._layout.lexists(aside) and not self._layout.lexists(original):
                    self._layout.mkdir(original.parent, parents=True, exist_ok=True)
                    self._layout.rename(aside, original)
                    report.restored.append(str(original))
            leftovers = any(self._layout.lexists(aside) for _, aside in moves)
            if leftovers:
                report.unindexed.append(f"{trash}: could not put everything back")
                return
        else:
            report.trash_emptied.append(str(trash))
        self._layout.remove_tree(trash)
        self._layout.unlink(record_path, missing_ok=True)

    # -- installed revisions without a row ----------------------------------------------------
    def _adopt_orphans(self, report: RecoveryReport) -> None:
        revisions = self._layout.revisions_dir
        if not self._layout.is_dir(revisions):
            return
        with self._uow_factory() as uow:
            # Rows name their install by model id, canonical id or repo id (`org/name` keys).
            known = {n for m in uow.models.list() for n in (m.model_id, m.canonical_id, m.repo_id) if n}
        for manifest_path in [p for p in files_under(self._layout, revisions) if p.name == MANIFEST_NAME]:
            folder = manifest_path.parent
            manifest = self._layout.read_manifest(folder)
            if manifest is None or not manifest.key or manifest.key in known:
                continue
            model = None
            if manifest.created_by == "mlxm" and (manifest.source or "").startswith("import:"):
                model = self._importer.adopt_installed(folder, manifest)
            if model is not None:
                known.add(model.model_id)
                report.adopted.append(model.model_id)
            else:
                report.unindexed.append(f"{folder}: no library row for {manifest.key!r}")
