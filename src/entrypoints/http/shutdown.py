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

import anyio
import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from entrypoints.http.cut_short import ResponseTracker

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
        tracker = ResponseTracker(send)
        with anyio.CancelScope() as cancel_scope:
            if self.drain.cancelled:  # arrived on a kept-alive connection after the cancel
                cancel_scope.cancel()
            self.drain._scopes.add(cancel_scope)
            try:
                await self.app(scope, receive, tracker.send)
            finally:
                self.drain._scopes.discard(cancel_scope)
        if not cancel_scope.cancelled_caught or tracker.ended:
            return
        path = scope.get("path", "")
        log.info("request stopped by the server's shutdown", path=path)
        try:
            await tracker.end_with_error(scope, receive, 503, "unavailable", MESSAGE, path=path)
        except OSError:  # the client went away meanwhile: nothing left to tell it
            pass
