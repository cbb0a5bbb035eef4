"""GET /metrics (Prometheus text format) and the middleware that counts HTTP requests.

When auth is on (or the request arrived on a non-loopback address), /metrics needs an admin key
or the separate `MLX_MANAGER_METRICS_TOKEN`, sent as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from application.errors import Unauthorized
from entrypoints.http.auth import auth_required, reached_from_outside
from entrypoints.http.errors import error_response

OTHER = "other"


def _route_template(scope: Scope) -> str:
    """The matched route's path template (bounded), or "other" (a 404 must not mint a label)."""
    app = scope.get("app")
    router = getattr(app, "router", None)
    for route in getattr(router, "routes", ()):
        if isinstance(route, (Route, Mount)):
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                return route.path if isinstance(route, Route) else route.path + "/*"
    return OTHER


class MetricsMiddleware:
    """Pure ASGI: counts every HTTP request by method, route template and status, and times it."""

    def __init__(self, app: ASGIApp, container) -> None:
        self.app = app
        self._container = container

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            method = scope.get("method", "GET")
            method = method if method in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} else OTHER
            self._container.metrics().observe_http(
                method, _route_template(scope), status["code"], time.perf_counter() - started
            )


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "").strip()
    return value[7:].strip() or None if value[:7].lower() == "bearer " else None


async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format)."""
    container = request.app.state.container
    settings = container.settings()
    if auth_required(settings) or reached_from_outside(request.scope):
        presented = _bearer(request)
        token = settings.manager.metrics_token
        allowed = bool(presented and token and hmac.compare_digest(presented, token.get_secret_value()))
        if not allowed:
            try:
                principal = await run_in_threadpool(container.api_key_service().authenticate, presented)
            except Unauthorized as exc:
                response = error_response(401, "authentication_error", str(exc))
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
            if not principal.is_admin:
                return error_response(403, "permission_error", "GET /metrics needs an admin key or the metrics token")
    from adapters.prometheus.metrics import CONTENT_TYPE

    body = await run_in_threadpool(container.metrics().render)  # the pool collector takes the pool's lock
    return Response(body, media_type=CONTENT_TYPE)


routes = [Route("/metrics", metrics, methods=["GET"], include_in_schema=False)]
