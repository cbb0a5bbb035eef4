"""Shell completion of model, profile and download names (click's `_MLXM_COMPLETE`).

Completion runs on every Tab, so it reads names with the standard library's `sqlite3`, read-only,
straight from the library database: no container, no SQLAlchemy, no settings classes. Reading the
database itself (not a names file) means a deleted model is never offered.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Iterable

_MODEL_NAMES = "SELECT model_id FROM models UNION SELECT canonical_id FROM models WHERE canonical_id IS NOT NULL"
_PROFILE_NAMES = "SELECT name FROM execution_profiles"
_DOWNLOAD_IDS = "SELECT id FROM downloads ORDER BY id DESC LIMIT 200"


def _database_file() -> Path | None:
    """The SQLite file the settings would choose; None for another database (no completion from it)."""
    url = os.environ.get("MLX_MANAGER_DATABASE_URL")
    if url:
        prefix = "sqlite:///"
        return Path(url[len(prefix):]).expanduser() if url.startswith(prefix) else None
    home = os.environ.get("MLX_MANAGER_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".mlx-manager") / "mlxm.db"


def _query(sql: str) -> list[str]:
    path = _database_file()
    if path is None or not path.is_file():
        return []
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            return [str(row[0]) for row in connection.execute(sql) if row[0] is not None]
        finally:
            connection.close()
    except sqlite3.Error:  # an older schema, a locked or unreadable file: offer nothing rather than fail a Tab
        return []


def _catalog_names() -> list[str]:
    from importlib import resources

    try:
        raw = resources.files("adapters.catalog").joinpath("catalog.json").read_text(encoding="utf-8")
        entries = json.loads(raw).get("models", [])
    except (OSError, ValueError, AttributeError):
        return []
    names: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            names.append(str(entry.get("id", "")))
            names.extend(str(alias) for alias in entry.get("aliases", []) or [])
    return [name for name in names if name]


def _matching(names: Iterable[str], incomplete: str):
    from click.shell_completion import CompletionItem

    seen: set[str] = set()
    items = []
    for name in names:
        if name.startswith(incomplete) and name not in seen:
            seen.add(name)
            items.append(CompletionItem(name))
    return items


def complete_model(ctx, param, incomplete: str):
    """Library models (ids and canonical ids) and profile names: everything `show`/`run` accept."""
    return _matching([*_query(_MODEL_NAMES), *_query(_PROFILE_NAMES)], incomplete)


def complete_pullable(ctx, param, incomplete: str):
    """Catalog ids and aliases, then library models: what `pull` and `select` accept."""
    return _matching([*_catalog_names(), *_query(_MODEL_NAMES)], incomplete)


def complete_profile(ctx, param, incomplete: str):
    return _matching(_query(_PROFILE_NAMES), incomplete)


def complete_download(ctx, param, incomplete: str):
    return _matching(_query(_DOWNLOAD_IDS), incomplete)
