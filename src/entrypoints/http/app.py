"""`create_app(container)`: the Starlette application.

Lifespan: bring the database to the newest schema, reconcile downloads a crash left
running, preload `auto_start` profiles, sweep the pool for idle models (TTL) while
serving, and unload everything on shutdown.
"""

from __future__ import annotations

import contextlib

import anyio
import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from entrypoints.http.audit import routes as audit_routes
from entrypoints.http.catalog import refresh as catalog_refresh
from entrypoints.http.catalog import routes as catalog_routes
from entrypoints.http.catalog import selection_routes
from entrypoints.http.downloads import routes as download_routes
from entrypoints.http.identity import routes as identity_routes
from entrypoints.http.inference import anthropic_routes, chat_routes, embeddings_routes, openai_routes, pool_routes, responses_routes
from entrypoints.http.library import pipeline_routes
from entrypoints.http.library import routes as library_routes
from entrypoints.http.profiles import routes as profile_routes
from entrypoints.http.routing import routes as routing_routes
from entrypoints.http.auth import ApiKeyAuthMiddleware
from entrypoints.http.edge import EdgeGuardMiddleware, parse_list, upload_routes_of
from entrypoints.http.errors import EXCEPTION_HANDLERS
from entrypoints.http.inference_timeouts import InferenceTimeoutMiddleware, limits_from
from entrypoints.http.shutdown import ShutdownDrain, ShutdownDrainMiddleware
from entrypoints.http.middleware import BodySizeLimitMiddleware, RequestIdMiddleware, StartedResponseGuard
from entrypoints.http.openapi import build_openapi
from entrypoints.http import metrics as http_metrics
from entrypoints.http.catalog import hub_routes
from entrypoints.http.inference import params_routes
from entrypoints.http.ui.routes import routes as ui_routes
from entrypoints.http.ui.session import UiSessionMiddleware

log = structlog.get_logger("mlxm.http")

POOL_SWEEP_INTERVAL_SECONDS = 5.0
POOL_STATE_INTERVAL_SECONDS = 2.0  # how stale another host's view of this pool may be


def _provided(container, name: str):
    """The provider's instance, or None when no area registered it (yet)."""
    provider = getattr(container, name, None)
    return provider() if provider is not None else None


async def _startup(container) -> None:
    settings = container.settings()
    # Bring the schema to head before serving (the persistence area's no-argument upgrader).
    upgrade = _provided(container, "database_upgrade")
    if callable(upgrade):
        await run_in_threadpool(upgrade)
    downloads = _provided(container, "download_service")
    reconcile = getattr(downloads, "reconcile_after_crash", None)
    if callable(reconcile):
        await run_in_threadpool(reconcile)
    recovery = _provided(container, "library_recovery")
    if recovery is not None:  # crashed imports and deletes (library pipelines)
        report = await run_in_threadpool(recovery.recover)
        for line in getattr(report, "notices", lambda: [])():
            log.warning("library recovery", note=line)
    inference = _provided(container, "inference_service")
    if inference is not None:
        def preload_failed(profile: str, exc: Exception) -> None:  # a broken profile must not stop the server
            log.warning("preload failed", profile=profile, error=str(exc))

        loaded = await run_in_threadpool(inference.preload_auto_start, preload_failed)
        if loaded:
            log.info("preloaded", models=loaded)
    if getattr(container, "audit_sink", None) is not None:  # auth / routing / audit: retention runs from start-up
        from entrypoints.composition.auth_wiring import open_area

        await run_in_threadpool(open_area, container)
    log.info("ready", database=settings.manager.resolved_database_url.split("://", 1)[0])


async def _sweep_pool(container) -> None:
    pool = _provided(container, "model_pool")
    sweep = getattr(pool, "sweep", None)
    if not callable(sweep):
        return
    while True:
        await anyio.sleep(POOL_SWEEP_INTERVAL_SECONDS)
        try:
            await run_in_threadpool(sweep)
        except Exception as exc:  # noqa: BLE001 - keep sweeping; log why this round failed
            log.warning("pool sweep failed", error=str(exc))


async def _publish_pool_state(container) -> None:
    """Keep this host's rows in `pool_state` current (written only when the pool changed)."""
    publisher = _provided(container, "pool_state_publisher")
    if publisher is None:
        return
    while True:
        try:
            await run_in_threadpool(publisher.publish)
        except Exception as exc:  # noqa: BLE001 - keep publishing; log why this round failed
            log.warning("pool state publish failed", error=str(exc))
        await anyio.sleep(POOL_STATE_INTERVAL_SECONDS)


async def _shutdown(container) -> None:
    if getattr(container, "audit_sink", None) is not None:  # auth / routing / audit: flush audit rows
        from entrypoints.composition.auth_wiring import close_area

        with anyio.CancelScope(shield=True):
            await run_in_threadpool(close_area, container)
    pool = _provided(container, "model_pool")
    close = getattr(pool, "shutdown", None)
    if callable(close):
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(close)
    publisher = _provided(container, "pool_state_publisher")
    if publisher is not None:
        with anyio.CancelScope(shield=True):
            try:
                await run_in_threadpool(publisher.clear)  # this host no longer holds anything
            except Exception as exc:  # noqa: BLE001 - shutdown goes on
                log.warning("pool state clear failed", error=str(exc))


async def openapi(request: Request) -> JSONResponse:
    from entrypoints.http.catalog.routes import _version

    return JSONResponse(build_openapi(request.app.routes, title="mlxm", version=_version()))


def edge_middleware(settings, routes) -> list[Middleware]:
    """CORS (outermost, so its headers reach the edge's refusals) only for explicitly listed origins."""
    origins = parse_list(settings.manager.allowed_origins)
    stack = []
    if origins:
        from starlette.middleware.cors import CORSMiddleware

        stack.append(Middleware(CORSMiddleware, allow_origins=list(origins), allow_credentials=False,
                                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                                allow_headers=["authorization", "content-type", "x-api-key", "x-request-id",
                                               "anthropic-version"],
                                expose_headers=["x-request-id"]))
    stack.append(Middleware(EdgeGuardMiddleware, bind_host=settings.manager.host,
                            allowed_hosts=parse_list(settings.manager.allowed_hosts), allowed_origins=origins,
                            upload_routes=upload_routes_of(routes)))
    return stack


def create_app(container=None) -> Starlette:
    if container is None:
        from entrypoints.composition.container import Container

        container = Container()
    settings = container.settings()
    if not structlog.is_configured():
        # Embedded apps (tests, other servers) log through stdlib to stderr like `mlxm serve` does.
        from entrypoints.logging import configure_logging

        configure_logging(settings.manager.log_format, settings.manager.log_level)

    catalog_refresh.prepare(container)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await _startup(container)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_sweep_pool, container)
            tasks.start_soon(catalog_refresh.refresh_periodically, container,
                             settings.distribution.catalog_refresh_seconds)
            tasks.start_soon(_publish_pool_state, container)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
                await _shutdown(container)

    routes = [
        *catalog_routes.routes,
        *download_routes.routes,
        *pipeline_routes.routes,  # library pipelines: before /api/models/{name:path}, which would swallow them
        *library_routes.routes,
        *profile_routes.routes,
        *selection_routes.routes,
        *pool_routes.routes,
        *chat_routes.routes,
        *openai_routes.routes,
        *embeddings_routes.routes,
        *anthropic_routes.routes,
        *responses_routes.routes,
        # identity / routing / audit management, in the order they were registered before the split
        *identity_routes.routes,
        *routing_routes.routes,
        *audit_routes.routes,
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        *http_metrics.routes,  # GET /metrics (Prometheus)
        *hub_routes.routes,  # GET /api/hub/search
        *params_routes.routes,  # GET /api/chat/params: the cascade's resolved values
        *ui_routes(),  # the web UI: / and /ui/*
    ]
    ui_sessions = container.web_session_store()  # <home>/sessions.sqlite: a restart keeps UI logins
    drain = ShutdownDrain()  # `mlxm serve` cancels the running requests through it after the grace period
    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            Middleware(http_metrics.MetricsMiddleware, container=container),  # outermost: sees 401/413 too
            Middleware(RequestIdMiddleware),
            *edge_middleware(settings, routes),  # Host / Origin / body type, and CORS only when configured
            Middleware(UiSessionMiddleware, store=ui_sessions),  # web UI cookie -> bearer key, CSRF check
            Middleware(BodySizeLimitMiddleware, max_bytes=settings.server.max_body_bytes),
            Middleware(ApiKeyAuthMiddleware, container=container),  # inside RequestId: sees the request id
            # Innermost: the limit counts the inference itself, after auth and the body checks.
            Middleware(InferenceTimeoutMiddleware, limits=limits_from(settings.server)),
            Middleware(ShutdownDrainMiddleware, drain=drain),  # a shutdown's cancel reaches the stream itself
            Middleware(StartedResponseGuard),  # an error after the headers went out: one log line, no traceback
        ],
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.ui_sessions = ui_sessions
    app.state.shutdown_drain = drain
    return app
