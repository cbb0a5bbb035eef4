"""Stopping running requests when the server shuts down (`MLX_SERVER_SHUTDOWN_GRACE_SECONDS`).

Every HTTP request runs inside a cancel scope the `ShutdownDrain` knows. At shutdown the server
(`entrypoints/cli/serve_server.py`) lets running requests finish for the grace period, then cancels
their scopes: the handler's await is cancelled the way a client disconnect cancels it, so a stream's
producer is told to stop and generation stops at its next token. The client of a started stream gets an
SSE error event (`unavailable`: the server is shutting down) and the end of the body; a request that
had not answered yet gets 503. The request then ends normally for uvicorn (no task cancellation, no
"Exception in ASGI application" traceback).
"""

from __future__ import annotations

import json

import anyio
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http.errors import error_response

log = structlog.get_logger("mlxm.shutdown")

MESSAGE = "the server is shutting down; the request was stopped"


class ShutdownDrain:
    """The cancel scopes of the requests running now; `cancel_all` stops them (on the event loop)."""

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        self.cancelled = False

    def __len__(self) -> int:
        return len(self._scopes)

    def cancel_all(self) -> int:
        self.cancelled = True
        scopes = list(self._scopes)
        for scope in scopes:
            scope.cancel()
        return len(scopes)


class ShutdownDrainMiddleware:
    def __init__(self, app: ASGIApp, drain: ShutdownDrain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = {"started": False, "sse": False, "ended": False}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                content_type = dict(message.get("headers") or []).get(b"content-type", b"")
                state["sse"] = content_type.startswith(b"text/event-stream")
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["ended"] = True
            await send(message)

        with anyio.CancelScope() as cancel_scope:
            if self.drain.cancelled:  # arrived on a kept-alive connection after the cancel
                cancel_scope.cancel()
            self.drain._scopes.add(cancel_scope)
            try:
                await self.app(scope, receive, tracking_send)
            finally:
                self.drain._scopes.discard(cancel_scope)
        if not cancel_scope.cancelled_caught or state["ended"]:
            return
        path = scope.get("path", "")
        log.info("request stopped by the server's shutdown", path=path)
        try:
            if not state["started"]:
                await error_response(503, "unavailable", MESSAGE, path=path)(scope, receive, send)
            elif state["sse"]:
                event = json.dumps({"error": {"type": "unavailable", "message": MESSAGE}})
                await send({"type": "http.response.body", "body": f"data: {event}\n\n".encode(), "more_body": False})
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away meanwhile: nothing left to tell it
            pass
