"""Commands that act on a running server's model pool: ps, unload (over its HTTP API)."""

from __future__ import annotations

import click

from entrypoints.cli import completion
from entrypoints.cli.base import echo_json, get_container
from entrypoints.cli.output import human_size, print_table, when

URL_HELP = "The server (default: http://MLX_MANAGER_HOST:MLX_MANAGER_PORT; key from MLX_MANAGER_API_KEY)."


class ServerUrl(click.ParamType):
    """An http(s) URL with a host and a valid port: a malformed one is a usage error, not a crash later."""

    name = "url"

    def convert(self, value, param, ctx):
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value)
            port = parts.port  # raises ValueError for a port that is not a number in range
            host = parts.hostname
        except ValueError as exc:
            self.fail(f"{value!r} is not a valid URL ({exc})", param, ctx)
        if parts.scheme not in ("http", "https") or not host:
            self.fail(f"{value!r} is not a valid URL: use http://HOST:PORT", param, ctx)
        del port
        return value


def _base_url(ctx: click.Context, url: str | None) -> str:
    if url:
        return url.rstrip("/")
    manager = get_container(ctx).settings().manager
    host = "127.0.0.1" if manager.host in ("0.0.0.0", "::", "") else manager.host
    return f"http://{host}:{manager.port}"


def _local_admin_headers(url: str, home) -> dict[str, str]:
    """The owner's token (entrypoints.local_admin), only for a server on a loopback address."""
    from urllib.parse import urlsplit

    from entrypoints import local_admin
    from entrypoints.http.auth import is_loopback

    host = urlsplit(url).hostname
    if not is_loopback(host):
        return {}
    token = local_admin.ensure_token(home)
    return {local_admin.HEADER: token} if token else {}


def _request(ctx: click.Context, method: str, url: str, *, expect: tuple[str, ...] = (), **kwargs):
    import os

    import httpx

    from application.errors import ApplicationError, Unavailable

    headers = _local_admin_headers(url, get_container(ctx).settings().manager.home)
    key = os.environ.get("MLX_MANAGER_API_KEY")  # needed when the server requires API keys
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        response = httpx.request(method, url, headers=headers, **{"timeout": 60, **kwargs})
    except httpx.HTTPError as exc:
        raise Unavailable(f"no mlxm server at {url.split('/api')[0]} ({type(exc).__name__}); start one with `mlxm serve`") from None
    if response.status_code == 401:
        from application.errors import Unauthorized

        hint = "the key in MLX_MANAGER_API_KEY was refused" if key else "set MLX_MANAGER_API_KEY"
        raise Unauthorized(f"the server at {url.split('/api')[0]} answered 401, it needs an API key: {hint} "
                           "(`mlxm keys create NAME` makes one)")
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except Exception:  # noqa: BLE001 - not our JSON error shape
            message = response.text[:200]
        raise ApplicationError(f"server answered {response.status_code}: {message}")
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or any(name not in data for name in expect):
        # e.g. --url at another web server that answers 200: its page is not our pool
        raise Unavailable(f"{url.split('/api')[0]} is not an mlxm server (its answer to {method} "
                          f"{url[len(url.split('/api')[0]):]} is not the pool's JSON)")
    return data


@click.command("ps")
@click.option("--url", type=ServerUrl(), help=URL_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def ps(ctx, url: str | None, as_json: bool) -> None:
    """Models loaded in the running server."""
    data = _request(ctx, "GET", f"{_base_url(ctx, url)}/api/pool", expect=("loaded",))
    if as_json:
        echo_json(data)
        return
    from datetime import datetime

    def parse(value):
        return datetime.fromisoformat(value) if value else None

    rows = [
        (m["model_id"], m.get("type"), human_size(m.get("size_bytes")), _prompt_cache(m.get("prompt_cache")),
         when(parse(m.get("loaded_at"))), when(parse(m.get("last_used_at"))), m.get("use_count"),
         "yes" if m.get("pinned") else "")
        for m in data["loaded"]
    ]
    headers = ("Model", "Type", "Size", "Prompt cache", "Loaded", "Last used", "Uses", "Pinned")
    if any(m.get("sharding") for m in data["loaded"]):  # `mlxm serve --hosts`: where each model runs
        headers += ("Placement",)
        rows = [(*row, _placement(m)) for row, m in zip(rows, data["loaded"])]
    print_table(headers, rows, empty="No models loaded.")
    down = [m for m in data["loaded"] if (m.get("sharding") or {}).get("unavailable")]
    for m in down:
        click.echo(f"{m['model_id']}: {m['sharding']['unavailable']}", err=True)


def _prompt_cache(cache: dict | None) -> str:
    """`1.2 MB, 3/10 entries`: its bytes (counted in the pool's memory) and entries of the bound; `-`: none."""
    if not cache:
        return "-"
    return f"{human_size(cache.get('bytes'))}, {cache.get('entries')}/{cache.get('max_entries')} entries"


def _placement(model: dict) -> str:
    sharding = model.get("sharding")
    if not sharding:
        return "local"
    text = f"sharded: {sharding['mode']} over {sharding['ranks']} ranks ({sharding['backend']})"
    return text + (", UNAVAILABLE" if sharding.get("unavailable") else "")


@click.command("unload")
@click.argument("name", shell_complete=completion.complete_model)
@click.option("--url", type=ServerUrl(), help=URL_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def unload(ctx, name: str, url: str | None, as_json: bool) -> None:
    """Unload NAME from the running server (after its running requests finish)."""
    data = _request(ctx, "POST", f"{_base_url(ctx, url)}/api/pool/unload", json={"model": name},
                    expect=("model_id", "loaded"))
    if as_json:
        echo_json(data)
        return
    click.echo(f"Unloaded {data['model_id']}" if not data["loaded"] else f"{data['model_id']} unloads when its requests finish")


def unload_from_running_server(ctx: click.Context, name: str) -> bool:
    """Ask the server serving this home to unload NAME (before `mlxm rm` deletes its files).

    Best effort and quick: no server, another server's refusal or a model it has not loaded is no error.
    """
    import httpx

    from application.errors import ApplicationError

    try:
        data = _request(ctx, "POST", f"{_base_url(ctx, None)}/api/pool/unload", json={"model": name},
                        timeout=3)
    except (ApplicationError, httpx.HTTPError):
        return False
    return bool(isinstance(data, dict) and data.get("model_id"))
