"""`SqliteHubSearchCache`: hub search answers in their own SQLite file (`<home>/cache/search.sqlite`).

Kept apart from the library database (Pumas' design): it is a disposable cache, so a plain
stdlib sqlite3 file with one table is enough; a corrupt or foreign file is replaced, never fatal.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from application.catalog.hub_search import HubModel

_SCHEMA = "CREATE TABLE IF NOT EXISTS searches (key TEXT PRIMARY KEY, fetched_at TEXT NOT NULL, results TEXT NOT NULL)"


class SqliteHubSearchCache:
    def __init__(self, path: Path, max_entries: int = 2000) -> None:
        self._path = Path(path)
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self._path, timeout=5)
        try:
            connection.execute(_SCHEMA)
        except sqlite3.DatabaseError:
            connection.close()
            self._path.unlink(missing_ok=True)  # only ever our own cache file: rebuild it
            connection = sqlite3.connect(self._path, timeout=5)
            connection.execute(_SCHEMA)
        return connection

    def get(self, key: str) -> tuple[list[HubModel], datetime] | None:
        with self._lock:
            connection = self._connect()
            try:
                row = connection.execute("SELECT fetched_at, results FROM searches WHERE key = ?", (key,)).fetchone()
            finally:
                connection.close()
        if row is None:
            return None
        try:
            return [_load(item) for item in json.loads(row[1])], datetime.fromisoformat(row[0])
        except (ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, models: list[HubModel], fetched_at: datetime) -> None:
        payload = json.dumps([_dump(m) for m in models])
        with self._lock:
            connection = self._connect()
            try:
                with connection:
                    connection.execute(
                        "INSERT OR REPLACE INTO searches (key, fetched_at, results) VALUES (?, ?, ?)",
                        (key, fetched_at.isoformat(), payload))
                    connection.execute(
                        "DELETE FROM searches WHERE key NOT IN "
                        "(SELECT key FROM searches ORDER BY fetched_at DESC LIMIT ?)", (self._max_entries,))
            finally:
                connection.close()


def _dump(model: HubModel) -> dict:
    return {
        "repo_id": model.repo_id, "downloads": model.downloads, "likes": model.likes,
        "last_modified": model.last_modified.isoformat() if model.last_modified else None,
        "pipeline_tag": model.pipeline_tag, "library_name": model.library_name,
        "size_bytes": model.size_bytes, "tags": list(model.tags),
    }


def _load(data: dict) -> HubModel:
    modified = data.get("last_modified")
    return HubModel(
        repo_id=data["repo_id"], downloads=data.get("downloads"), likes=data.get("likes"),
        last_modified=datetime.fromisoformat(modified) if modified else None,
        pipeline_tag=data.get("pipeline_tag"), library_name=data.get("library_name"),
        size_bytes=data.get("size_bytes"), tags=tuple(data.get("tags") or ()),
    )
