"""Per-host rows in a shared database: the pool state each server publishes."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from adapters.sqlalchemy.host_tables import PoolStateRecord
from application.inference.ports import HostPoolEntry

_TABLE = PoolStateRecord.__table__


class SqlAlchemyPoolStateRepository:
    """Write-through (Core statements in the unit of work's transaction; nothing to save at commit)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def save_changes(self) -> None:
        pass

    def replace(self, host: str, entries: list[HostPoolEntry]) -> None:
        self._session.execute(delete(_TABLE).where(_TABLE.c.host == host))
        if entries:
            self._session.execute(_TABLE.insert(), [
                {"host": host, "model_id": e.model_id, "model_type": e.model_type, "size_bytes": e.size_bytes,
                 "loaded_at": e.loaded_at, "last_used_at": e.last_used_at, "use_count": e.use_count,
                 "updated_at": e.updated_at}
                for e in entries
            ])

    def list(self, host: str | None = None) -> list[HostPoolEntry]:
        statement = select(_TABLE).order_by(_TABLE.c.host, _TABLE.c.model_id)
        if host is not None:
            statement = statement.where(_TABLE.c.host == host)
        return [HostPoolEntry(r.host, r.model_id, r.model_type, r.size_bytes, r.loaded_at, r.last_used_at,
                              r.use_count, r.updated_at)
                for r in self._session.execute(statement)]
