"""Publishing this server's pool to a database several servers share, and reading every host's.

`mlxm serve` publishes every few seconds, and only writes when what is loaded changed; at
shutdown its rows are cleared. A host that died leaves its rows behind with an old
`updated_at`, which readers can see (they are never taken for live state silently).
"""

from __future__ import annotations

from typing import Callable

from application.ports import Clock
from application.inference.ports import HostPoolEntry


class PoolStatePublisher:
    def __init__(self, uow_factory: Callable, pool, clock: Clock, host: str) -> None:
        self._uow_factory = uow_factory
        self._pool = pool
        self._clock = clock
        self.host = host
        self._last: tuple | None = None

    def _snapshot(self) -> list[HostPoolEntry]:
        now = self._clock.now()
        return [
            HostPoolEntry(self.host, info.model_id, getattr(info.model_type, "value", str(info.model_type)),
                          int(info.size_bytes or 0), info.loaded_at, info.last_used_at, int(info.use_count), now)
            for info in self._pool.loaded()
        ]

    def publish(self, force: bool = False) -> bool:
        """Write this host's rows when the pool changed since the last publish; True when written."""
        entries = self._snapshot()
        key = tuple((e.model_id, e.use_count, e.last_used_at) for e in entries)
        if key == self._last and not force:
            return False
        with self._uow_factory() as uow:
            uow.pool_state.replace(self.host, entries)
            uow.commit()
        self._last = key
        return True

    def clear(self) -> None:
        with self._uow_factory() as uow:
            uow.pool_state.replace(self.host, [])
            uow.commit()
        self._last = ()

    def hosts(self) -> dict[str, list[HostPoolEntry]]:
        """Every host's published pool (this one included), by host name."""
        with self._uow_factory() as uow:
            rows = uow.pool_state.list()
        grouped: dict[str, list[HostPoolEntry]] = {}
        for row in rows:
            grouped.setdefault(row.host, []).append(row)
        return grouped
