"""Routing commands: `mlxm routes` (backend mappings) and `mlxm credentials` (cloud API keys, stored encrypted)."""

from __future__ import annotations

import click

from entrypoints.cli.base import ROW_ID, echo_json, get_container, prompt_secret
from entrypoints.cli.output import print_table, when

BACKENDS = ("local", "openai", "anthropic", "openai_compatible", "anthropic_compatible")
CLOUD_BACKENDS = BACKENDS[1:]


class FallbackType(click.ParamType):
    """A backend name, or `local:NAME` (the local model or profile the fallback runs)."""

    name = "backend|local:NAME"

    def convert(self, value, param, ctx):
        backend, _, model = str(value).partition(":")
        if backend not in BACKENDS:
            self.fail(f"{backend!r} is not one of {', '.join(BACKENDS)}", param, ctx)
        if model and backend != "local":
            self.fail("only the local fallback names a model (local:NAME)", param, ctx)
        return value


def _fallback_text(m) -> str:
    if m.fallback_backend is None:
        return "-"
    return f"{m.fallback_backend.value}:{m.fallback_model}" if m.fallback_model else m.fallback_backend.value


# -- routes (backend mappings) ----------------------------------------------------------------
def _mapping_json(m) -> dict:
    return {"id": m.id, "model_pattern": m.model_pattern, "pattern_type": m.pattern_type.value,
            "backend_type": m.backend_type.value, "backend_model": m.backend_model,
            "fallback_backend": m.fallback_backend.value if m.fallback_backend else None,
            "fallback_model": m.fallback_model, "priority": m.priority, "enabled": m.enabled}


@click.group("routes")
def routes_group() -> None:
    """Backend mappings: send requests for some models to a cloud backend."""


@routes_group.command("add")
@click.argument("pattern")
@click.argument("backend", type=click.Choice(BACKENDS))
@click.option("--type", "pattern_type", type=click.Choice(("exact", "prefix", "regex")), default="exact",
              show_default=True, help="How PATTERN matches the requested model name.")
@click.option("--model", "backend_model", default=None, help="Model name at the backend (default: the requested).")
@click.option("--fallback", type=FallbackType(), default=None,
              help="Backend to use on connection errors, 5xx or timeouts: a backend, or local:NAME "
                   "(a local model or profile; plain `local` runs the requested name locally).")
@click.option("--priority", type=click.IntRange(-1_000_000, 1_000_000), default=0, show_default=True, help="Higher wins.")
@click.option("--disabled", is_flag=True, help="Add it switched off.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def routes_add(ctx, pattern, backend, pattern_type, backend_model, fallback, priority, disabled, as_json) -> None:
    """Add a mapping, e.g. `mlxm routes add gpt- openai --type prefix --fallback local:qwen3-4b`."""
    mapping = get_container(ctx).backend_mapping_service().add(
        pattern, backend, pattern_type=pattern_type, backend_model=backend_model, fallback_backend=fallback,
        priority=priority, enabled=not disabled)
    if as_json:
        echo_json(_mapping_json(mapping))
    else:
        click.echo(f"Added route {mapping.id}: {pattern_type} {pattern!r} -> {backend}.")


@routes_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def routes_list(ctx: click.Context, as_json: bool) -> None:
    """List mappings, highest priority first."""
    mappings = get_container(ctx).backend_mapping_service().list()
    if as_json:
        echo_json([_mapping_json(m) for m in mappings])
        return
    print_table(("ID", "Pattern", "Type", "Backend", "Backend model", "Fallback", "Priority", "Enabled"),
                ((m.id, m.model_pattern, m.pattern_type.value, m.backend_type.value, m.backend_model or "-",
                  _fallback_text(m), m.priority, "yes" if m.enabled else "no")
                 for m in mappings),
                empty="No routes: every model runs locally.")


@routes_group.command("rm")
@click.argument("mapping_id", type=ROW_ID)
@click.pass_context
def routes_rm(ctx: click.Context, mapping_id: int) -> None:
    """Remove a mapping by id."""
    get_container(ctx).backend_mapping_service().remove(mapping_id)
    click.echo(f"Removed route {mapping_id}.")


# -- credentials ----------------------------------------------------------------------------
@click.group("credentials")
def credentials_group() -> None:
    """API keys of cloud backends, stored encrypted; shown only masked."""


@credentials_group.command("set")
@click.argument("backend", type=click.Choice(CLOUD_BACKENDS))
@click.option("--base-url", default=None, help="API base URL (required for *_compatible backends).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def credentials_set(ctx: click.Context, backend: str, base_url: str | None, as_json: bool) -> None:
    """Store BACKEND's API key. It is read from a hidden prompt (or stdin), never from the command line."""
    api_key = prompt_secret("API key", err=as_json)
    masked = get_container(ctx).credential_service().set(backend, api_key, base_url)
    if as_json:
        echo_json({"backend_type": masked.backend_type.value, "base_url": masked.base_url,
                   "api_key": masked.masked_key})
        return
    click.echo(f"Stored {masked.backend_type.value} key {masked.masked_key} for {masked.base_url}.")


@credentials_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def credentials_list(ctx: click.Context, as_json: bool) -> None:
    """List credentials (masked)."""
    items = get_container(ctx).credential_service().list()
    if as_json:
        echo_json([{"backend_type": c.backend_type.value, "base_url": c.base_url, "api_key": c.masked_key,
                    "updated_at": c.updated_at} for c in items])
        return
    print_table(("Backend", "Base URL", "Key", "Updated"),
                ((c.backend_type.value, c.base_url, c.masked_key, when(c.updated_at)) for c in items),
                empty="No credentials. Add one with `mlxm credentials set BACKEND`.")


@credentials_group.command("rm")
@click.argument("backend", type=click.Choice(CLOUD_BACKENDS))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def credentials_rm(ctx: click.Context, backend: str, as_json: bool) -> None:
    """Remove BACKEND's credential."""
    get_container(ctx).credential_service().remove(backend)
    if as_json:
        echo_json({"removed": backend})
        return
    click.echo(f"Removed the {backend} credential.")


COMMANDS = (routes_group, credentials_group)
