"""Management routes of the audit context: the audit log and its per-model summary."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from domain.audit.model import AuditQuery
from entrypoints.http.openapi import api_route, parse_query
from entrypoints.http.responses import _c, _json
from entrypoints.http.schemas import Offset, PageLimit


TAGS_AUDIT = ("audit",)


class AuditQueryParams(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, not the unfiltered log

    model: str | None = None
    status: Literal["success", "error", "cancelled"] | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: PageLimit = 50
    offset: Offset = 0
    host: str | None = None  # the server that wrote the rows (several may share one database)


class AuditEntryDTO(BaseModel):
    id: int | None
    request_id: str
    timestamp: datetime
    model: str
    backend: str
    endpoint: str
    duration_ms: int
    status: str
    prompt_tokens: int
    completion_tokens: int
    error_type: str | None = None
    host: str | None = None

    @classmethod
    def from_domain(cls, e) -> "AuditEntryDTO":
        return cls(id=e.id, request_id=e.request_id, timestamp=e.timestamp, model=e.model, backend=e.backend,
                   endpoint=e.endpoint, duration_ms=e.duration_ms, status=e.status.value,
                   prompt_tokens=e.prompt_tokens, completion_tokens=e.completion_tokens, error_type=e.error_type,
                   host=e.host)


class AuditPageDTO(BaseModel):
    items: list[AuditEntryDTO]
    total: int
    limit: int
    offset: int


class SummaryParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime | None = None
    until: datetime | None = None


class ModelUsageDTO(BaseModel):
    model: str
    requests: int
    errors: int
    error_rate: float
    prompt_tokens: int
    completion_tokens: int


class AuditSummaryDTO(BaseModel):
    models: list[ModelUsageDTO]
    requests: int
    errors: int
    error_rate: float
    prompt_tokens: int
    completion_tokens: int


def summary_dto(usages) -> AuditSummaryDTO:
    requests = sum(u.requests for u in usages)
    errors = sum(u.errors for u in usages)
    return AuditSummaryDTO(
        models=[ModelUsageDTO(model=u.model, requests=u.requests, errors=u.errors, error_rate=u.error_rate,
                              prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens) for u in usages],
        requests=requests, errors=errors, error_rate=errors / requests if requests else 0.0,
        prompt_tokens=sum(u.prompt_tokens for u in usages), completion_tokens=sum(u.completion_tokens for u in usages),
    )


# -- audit ------------------------------------------------------------------------------
async def list_audit(request: Request) -> Response:
    """Audit rows, newest first, filtered by model, status and time range (admins only)."""
    params = parse_query(request, AuditQueryParams)
    query = AuditQuery(model=params.model, status=params.status, since=params.since, until=params.until,
                       limit=params.limit, offset=params.offset, host=params.host)
    page = await run_in_threadpool(_c(request).audit_service().query, query)
    return _json(AuditPageDTO(items=[AuditEntryDTO.from_domain(e) for e in page.items], total=page.total,
                              limit=params.limit, offset=params.offset))


async def audit_summary(request: Request) -> Response:
    """Requests, error rate and tokens per model (admins only)."""
    params = parse_query(request, SummaryParams)
    usages = await run_in_threadpool(_c(request).audit_service().summary, params.since, params.until)
    return _json(summary_dto(usages))


routes = [
    api_route("/api/audit", list_audit, "GET", tags=TAGS_AUDIT, query=AuditQueryParams, response=AuditPageDTO,
              error_statuses=(401, 403, 422)),
    api_route("/api/audit/summary", audit_summary, "GET", tags=TAGS_AUDIT, query=SummaryParams,
              response=AuditSummaryDTO, error_statuses=(401, 403, 422)),
]
