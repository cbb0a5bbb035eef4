"""An inference request refused before it reaches the router still gets its audit row.

The router writes one row per inference request it runs; a body it never sees (bad JSON, a lone
surrogate, a 5,000-digit integer, a wrong field) would leave no trace. This writes that row, with
the refusal's error type, through the same audit sink.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from domain.audit.model import AuditEntry, AuditStatus

log = structlog.get_logger("mlxm.audit")

# The routes whose requests the router audits (their audit `endpoint` is the path).
AUDITED_PATHS = frozenset({
    "/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/audio/speech", "/v1/audio/transcriptions",
    "/v1/embeddings", "/api/chat",
})
MAX_MODEL_LENGTH = 200


def _model_of(data: Any) -> str:
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, str):
        model = data.get("profile_id") if isinstance(data, dict) else None  # /api/chat names a profile
    return model[:MAX_MODEL_LENGTH] if isinstance(model, str) else ""


async def record_refusal(request: Request, error_type: str, data: Any = None) -> None:
    path = request.url.path
    if path not in AUDITED_PATHS:
        return
    container = request.app.state.container
    sink = getattr(container, "audit_sink", None)
    if sink is None:
        return
    clock = container.clock()
    entry = AuditEntry(
        request_id=request.scope.get("state", {}).get("request_id") or "", timestamp=clock.now(),
        model=_model_of(data), backend="none", endpoint=path, duration_ms=0, status=AuditStatus.ERROR,
        error_type=error_type,
    )
    try:
        await run_in_threadpool(sink().record, entry)
    except Exception as exc:  # noqa: BLE001 - the client still gets its 4xx; say why the row is missing
        log.warning("audit row of a refused request not written", error=str(exc), path=path)
