"""Ports of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Protocol

from application.ports import Page
from domain.audit.model import AuditEntry, AuditQuery, ModelUsage


class AuditRepository(Protocol):
    def add_many(self, entries: Iterable[AuditEntry]) -> None: ...
    def query(self, query: AuditQuery) -> Page:
        """Newest first; filters apply before the page is cut, `total` counts every match."""
        ...
    def summary(self, since: datetime | None = None, until: datetime | None = None) -> list[ModelUsage]: ...
    def delete_before(self, cutoff: datetime) -> int:
        """Remove rows older than `cutoff`; returns how many went."""
        ...


class AuditSink(Protocol):
    """Where finished requests report. `record` must not wait for storage (streams stay fast)."""

    def record(self, entry: AuditEntry) -> None: ...
