"""The request being served (endpoint, request id), for the audit log of routed inference.

Set by the HTTP auth middleware, read by the routed inference service the composition root builds;
its own module so that neither of them imports the other.
"""

from __future__ import annotations

from contextvars import ContextVar

from application.routing.service import RequestContext

REQUEST_CONTEXT: ContextVar[RequestContext | None] = ContextVar("mlxm_request_context", default=None)


def current_request_context() -> RequestContext:
    """The endpoint and request id of the HTTP request being served (defaults outside one)."""
    return REQUEST_CONTEXT.get() or RequestContext()
