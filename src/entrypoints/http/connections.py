"""Connection-level limits for `mlxm serve`: header and body deadlines and a connection cap.

uvicorn's h11 protocol has a keep-alive timeout but no deadline for a request's head or body, and
`limit_concurrency` only answers 503 once a request head is complete: idle sockets with unfinished
headers stay open forever and, past the open-file limit, starve `accept()` (every new client, even
`/api/health`, then times out). This subclass adds what is missing (uvicorn offers no hook for it):

- a request head must be complete within `header_timeout` of the connection (or of the previous
  response); then 408 and close. Dripping header bytes does not extend it;
- a request body must be complete within `body_timeout` of its head; then the connection closes
  (the app sees a client disconnect);
- at most `max_connections` connections: when one more arrives, the connection that has waited longest
  for a request head (an idle or stalled one) is closed to make room; only if every connection is busy
  with a request is the new one closed.
"""

from __future__ import annotations

import asyncio
import logging
import resource

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("mlxm.http.connections")

_TIMEOUT_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
FD_RESERVE_MIN = 64  # descriptors kept for the database, model files, logs and threads
# asyncio accepts up to `backlog` sockets per loop turn, and a connection closed by the cap frees its
# descriptor two turns later: the cap leaves three batches of descriptors free as well.
ACCEPT_BACKLOG = 128


def open_file_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (macOS starts processes at 256); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    for candidate in (target, 10240):  # macOS refuses more than OPEN_MAX (10240) for an unlimited hard limit
        if candidate <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (candidate, hard))
            return candidate
        except (ValueError, OSError):
            continue
    return soft


def default_max_connections(fd_limit: int | None = None) -> int:
    """Leave room under the open-file limit for everything else the server opens."""
    limit = fd_limit if fd_limit is not None else open_file_limit()
    return max(16, min(4096, limit - max(FD_RESERVE_MIN, limit // 8) - 3 * ACCEPT_BACKLOG))


class GuardedH11Protocol(H11Protocol):
    """H11Protocol with a head deadline, a body deadline and a connection cap (see the module docstring)."""

    header_timeout = 10.0
    body_timeout = 60.0
    max_connections = 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_since: float | None = None
        self._seen_cycle = None
        super().connection_made(transport)
        self._await_head()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self._waiting_since = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        cycle = self.cycle
        if cycle is not None and cycle is not self._seen_cycle:  # a request head arrived
            self._seen_cycle = cycle
            self._waiting_since = None
            self._cancel_deadline()
            if cycle.more_body:
                self._deadline = self.loop.call_later(self.body_timeout, self._body_late, cycle)
        elif cycle is not None and not cycle.more_body and self._waiting_since is None:
            self._cancel_deadline()  # the body is complete

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request's cycle
        if self.transport.is_closing() or self.cycle is None:
            return
        if self.cycle is not self._seen_cycle:  # a pipelined request is already running
            self._seen_cycle = self.cycle
            self._cancel_deadline()
        elif not self.cycle.more_body:
            self._await_head()  # keep-alive: the next head has the same deadline

    # -- deadlines ------------------------------------------------------------------------
    def _await_head(self) -> None:
        self._cancel_deadline()
        self._waiting_since = self.loop.time()
        self._deadline = self.loop.call_later(self.header_timeout, self._head_late)

    def _cancel_deadline(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_late(self) -> None:
        self._deadline = None
        if self._waiting_since is not None and not self.transport.is_closing():
            if self.conn.trailing_data[0]:  # part of a head arrived: say why; an idle socket just closes
                self.transport.write(_TIMEOUT_408)
            self.transport.close()

    def _body_late(self, cycle) -> None:
        self._deadline = None
        if cycle is self.cycle and cycle.more_body and not self.transport.is_closing():
            if not cycle.response_started:
                self.transport.write(_TIMEOUT_408)
            self.transport.close()

    # -- the cap --------------------------------------------------------------------------
    def _make_room(self) -> None:
        idle = [c for c in self.connections
                if c is not self and getattr(c, "_waiting_since", None) is not None and not c.transport.is_closing()]
        victim = min(idle, key=lambda c: c._waiting_since) if idle else self
        victim.transport.close()
        _throttled_warning("connection limit reached: closed the connection waiting longest for a request")


_last_warning = {"at": 0.0, "suppressed": 0}


def _throttled_warning(message: str) -> None:
    """At most one line per 10 s: a flood of connections must not become a flood of log lines."""
    import time

    now = time.monotonic()
    if now - _last_warning["at"] >= 10.0:
        suppressed = _last_warning["suppressed"]
        log.warning(message + (f" ({suppressed} more since the last report)" if suppressed else ""))
        _last_warning.update(at=now, suppressed=0)
    else:
        _last_warning["suppressed"] += 1


def guarded_protocol(header_timeout: float, body_timeout: float, max_connections: int) -> type[GuardedH11Protocol]:
    """A protocol class for `uvicorn.Config(http=...)` with these limits."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {
        "header_timeout": header_timeout, "body_timeout": body_timeout, "max_connections": max_connections,
    })
