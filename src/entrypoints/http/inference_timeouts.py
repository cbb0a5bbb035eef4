"""Per-endpoint limits on inference requests (`MLX_SERVER_TIMEOUT_{CHAT,COMPLETIONS,EMBEDDINGS}_SECONDS`).

A request past its limit is cancelled the way a client disconnect cancels it: the handler's await is
cancelled, the stream's producer is told to stop, and generation stops at its next token. The client
gets 504 (`backend_timeout`) when no response has started; a stream that has started gets an SSE error
event and ends. A limit of 0 means none. Work that is one blocking call (a model load, the prefill
before the first token, an embeddings batch) finishes that call before the cancellation takes effect.
"""

from __future__ import annotations

import anyio
import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from entrypoints.http.cut_short import ResponseTracker

log = structlog.get_logger("mlxm.timeouts")

CHAT_PATHS = ("/v1/chat/completions", "/v1/messages", "/v1/responses", "/api/chat")
COMPLETIONS_PATHS = ("/v1/completions",)
EMBEDDINGS_PATHS = ("/v1/embeddings",)


def limits_from(server) -> dict[str, float]:
    """Path -> seconds, for the endpoints that have a limit."""
    limits: dict[str, float] = {}
    for paths, seconds in ((CHAT_PATHS, server.timeout_chat_seconds),
                           (COMPLETIONS_PATHS, server.timeout_completions_seconds),
                           (EMBEDDINGS_PATHS, server.timeout_embeddings_seconds)):
        if seconds > 0:
            limits.update(dict.fromkeys(paths, seconds))
    return limits


class InferenceTimeoutMiddleware:
    def __init__(self, app: ASGIApp, limits: dict[str, float]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").rstrip("/")
        limit = self.limits.get(path) if scope["type"] == "http" and scope.get("method") == "POST" else None
        if not limit:
            await self.app(scope, receive, send)
            return
        tracker = ResponseTracker(send)
        with anyio.move_on_after(limit) as deadline:
            await self.app(scope, receive, tracker.send)
        if not deadline.cancelled_caught or tracker.ended:
            return
        message = f"the request took longer than its {limit:g} s limit and was stopped"
        log.warning("inference request timed out", path=path, limit_seconds=limit)
        await tracker.end_with_error(scope, receive, 504, "backend_timeout", message, path=path)
