"""Auth / routing / audit commands: `mlxm keys`, `mlxm users`, `mlxm routes`, `mlxm credentials`, `mlxm audit`."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import click

from entrypoints.cli.base import OFFSET, ROW_ID, echo_json, get_container
from entrypoints.cli.output import print_table, when

BACKENDS = ("local", "openai", "anthropic", "openai_compatible", "anthropic_compatible")
CLOUD_BACKENDS = BACKENDS[1:]
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str | None) -> datetime | None:
    """`30m`, `2h`, `7d`, `1w` ago, or an ISO date/time (UTC when it has no zone)."""
    if value is None:
        return None
    match = _RELATIVE.match(value.strip().lower())
    if match:
        return datetime.now(timezone.utc) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: use e.g. 30m, 2h, 7d or an ISO date like 2026-01-31T12:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _key_json(key) -> dict:
    return {"id": key.id, "name": key.name, "prefix": key.prefix, "user_id": key.user_id,
            "created_at": key.created_at, "revoked_at": key.revoked_at, "active": key.is_active}


# -- keys -------------------------------------------------------------------------------
@click.group("keys")
def keys_group() -> None:
    """API keys for the server (needed when auth is on)."""


@keys_group.command("create")
@click.argument("name")
@click.option("--user", default=None, help="Owner (email or id); default: the local admin.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def keys_create(ctx: click.Context, name: str, user: str | None, as_json: bool) -> None:
    """Create an API key and print it ONCE (only its hash is stored)."""
    created = get_container(ctx).api_key_service().create(name, user)
    if as_json:
        echo_json({**_key_json(created.key), "key": created.secret})
        return
    click.echo(created.secret)
    click.echo(f"Created key {created.key.name!r} (id {created.key.id}, prefix {created.key.prefix}). "
               "Store it now: it cannot be shown again.", err=True)


@keys_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def keys_list(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """List API keys (name and prefix; never the key)."""
    keys = get_container(ctx).api_key_service().list(include_revoked=show_all)
    if as_json:
        echo_json([_key_json(k) for k in keys])
        return
    print_table(("ID", "Name", "Prefix", "User", "Created", "Revoked"),
                ((k.id, k.name, k.prefix + "…", k.user_id, when(k.created_at), when(k.revoked_at) if k.revoked_at else "-")
                 for k in keys),
                empty="No API keys. Create one with `mlxm keys create NAME`.")


@keys_group.command("revoke")
@click.argument("ref")
@click.pass_context
def keys_revoke(ctx: click.Context, ref: str) -> None:
    """Revoke a key by id, name or prefix."""
    key = get_container(ctx).api_key_service().revoke(ref)
    click.echo(f"Revoked key {key.name!r} (id {key.id}).")


# -- users ------------------------------------------------------------------------------
def _user_json(u) -> dict:
    return {"id": u.id, "email": u.email, "is_admin": u.is_admin, "status": u.status.value,
            "created_at": u.created_at, "approved_at": u.approved_at}


@click.group("users")
def users_group() -> None:
    """Users: pending until an admin approves them."""


@users_group.command("add")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Make the user an admin.")
@click.option("--approve", is_flag=True, help="Approve at once (otherwise the user is pending).")
@click.option("--with-password", is_flag=True, help="Ask for a password (for `POST /api/auth/login`).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def users_add(ctx: click.Context, email: str, admin: bool, approve: bool, with_password: bool, as_json: bool) -> None:
    """Add a user."""
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True) if with_password else None
    user = get_container(ctx).user_service().register(email, password, is_admin=admin, approved=approve)
    if as_json:
        echo_json(_user_json(user))
    else:
        click.echo(f"Added {user.email} ({user.status.value}{', admin' if user.is_admin else ''}).")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def users_list(ctx: click.Context, as_json: bool) -> None:
    """List users."""
    users = get_container(ctx).user_service().list()
    if as_json:
        echo_json([_user_json(u) for u in users])
        return
    print_table(("ID", "Email", "Admin", "Status", "Created"),
                ((u.id, u.email, "yes" if u.is_admin else "-", u.status.value, when(u.created_at)) for u in users),
                empty="No users.")


def _status_command(name: str, action: str, help_text: str):
    @users_group.command(name, help=help_text)
    @click.argument("user")
    @click.pass_context
    def command(ctx: click.Context, user: str) -> None:
        result = getattr(get_container(ctx).user_service(), action)(user)
        click.echo(f"{result.email} is now {result.status.value}.")

    return command


_status_command("approve", "approve", "Approve a user (email or id).")
_status_command("disable", "disable", "Disable a user (email or id): their keys stop working.")


# -- routes (backend mappings) ----------------------------------------------------------------
def _mapping_json(m) -> dict:
    return {"id": m.id, "model_pattern": m.model_pattern, "pattern_type": m.pattern_type.value,
            "backend_type": m.backend_type.value, "backend_model": m.backend_model,
            "fallback_backend": m.fallback_backend.value if m.fallback_backend else None,
            "priority": m.priority, "enabled": m.enabled}


@click.group("routes")
def routes_group() -> None:
    """Backend mappings: send requests for some models to a cloud backend."""


@routes_group.command("add")
@click.argument("pattern")
@click.argument("backend", type=click.Choice(BACKENDS))
@click.option("--type", "pattern_type", type=click.Choice(("exact", "prefix", "regex")), default="exact",
              show_default=True, help="How PATTERN matches the requested model name.")
@click.option("--model", "backend_model", default=None, help="Model name at the backend (default: the requested).")
@click.option("--fallback", type=click.Choice(BACKENDS), default=None,
              help="Backend to use on connection errors, 5xx or timeouts (e.g. local).")
@click.option("--priority", type=click.IntRange(-1_000_000, 1_000_000), default=0, show_default=True, help="Higher wins.")
@click.option("--disabled", is_flag=True, help="Add it switched off.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def routes_add(ctx, pattern, backend, pattern_type, backend_model, fallback, priority, disabled, as_json) -> None:
    """Add a mapping, e.g. `mlxm routes add gpt- openai --type prefix --fallback local`."""
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
                  m.fallback_backend.value if m.fallback_backend else "-", m.priority, "yes" if m.enabled else "no")
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
@click.pass_context
def credentials_set(ctx: click.Context, backend: str, base_url: str | None) -> None:
    """Store BACKEND's API key. It is read from a hidden prompt (or stdin), never from the command line."""
    api_key = click.prompt("API key", hide_input=True)
    masked = get_container(ctx).credential_service().set(backend, api_key, base_url)
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
@click.pass_context
def credentials_rm(ctx: click.Context, backend: str) -> None:
    """Remove BACKEND's credential."""
    get_container(ctx).credential_service().remove(backend)
    click.echo(f"Removed the {backend} credential.")


# -- audit ------------------------------------------------------------------------------
def _entry_json(e) -> dict:
    return {"id": e.id, "request_id": e.request_id, "timestamp": e.timestamp, "model": e.model,
            "backend": e.backend, "endpoint": e.endpoint, "duration_ms": e.duration_ms, "status": e.status.value,
            "prompt_tokens": e.prompt_tokens, "completion_tokens": e.completion_tokens, "error_type": e.error_type}


@click.group("audit", invoke_without_command=True)
@click.option("--since", default=None, help="e.g. 30m, 2h, 7d, or an ISO date/time.")
@click.option("--model", default=None, help="Only this model (the name clients sent).")
@click.option("--status", type=click.Choice(("success", "error", "cancelled")), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--offset", type=OFFSET, default=0)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def audit_group(ctx, since, model, status, limit, offset, as_json) -> None:
    """The audit log of inference requests (no prompt or completion text is ever stored)."""
    if ctx.invoked_subcommand is not None:
        return
    from domain.audit.model import AuditQuery

    page = get_container(ctx).audit_service().query(
        AuditQuery(model=model, status=status, since=parse_since(since), limit=limit, offset=offset))
    if as_json:
        echo_json({"items": [_entry_json(e) for e in page.items], "total": page.total, "limit": limit,
                   "offset": offset})
        return
    print_table(("Time", "Model", "Backend", "Endpoint", "Status", "ms", "Prompt", "Completion", "Error"),
                ((when(e.timestamp), e.model, e.backend, e.endpoint, e.status.value, e.duration_ms, e.prompt_tokens,
                  e.completion_tokens, e.error_type or "-") for e in page.items),
                empty="No audit rows match.")
    if page.total > offset + len(page.items):
        click.echo(f"({page.total} rows in all; use --offset {offset + len(page.items)} for more)")


@audit_group.command("summary")
@click.option("--since", default=None, help="e.g. 30m, 2h, 7d, or an ISO date/time.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def audit_summary(ctx: click.Context, since: str | None, as_json: bool) -> None:
    """Requests, error rate and tokens per model."""
    from entrypoints.http.audit.routes import summary_dto

    dto = summary_dto(get_container(ctx).audit_service().summary(parse_since(since)))
    if as_json:
        echo_json(dto.model_dump(mode="json"))
        return
    print_table(("Model", "Requests", "Errors", "Error rate", "Prompt tokens", "Completion tokens"),
                ((u.model, u.requests, u.errors, f"{u.error_rate:.1%}", u.prompt_tokens, u.completion_tokens)
                 for u in dto.models),
                empty="No requests recorded.")


@audit_group.command("cleanup")
@click.pass_context
def audit_cleanup(ctx: click.Context) -> None:
    """Delete rows older than MLX_SERVER_AUDIT_RETENTION_DAYS now (the server also does it periodically)."""
    deleted = get_container(ctx).audit_service().cleanup()
    click.echo(f"Deleted {deleted} audit rows.")


COMMANDS = (keys_group, users_group, routes_group, credentials_group, audit_group)
