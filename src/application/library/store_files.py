"""Small queries over the model store that several use cases share (no file I/O of their own)."""

from __future__ import annotations

from pathlib import Path

from application.library.ports import ModelStore


def files_under(store: ModelStore, root: Path) -> list[Path]:
    """Every file under `root`, sorted: what `root.rglob("*")` filtered by `is_file()` gives
    (a link to a file counts, a link to a folder is not followed)."""
    found = []
    for folder, _dirs, names in store.walk(root):
        for name in names:
            path = Path(folder) / name
            if store.is_file(path):
                found.append(path)
    return sorted(found)
