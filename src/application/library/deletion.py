"""The model delete path's file step, kept consistent with the library index.

Deleting a model touches three things: its library row (and index entry), its folder, and the
links mlxm made for it in other apps. They change together:

1. inside the unit of work, `begin_model_removal` decides which app links are ours (while the
   files they point at still exist), drops the link records, and *renames* the model's folder
   into `models/.trash/<uuid>/` (atomic, undoable);
2. the caller removes the model row and commits;
3. on failure `undo()` renames everything back: the row and its folder are both still there;
   on success `finish()` deletes the trash and the link files.

Only folders mlxm created are moved: an in-place import (`managed=False`), a folder outside the
library, a revision that mlxm adopted rather than downloaded, or whatever the user put at
`models/<key>` in place of mlxm's link stays where it is.
"""

from __future__ import annotations

import contextlib
import json
import os.path
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from application.library.mapping import LinkRemoval, forget_model_links, remove_link_files
from application.library.ports import Linker, ModelStore
from domain.library.models import Model
from domain.paths import is_strictly_inside
from domain.sizes import human_size

TRASH_DIR = ".trash"
REVISIONS_DIR = ".revisions"


@dataclass
class PendingRemoval:
    model_id: str
    trash: Path | None
    moved: list[tuple[Path, Path]] = field(default_factory=list)  # (original, in trash)
    links: LinkRemoval | None = None
    linker: Linker | None = None
    kept: list[str] = field(default_factory=list)  # folders left alone, and why
    library: Path | None = None

    release: Callable[[], None] | None = None  # lets go of the lock that keeps start-up recovery away
    store: ModelStore | None = None  # moves the folders (None: nothing was moved)

    def undo(self) -> None:
        """Put every moved folder back (the database step failed)."""
        try:
            for original, aside in reversed(self.moved):
                self.store.rename(aside, original)
            self.moved.clear()
            self._drop_trash()
        finally:
            self._release()

    def finish(self) -> list[str]:
        """After the commit: delete the trash and the link files that were ours."""
        try:
            self._drop_trash()
        finally:
            self._release()
        for original, _ in self.moved:
            _prune_empty_parents(self.store, original.parent, self.library)
        if self.links is None or self.linker is None:
            return []
        return remove_link_files(self.linker, self.links)

    def _release(self) -> None:
        if self.release is not None:
            release, self.release = self.release, None
            release()

    def _drop_trash(self) -> None:
        if self.trash is not None and self.store.exists(self.trash):
            self.store.remove_tree(self.trash)
        if self.trash is not None:
            self.store.unlink(trash_record(self.trash), missing_ok=True)
            try:
                self.store.rmdir(self.trash.parent)
            except OSError:
                pass


def trash_record(trash: Path) -> Path:
    """`.trash/<id>.json`: whose folders are in `.trash/<id>/` and where they came from."""
    return trash.with_name(trash.name + ".json")


def trash_lock_key(trash: Path) -> str:
    return f"trash-{trash.name}"


def _prune_empty_parents(store: ModelStore, folder: Path, stop_at: Path | None) -> None:
    """`models/org/` once `models/org/name` is gone (never the library folder itself)."""
    while stop_at is not None and is_strictly_inside(folder, stop_at):
        try:
            store.rmdir(folder)
        except OSError:
            return
        folder = folder.parent


def _not_ours(layout: ModelStore, local: Path, revisions: Path) -> str | None:
    """Why `models/<key>` is not mlxm's to delete (None when it is): provenance, never the row's word.

    Ours: only mlxm's link into `.revisions/<key>/`. Anything else there (the user's own folder,
    file or link that replaced mlxm's link) stays.
    """
    if layout.is_symlink(local):
        if layout.realpath(revisions) in layout.realpath(local).parents:
            return None
        return "a link mlxm did not create"
    if not layout.is_dir(local):
        return "a file mlxm did not create"
    # Today's pull, adopt and import write `.revisions/<key>/` + a link here. A real folder is the user's
    # (a copy of a revision, maybe edited, even with mlxm's manifest) or a pre-redesign download: migration
    # 0002 kept those rows `managed` with their flat `models/<alias>` path (adoption.py adopts such folders
    # on a pull). Neither is provably mlxm's untouched files, so it stays; the note says what it holds.
    return "a folder mlxm did not create (mlxm keeps only a link there)"


def _folder_bytes(layout: ModelStore, folder: Path) -> int | None:
    """Bytes of the files under `folder` (links not followed: they free nothing); None when unreadable."""
    total = 0
    try:
        for root, _dirs, files in layout.walk(folder):
            for name in files:
                path = Path(root) / name
                if not layout.is_symlink(path):
                    total += layout.file_size(path)
    except OSError:
        return None
    return total


def begin_model_removal(uow, model: Model, *, models_dir: Path | None, linker: Linker | None,
                        layout: ModelStore | None = None) -> PendingRemoval:
    """Steps 1 of the module docstring; call inside the unit of work that removes the model row."""
    links = forget_model_links(uow, linker, model.model_id) if linker is not None and hasattr(uow, "links") else None
    pending = PendingRemoval(model.model_id, None, links=links, linker=linker)
    if not model.managed or not model.local_path or models_dir is None or layout is None:
        if model.local_path:
            pending.kept.append(f"{model.local_path}: not created by mlxm")
        return pending
    library = Path(os.path.abspath(models_dir))
    local = Path(os.path.abspath(model.local_path))
    if not is_strictly_inside(local, library):
        pending.kept.append(f"{local}: outside the library")
        return pending

    candidates: list[Path] = []
    key = local.relative_to(library).as_posix()
    revisions = library / REVISIONS_DIR / key
    if layout.lexists(local):
        foreign = _not_ours(layout, local, revisions)
        if foreign is None:
            candidates.append(local)
        else:
            # The row goes, the folder stays: refusing would leave a row for a folder mlxm no longer
            # manages, and the user's files are safe either way (the CLI prints this note).
            if layout.is_dir(local) and not layout.is_symlink(local):
                size = _folder_bytes(layout, local)
                held = f" ({human_size(size)})" if size is not None else ""
                pending.kept.append(f"{local}{held}: {foreign}; left alone: delete it yourself to free its space")
            else:
                pending.kept.append(f"{local}: {foreign}; left alone")
    if layout.is_dir(revisions) and not layout.is_symlink(revisions):
        adopted = [child for child in layout.list_dir(revisions)
                   if layout.is_dir(child) and (layout.read_manifest(child) is None
                                                or layout.read_manifest(child).created_by != "mlxm")]
        if adopted:
            # Never delete a folder mlxm did not create: move only the revisions it made.
            pending.kept.extend(f"{child}: adopted, not created by mlxm" for child in adopted)
            candidates.extend(child for child in layout.list_dir(revisions)
                              if child not in adopted and layout.is_dir(child))
        else:
            candidates.append(revisions)

    pending.library = library
    pending.store = layout
    pending.trash = library / TRASH_DIR / uuid.uuid4().hex
    if layout is not None:
        # Held until finish()/undo(): start-up recovery never touches a delete that is still running.
        lock = contextlib.ExitStack()
        lock.enter_context(layout.model_lock(trash_lock_key(pending.trash), wait=False))
        lock_file = layout.lock_path(trash_lock_key(pending.trash))

        def release() -> None:
            lock.close()
            layout.unlink(lock_file, missing_ok=True)

        pending.release = release
    try:
        layout.mkdir(pending.trash, parents=True, exist_ok=True)
        # Written before the first move: after a crash, recovery puts the folders back when the
        # model's row is still there, and deletes them when the row is gone.
        layout.write_text(trash_record(pending.trash), json.dumps({
            "model_id": model.model_id,
            "moves": [[str(original), str(index)] for index, original in enumerate(candidates)],
        }))
        for index, original in enumerate(candidates):
            aside = pending.trash / str(index)
            layout.rename(original, aside)
            pending.moved.append((original, aside))
    except BaseException:
        pending.undo()
        raise
    return pending
