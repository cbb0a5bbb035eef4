"""Start-up recovery of the library's files after a crash mid-import or mid-delete.

Called where download crash reconciliation is (server start, and before `mlxm import` / `mlxm rm`):

- `staging/import-<id>/`: an import that died. Its journal (`import_journal`) says whether the
  payload is the user's moved folder: that goes back where it came from, or, when that path is taken
  again, beside it as `<path>.mlxm-recovered-<time>` (reported). It is never deleted: if it cannot be
  returned, the workspace stays. Everything else in the workspace was mlxm's copy and goes.
- `models/.trash/<id>/`: a delete that died. When the model's row is still there the commit
  never happened, so its folders go back; when the row is gone they are deleted.
- `models/.revisions/<key>/<rev>` without any library row: an import whose install happened but
  whose row was never written is indexed again (every file re-hashed against its manifest), and so
  is the installed revision of a downloaded model (a database lost or replaced: `rebuild.py`);
  anything else is only reported. A complete folder is never deleted here.

A workspace or trash entry whose lock another live process holds is left alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from application.library.deletion import TRASH_DIR, trash_lock_key, trash_record
from application.library.import_journal import holds_users_files, journal_path, moved_item, return_moved
from application.library.importing import ImportService
from application.library.rebuild import DownloadedRevisions
from application.library.ports import ModelStore
from application.library.store_files import files_under
from domain.library.layout import MANIFEST_NAME
from application.ports import Clock, UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    staging_removed: list[str] = field(default_factory=list)  # dead import workspaces swept
    restored: list[str] = field(default_factory=list)  # folders put back (a moved import, an uncommitted delete)
    trash_emptied: list[str] = field(default_factory=list)  # committed deletes whose folders are now gone
    adopted: list[str] = field(default_factory=list)  # model ids indexed again
    unindexed: list[str] = field(default_factory=list)  # folders without a row, left for the user
    moved_aside: list[str] = field(default_factory=list)  # a moved import whose old path was taken: put beside it
    restored_imports: list[str] = field(default_factory=list)  # moved imports put back where they came from

    @property
    def changed(self) -> bool:
        return bool(self.staging_removed or self.restored or self.trash_emptied or self.adopted or self.moved_aside)

    def notices(self) -> list[str]:
        """What the user must hear about their own folders (the CLI prints these, the server logs them)."""
        lines = [f"an interrupted import was undone: your files are back at {path}" for path in self.restored_imports]
        lines += [f"an interrupted import was undone, but its folder was taken again: your files are at {aside}"
                  for aside in self.moved_aside]
        lines += [f"left alone: {line}" for line in self.unindexed]
        return lines


@dataclass(frozen=True)
class Interruption:
    """An import or delete that a crash interrupted and recovery has not settled yet."""

    kind: str  # import | delete
    model_id: str
    message: str


class LibraryRecovery:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], layout: ModelStore, importer: ImportService,
                 clock: Clock | None = None, downloaded: DownloadedRevisions | None = None) -> None:
        self._uow_factory = uow_factory
        self._layout = layout
        self._importer = importer
        self._clock = clock
        self._downloaded = downloaded  # indexes downloaded revisions again (None: they are only reported)

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
                if not self._put_back_moved(workspace, report):
                    continue  # the user's folder is still in there: the workspace stays
                self._layout.remove_tree(workspace)
                report.staging_removed.append(str(workspace))
            self._layout.unlink(self._layout.lock_path(workspace.name), missing_ok=True)

    def _put_back_moved(self, workspace: Path, report: RecoveryReport) -> bool:
        """Return the user's moved folder (journal state moving/moved); True when the workspace may go."""
        record = self._layout.read_journal(journal_path(workspace))
        if not holds_users_files(record):
            return True  # mlxm's own copy, or nothing moved
        item = moved_item(workspace, record)
        if not self._layout.lexists(item):
            return True  # installed (adopted below) or already put back
        source = Path(record["source"])
        try:
            where, aside = return_moved(self._layout, item, source, self._now())
        except OSError as exc:
            report.unindexed.append(f"{workspace}: holds your files moved from {source}; could not return them ({exc})")
            return False
        if aside:
            report.moved_aside.append(str(where))
        else:
            report.restored.append(str(where))
            report.restored_imports.append(str(where))
        return True

    def _now(self) -> datetime:
        clock = self._clock or getattr(self._importer, "_clock", None)
        return clock.now() if clock is not None else datetime.now(timezone.utc)

    # -- what list/show report until recovery runs ---------------------------------------------
    def interruptions(self) -> list[Interruption]:
        """Imports and deletes a crash interrupted (their lock is free), without changing anything."""
        found: list[Interruption] = []
        store = self._layout
        staging = store.staging_dir
        for workspace in store.list_dir(staging) if store.is_dir(staging) else ():
            if not workspace.name.startswith("import-") or not store.is_dir(workspace) or store.is_symlink(workspace):
                continue
            if not self._live(workspace.name):
                record = self._layout.read_journal(journal_path(workspace)) or {}
                name = str(record.get("model_id") or Path(str(record.get("source") or workspace.name)).name)
                found.append(Interruption("import", name, f"import of {name} interrupted; run any mlxm command "
                                          "that changes the library (mlxm import, mlxm rm, mlxm serve) to recover"))
        trash_dir = store.models_dir / TRASH_DIR
        for trash in store.list_dir(trash_dir) if store.is_dir(trash_dir) else ():
            if store.is_dir(trash) and not store.is_symlink(trash) and not self._live(trash_lock_key(trash)):
                record = self._layout.read_journal(trash_record(trash)) or {}
                if isinstance(record.get("model_id"), str):
                    model_id = record["model_id"]
                    found.append(Interruption("delete", model_id, f"delete of {model_id} interrupted; run any mlxm "
                                              "command that changes the library (mlxm rm, mlxm import, mlxm serve) "
                                              "to finish it"))
        return found

    def _live(self, key: str) -> bool:
        """Whether a live process holds this lock (looking leaves no new lock file behind)."""
        existed = self._layout.lexists(self._layout.lock_path(key))
        with self._layout.model_lock(key, wait=False) as got:
            pass
        if got and not existed:
            self._layout.unlink(self._layout.lock_path(key), missing_ok=True)
        return not got

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
            elif self._downloaded is not None and self._downloaded.applies(manifest):
                model = self._downloaded.adopt(folder, manifest)
            if model is not None:
                known.add(model.model_id)
                report.adopted.append(model.model_id)
            else:
                report.unindexed.append(f"{folder}: no library row for {manifest.key!r}")
