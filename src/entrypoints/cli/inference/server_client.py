"""Commands that act on a running server's model pool: ps, unload (over its HTTP API)."""

from __future__ import annotations

import click

from entrypoints.cli.base import echo_json, get_container
from entrypoints.cli.output import human_size, print_table, when

URL_HELP = "The server (default: http://MLX_MANAGER_HOST:MLX_MANAGER_PORT; key from MLX_MANAGER_API_KEY)."


def _base_url(ctx: click.Context, url: str | None) -> str:
    if url:
        return url.rstrip("/")
    manager = get_container(ctx).settings().manager
    host = "127.0.0.1" if manager.host in ("0.0.0.0", "::", "") else manager.host
    return f"http://{host}:{manager.port}"


def _request(method: str, url: str, **kwargs):
    import os

    import httpx

    from application.errors import ApplicationError, Unavailable

    headers = {}
    key = os.environ.get("MLX_MANAGER_API_KEY")  # needed when the server requires API keys
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        response = httpx.request(method, url, headers=headers, timeout=60, **kwargs)
    except httpx.HTTPError as exc:
        raise Unavailable(f"no mlxm server at {url.split('/api')[0]} ({type(exc).__name__}); start one with `mlxm serve`") from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except Exception:  # noqa: BLE001 - not our JSON error shape
            message = response.text[:200]
        raise ApplicationError(f"server answered {response.status_code}: {message}")
    return response.json()


@click.command("ps")
@click.option("--url", help=URL_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def ps(ctx, url: str | None, as_json: bool) -> None:
    """Models loaded in the running server."""
    data = _request("GET", f"{_base_url(ctx, url)}/api/pool")
    if as_json:
        echo_json(data)
        return
    from datetime import datetime

    def parse(value):
        return datetime.fromisoformat(value) if value else None

    print_table(
        ("Model", "Type", "Size", "Loaded", "Last used", "Uses", "Pinned"),
        (
            (m["model_id"], m.get("type"), human_size(m.get("size_bytes")), when(parse(m.get("loaded_at"))),
             when(parse(m.get("last_used_at"))), m.get("use_count"), "yes" if m.get("pinned") else "")
            for m in data["loaded"]
        ),
        empty="No models loaded.",
    )


@click.command("unload")
@click.argument("name")
@click.option("--url", help=URL_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def unload(ctx, name: str, url: str | None, as_json: bool) -> None:
    """Unload NAME from the running server (after its running requests finish)."""
    data = _request("POST", f"{_base_url(ctx, url)}/api/pool/unload", json={"model": name})
    if as_json:
        echo_json(data)
        return
    click.echo(f"Unloaded {data['model_id']}" if not data["loaded"] else f"{data['model_id']} unloads when its requests finish")
