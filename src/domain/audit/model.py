"""The audit log: one row per inference request. It never holds prompt or completion text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from domain.enums import StrEnum
from domain.errors import InvalidParameter

MAX_AUDIT_PAGE = 1000


class AuditStatus(StrEnum):
    SUCCESS = "success"
    ERROR = "error"
    CANCELLED = "cancelled"  # the client went away before the end


@dataclass(frozen=True)
class AuditEntry:
    request_id: str
    timestamp: datetime
    model: str
    backend: str
    endpoint: str
    duration_ms: int
    status: AuditStatus
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error_type: str | None = None
    id: int | None = None
    host: str | None = None  # the mlxm server that served it (several share one database)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", AuditStatus(self.status))
        # The row records what a client sent, even a name with NUL characters, which no database text
        # column holds (PostgreSQL refuses them): shown as U+FFFD, the row is kept.
        for name in ("request_id", "model", "backend", "endpoint", "error_type", "host"):
            value = getattr(self, name)
            if isinstance(value, str) and "\x00" in value:
                object.__setattr__(self, name, value.replace("\x00", "\ufffd"))


@dataclass(frozen=True)
class AuditQuery:
    model: str | None = None
    status: AuditStatus | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0
    host: str | None = None

    def __post_init__(self) -> None:
        if self.status is not None:
            object.__setattr__(self, "status", AuditStatus(self.status))
        for name in ("since", "until"):  # a time without a zone is UTC (rows are stored in UTC)
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=timezone.utc))
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_AUDIT_PAGE:
            raise InvalidParameter("limit", f"must be between 1 and {MAX_AUDIT_PAGE}")
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            raise InvalidParameter("offset", "must be >= 0")
        if self.since and self.until and self.since > self.until:
            raise InvalidParameter("since", "must not be after 'until'")

    def matches(self, entry: AuditEntry) -> bool:
        return (
            (self.model is None or entry.model == self.model)
            and (self.status is None or entry.status is self.status)
            and (self.since is None or entry.timestamp >= self.since)
            and (self.until is None or entry.timestamp <= self.until)
            and (self.host is None or entry.host == self.host)
        )


@dataclass(frozen=True)
class ModelUsage:
    model: str
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def summarise(entries: Iterable[AuditEntry]) -> list[ModelUsage]:
    """Requests, errors and tokens per model, sorted by model name."""
    totals: dict[str, list[int]] = {}
    for e in entries:
        row = totals.setdefault(e.model, [0, 0, 0, 0])
        row[0] += 1
        row[1] += e.status is AuditStatus.ERROR
        row[2] += e.prompt_tokens
        row[3] += e.completion_tokens
    return [ModelUsage(m, *row) for m, row in sorted(totals.items())]
