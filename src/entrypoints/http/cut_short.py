"""Ending a response whose request was stopped midway (a timeout, the server's shutdown), whatever it had sent."""

from __future__ import annotations

import json

from starlette.types import Message, Receive, Scope, Send

from entrypoints.http.errors import error_response


class ResponseTracker:
    """Wraps `send` and remembers what went out, so a stopped request still gets a well-formed end."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.sse = False
        self.ended = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            content_type = dict(message.get("headers") or []).get(b"content-type", b"")
            self.sse = content_type.startswith(b"text/event-stream")
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.ended = True
        await self._send(message)

    async def end_with_error(self, scope: Scope, receive: Receive, status: int, error_type: str, message: str,
                             path: str | None = None) -> None:
        """Nothing sent yet: a JSON error response. A stream: an SSE error event. Otherwise: end the body."""
        if not self.started:
            path = scope.get("path", "") if path is None else path
            await error_response(status, error_type, message, path=path)(scope, receive, self._send)
        elif self.sse:
            event = json.dumps({"error": {"type": error_type, "message": message}})
            await self._send({"type": "http.response.body", "body": f"data: {event}\n\n".encode(), "more_body": False})
        else:
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
