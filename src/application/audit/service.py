"""Audit log use cases: record finished requests, query them, summarise, enforce retention."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable

from application.audit.ports import AuditSink
from application.ports import Clock
from application.ports import Page, UnitOfWork
from domain.audit.model import AuditEntry, AuditQuery, ModelUsage


class AuditService:
    def __init__(self, uow: Callable[[], UnitOfWork], clock: Clock, retention_days: int = 30,
                 host: str | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self.retention_days = retention_days
        self.host = host  # stamped on every entry this process writes (one database, several servers)

    def write(self, entries: list[AuditEntry]) -> None:
        """Store a batch in one transaction (called by the sink, off the request path)."""
        if not entries:
            return
        if self.host is not None:
            entries = [e if e.host is not None else replace(e, host=self.host) for e in entries]
        with self._uow() as uow:
            uow.audit.add_many(entries)
            uow.commit()

    def query(self, query: AuditQuery) -> Page:
        with self._uow() as uow:
            return uow.audit.query(query)

    def summary(self, since: datetime | None = None, until: datetime | None = None) -> list[ModelUsage]:
        with self._uow() as uow:
            return uow.audit.summary(since, until)

    def cleanup(self) -> int:
        """Delete rows older than the retention period; 0 days keeps everything."""
        if self.retention_days <= 0:
            return 0
        cutoff = self._clock.now() - timedelta(days=self.retention_days)
        with self._uow() as uow:
            deleted = uow.audit.delete_before(cutoff)
            uow.commit()
            return deleted


class ImmediateAuditSink:
    """Writes each entry at once. For the CLI and unit tests; the server uses a background writer."""

    def __init__(self, service: AuditService) -> None:
        self._service = service

    def record(self, entry: AuditEntry) -> None:
        self._service.write([entry])


class DiscardingAuditSink:
    def record(self, entry: AuditEntry) -> None:  # pragma: no cover - trivial
        pass


__all__ = ["AuditService", "AuditSink", "DiscardingAuditSink", "ImmediateAuditSink"]
