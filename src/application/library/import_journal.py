"""The journal of one import (`staging/import-<id>/.import.json`), kept by the ModelStore.

Written (durably, `ModelStore.write_journal`) before any file moves. It says whose files the
workspace may hold: `source` (the user's path), `staging` (where the payload goes), `model_id`, and
`state`:
- `copying`: the payload is mlxm's copy (a copy import, or a move across filesystems): disposable;
- `moving`: written BEFORE the rename; from then on a payload in the workspace IS the user's folder
  (the rename is atomic: the folder is either still at `source` or entirely in the workspace);
- `moved`: the rename happened.
Recovery never deletes a payload journaled `moving`/`moved`: `return_moved` puts it back at `source`,
or, when that path is taken again, beside it as `<source>.mlxm-recovered-<time>`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from application.library.ports import ModelStore
from domain.library.layout import MANIFEST_NAME

IMPORT_RECORD = ".import.json"
USERS_STATES = ("moving", "moved")  # a payload in these states belongs to the user


def journal_path(workspace: Path) -> Path:
    return workspace / IMPORT_RECORD


def holds_users_files(record: dict | None) -> bool:
    """Whether a payload in this workspace is the user's own folder (never to be deleted)."""
    if not record or not record.get("move") or not record.get("source"):
        return False
    # A journal from before states existed: a move may have happened, so the payload is the user's.
    return record.get("state", "moving") in USERS_STATES


def moved_item(workspace: Path, record: dict) -> Path:
    payload = workspace / "model"
    return payload / record["file"] if record.get("file") else payload


def return_moved(store: ModelStore, item: Path, source: Path, now: datetime) -> tuple[Path, bool]:
    """Put the user's moved folder (or file) back at `source`; when `source` is taken, beside it.

    Returns where it is now and whether that is the aside path. Raises OSError when neither works
    (e.g. the folder that held `source` is gone): the caller then keeps the workspace, deleting nothing.
    """
    if store.is_dir(item):
        store.unlink(item / MANIFEST_NAME, missing_ok=True)  # written by the install step, not the user's
    if not store.lexists(source):
        store.rename(item, source)
        return source, False
    stamp = now.strftime("%Y%m%dT%H%M%S")
    aside = source.with_name(f"{source.name}.mlxm-recovered-{stamp}")
    counter = 2
    while store.lexists(aside):
        aside = source.with_name(f"{source.name}.mlxm-recovered-{stamp}-{counter}")
        counter += 1
    store.rename(item, aside)
    return aside, True
