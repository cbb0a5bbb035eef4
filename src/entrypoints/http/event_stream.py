"""Server-sent event responses whose body, once started, always ends cleanly.

After the headers are sent an error can no longer become a 4xx/5xx answer. Left to Starlette, an
exception from the body (an OSError reading the disk, a database error) reaches its exception
middleware, which finds a handler, cannot use it, and logs "Caught handled exception, but response
already started" with a traceback, while the client sees a connection cut mid-chunk. Here the error
ends the stream instead: the route's own error event if it has one, a clean end of the body, and one
log line that says what happened.
"""

from __future__ import annotations

from typing import AsyncIterator, Callable

import structlog
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = structlog.get_logger("mlxm.http")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class EventStreamResponse(StreamingResponse):
    """`text/event-stream` over `events`; an error after the start ends the stream (see the module)."""

    def __init__(self, events: AsyncIterator[str], *,
                 error_event: Callable[[Exception], str] | None = None) -> None:
        self._error_event = error_event
        self._path = ""
        super().__init__(self._guarded(events), media_type="text/event-stream", headers=SSE_HEADERS)

    async def _guarded(self, events: AsyncIterator[str]) -> AsyncIterator[str]:
        try:
            async for event in events:
                yield event
        except Exception as exc:  # noqa: BLE001 - the headers are out: report in-band and end, never re-raise
            log.warning("stream ended by an error after it started", path=self._path,
                        error_type=type(exc).__name__, error=str(exc))
            if self._error_event is not None:
                yield self._error_event(exc)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._path = scope.get("path", "")
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            # ASGI 2.4 servers raise OSError from `send` once the client is gone, which Starlette turns
            # into ClientDisconnect; nobody is left to answer, so it is a log line, not an error.
            log.info("client disconnected during a stream", path=self._path)
