"""Identity commands: `mlxm keys` (API keys) and `mlxm users`."""

from __future__ import annotations

import click

from entrypoints.bounds import MAX_SQL_INT
from entrypoints.cli.base import echo_json, get_container, prompt_secret
from entrypoints.cli.output import print_table, when

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
    password = prompt_secret("Password", confirm=True) if with_password else None
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


class UserRef(click.ParamType):
    """A user's email or numeric id; an id beyond a 64-bit integer is a usage error, not an OverflowError."""

    name = "user"

    def convert(self, value, param, ctx):
        text = str(value).strip()
        if text.isdigit() and not (text.isascii() and 0 < int(text) <= MAX_SQL_INT):
            self.fail(f"{text[:40]!r} is not a user id (1..{MAX_SQL_INT})", param, ctx)
        return text


def _status_command(name: str, action: str, help_text: str):
    @users_group.command(name, help=help_text)
    @click.argument("user", type=UserRef())
    @click.pass_context
    def command(ctx: click.Context, user: str) -> None:
        result = getattr(get_container(ctx).user_service(), action)(user)
        click.echo(f"{result.email} is now {result.status.value}.")

    return command


_status_command("approve", "approve", "Approve a user (email or id).")
_status_command("disable", "disable", "Disable a user (email or id): their keys stop working.")


COMMANDS = (keys_group, users_group)
