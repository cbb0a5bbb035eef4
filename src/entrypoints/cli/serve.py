from __future__ import annotations

import click

from entrypoints.cli.base import get_container


@click.command("serve")
@click.option("--host", default=None, help="Bind address (default from MLX_MANAGER_HOST, 127.0.0.1).")
# Bounded here like the setting, so a bad port is a usage error before anything binds (not a uvicorn traceback).
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default from MLX_MANAGER_PORT, 10242).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the OpenAI-compatible and management HTTP API."""
    import uvicorn

    from entrypoints.http.app import create_app
    from entrypoints.http.auth import ensure_servable
    from entrypoints.logging import configure_logging

    container = get_container(ctx)
    settings = container.settings()
    configure_logging(settings.manager.log_format, settings.manager.log_level)
    # Schema first (a legacy database is upgraded, with a backup) so a bad upgrade fails before binding.
    container.database_upgrade()()
    host = host or settings.manager.host
    # Auth is on for non-loopback addresses (or MLX_MANAGER_AUTH=on): refuse to start with no key at all.
    ensure_servable(container, host)
    app = create_app(container)
    config = uvicorn.Config(
        app,
        host=host,
        port=port or settings.manager.port,
        log_level=settings.manager.log_level,
        log_config=None,  # structlog owns the handlers (configure_logging)
        access_log=False,  # the request-id middleware writes one line per request, with its id
        **connection_limits(settings.server),
    )
    from entrypoints.cli.serve_server import MlxmServer, finish_process

    server = MlxmServer(config, drain=app.state.shutdown_drain, grace_seconds=settings.server.shutdown_grace_seconds)
    server.run()
    if server.started:  # it served and shut down cleanly: end without interpreter finalisation (see serve_server)
        finish_process(server.exit_code)
    ctx.exit(3)  # it never started (the app's start-up failed; uvicorn logged why): uvicorn.run's STARTUP_FAILURE


def connection_limits(server) -> dict:
    """uvicorn options that bound what idle or slow connections can hold (entrypoints.http.connections)."""
    from entrypoints.http.connections import (ACCEPT_BACKLOG, default_max_connections, guarded_protocol,
                                              raise_open_file_limit)

    fd_limit = raise_open_file_limit()
    max_connections = server.max_connections or default_max_connections(fd_limit)
    return {
        "http": guarded_protocol(server.header_timeout_seconds, server.body_timeout_seconds, max_connections),
        "timeout_keep_alive": 5,
        "backlog": ACCEPT_BACKLOG,
        "h11_max_incomplete_event_size": 64 * 1024,  # a request head larger than this is a 400
    }
