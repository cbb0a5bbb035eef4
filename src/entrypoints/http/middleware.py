"""Pure ASGI middleware (no BaseHTTPMiddleware: it would hide client disconnects from streams)."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http.errors import error_response
from entrypoints.logging import bind_request_id, clear_request_context

log = structlog.get_logger("mlxm.http")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Gives every request an id (or keeps a sane `X-Request-ID`), logs it on every line, returns it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        clear_request_context()
        bind_request_id(request_id)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status["code"],
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            # The id stays bound: the 500 handler (ServerErrorMiddleware, outside this one) logs with it.
            # Each request runs in its own task context, and the next request starts by clearing it.


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413: by Content-Length up front, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                too_large = False
            if too_large:
                response = error_response(
                    413, "request_too_large", f"request body exceeds the limit of {self.max_bytes} bytes",
                    path=scope.get("path", ""),
                )
                await response(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the endpoint's `await request.body()`; the handler map makes it a 413.
                    raise HTTPException(413, f"request body exceeds the limit of {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)


class StartedResponseGuard:
    """An error after a response started (its headers are sent) is one log line, not a traceback.

    Starlette's exception handling finds a handler for such an error, cannot use it, and raises "Caught
    handled exception, but response already started" instead. Nothing can be answered any more: the
    server closes the connection, so the client sees the body cut short rather than a truncated body that
    looks complete. Streams of events end themselves in-band (`event_stream.EventStreamResponse`); this
    catches the rest, e.g. a static file that cannot be read once its headers are out.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if not started:
                raise  # the exception handlers and the 500 path still answer it
            wrapped = isinstance(exc, RuntimeError) and str(exc).startswith("Caught handled exception")
            cause = exc.__cause__ if wrapped and exc.__cause__ is not None else exc  # Starlette's wrapper: the cause
            log.warning("response failed after it started; connection closed", path=scope.get("path"),
                        error_type=type(cause).__name__, error=str(cause))
