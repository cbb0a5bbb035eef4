from __future__ import annotations

import click

from entrypoints.cli.base import INPUT_FILE, get_container


@click.command("serve")
@click.option("--host", default=None, help="Bind address (default from MLX_MANAGER_HOST, 127.0.0.1).")
# Bounded here like the setting, so a bad port is a usage error before anything binds (not a uvicorn traceback).
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default from MLX_MANAGER_PORT, 10242).")
@click.option("--hosts", "hostfile", default=None, type=INPUT_FILE,
              help="Shard text models over the ranks of this hostfile (mlx.distributed_config's JSON; the first "
                   "host is this machine), started through mlx.launch (MLX_SHARDING_HOSTFILE).")
@click.option("--tensor", "mode", flag_value="tensor", default=None,
              help="With --hosts: tensor parallel, every rank holds a slice of every layer (the default).")
@click.option("--pipeline", "mode", flag_value="pipeline",
              help="With --hosts: pipeline parallel, each rank holds (and reads) only its layers.")
@click.option("--shard", "shard_models", multiple=True, metavar="MODEL_ID",
              help="With --hosts: shard only this model (repeatable); default: every text-gen model.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, hostfile: str | None, mode: str | None,
          shard_models: tuple[str, ...]) -> None:
    """Serve the OpenAI-compatible and management HTTP API."""
    import uvicorn

    from entrypoints.http.app import create_app
    from entrypoints.http.auth import ensure_servable
    from entrypoints.logging import configure_logging

    container = get_container(ctx)
    if container.metrics.overridden and container.metrics() is None:
        container.metrics.reset_last_overriding()  # this process serves GET /metrics (command_line_container)
    settings = container.settings()
    _apply_sharding(settings, hostfile, mode, shard_models)
    configure_logging(settings.manager.log_format, settings.manager.log_level)
    # Schema first (a legacy database is upgraded, with a backup) so a bad upgrade fails before binding.
    container.database_upgrade()()
    host = host or settings.manager.host
    # Auth is on for non-loopback addresses (or MLX_MANAGER_AUTH=on): refuse to start with no key at all.
    ensure_servable(container, host)
    port = port or settings.manager.port
    _check_listenable(host, port)
    app = create_app(container)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
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
    click.echo("Error: the server did not start (the log above says why)", err=True)
    ctx.exit(3)  # it never started (the app's start-up failed; uvicorn logged why): uvicorn.run's STARTUP_FAILURE


def _check_listenable(host: str, port: int) -> None:
    """A port another process listens on (or an address this machine does not have) is one line before
    anything starts; uvicorn would only log it after the application's start-up, then exit 3."""
    import socket

    from application.errors import Unavailable

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = " (is another `mlxm serve` running? `mlxm ps` asks it)" if "in use" in reason else ""
        raise Unavailable(f"cannot listen on {host}:{port}: {reason}{hint}") from None


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


def _apply_sharding(settings, hostfile: str | None, mode: str | None, shard_models: tuple[str, ...]) -> None:
    """`--hosts/--tensor/--pipeline/--shard` override MLX_SHARDING_*; the hostfile is checked before binding."""
    sharding = settings.sharding
    if hostfile is None and (mode or shard_models) and not sharding.hostfile:
        raise click.UsageError("--tensor, --pipeline and --shard need --hosts HOSTFILE")
    updates: dict = {}
    if hostfile is not None:
        from pathlib import Path

        updates["hostfile"] = str(Path(hostfile).expanduser().absolute())
    if mode is not None:
        updates["mode"] = mode
    if shard_models:
        updates["models"] = list(shard_models)
    if updates:
        settings.sharding = sharding.model_copy(update=updates)
    if settings.sharding.hostfile:
        from adapters.mlx.distributed.group import Hostfile

        Hostfile.read(settings.sharding.hostfile)  # a bad hostfile is a one-line error now, not at the first request
