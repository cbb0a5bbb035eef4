"""In-memory fake of the per-host pool state repository."""

from __future__ import annotations

from dataclasses import replace

from application.inference.ports import HostPoolEntry


class InMemoryPoolStateRepository:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], HostPoolEntry] = {}

    def replace(self, host: str, entries: list[HostPoolEntry]) -> None:
        self._rows = {key: row for key, row in self._rows.items() if key[0] != host}
        for entry in entries:
            self._rows[(host, entry.model_id)] = replace(entry, host=host)

    def list(self, host: str | None = None) -> list[HostPoolEntry]:
        return [row for key, row in sorted(self._rows.items()) if host is None or key[0] == host]
