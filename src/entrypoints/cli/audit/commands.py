"""Audit commands: `mlxm audit` (the log), `audit summary`, `audit cleanup`."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import click

from entrypoints.cli.base import OFFSET, echo_json, get_container
from entrypoints.cli.output import print_table, when

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str | None) -> datetime | None:
    """`30m`, `2h`, `7d`, `1w` ago, or an ISO date/time (UTC when it has no zone)."""
    if value is None:
        return None
    match = _RELATIVE.match(value.strip().lower())
    if match:
        try:
            return datetime.now(timezone.utc) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except (OverflowError, ValueError):  # e.g. 99999999999d: before year 1
            raise click.BadParameter(f"{value!r} reaches back further than a date can go") from None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: use e.g. 30m, 2h, 7d or an ISO date like 2026-01-31T12:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# -- audit ------------------------------------------------------------------------------
def _entry_json(e) -> dict:
    return {"id": e.id, "request_id": e.request_id, "timestamp": e.timestamp, "model": e.model,
            "backend": e.backend, "endpoint": e.endpoint, "duration_ms": e.duration_ms, "status": e.status.value,
            "prompt_tokens": e.prompt_tokens, "completion_tokens": e.completion_tokens, "error_type": e.error_type,
            "host": e.host}


@click.group("audit", invoke_without_command=True)
@click.option("--since", default=None, help="e.g. 30m, 2h, 7d, or an ISO date/time.")
@click.option("--model", default=None, help="Only this model (the name clients sent).")
@click.option("--status", type=click.Choice(("success", "error", "cancelled")), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--offset", type=OFFSET, default=0)
@click.option("--host", default=None, help="Only rows this server wrote (servers sharing one database).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def audit_group(ctx, since, model, status, limit, offset, host, as_json) -> None:
    """The audit log of inference requests (no prompt or completion text is ever stored)."""
    if ctx.invoked_subcommand is not None:
        return
    from domain.audit.model import AuditQuery

    page = get_container(ctx).audit_service().query(
        AuditQuery(model=model, status=status, since=parse_since(since), limit=limit, offset=offset, host=host))
    if as_json:
        echo_json({"items": [_entry_json(e) for e in page.items], "total": page.total, "limit": limit,
                   "offset": offset})
        return
    print_table(("Time", "Host", "Model", "Backend", "Endpoint", "Status", "ms", "Prompt", "Completion", "Error"),
                ((when(e.timestamp), e.host or "-", e.model, e.backend, e.endpoint, e.status.value, e.duration_ms,
                  e.prompt_tokens, e.completion_tokens, e.error_type or "-") for e in page.items),
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def audit_cleanup(ctx: click.Context, as_json: bool) -> None:
    """Delete rows older than MLX_SERVER_AUDIT_RETENTION_DAYS now (the server also does it periodically)."""
    deleted = get_container(ctx).audit_service().cleanup()
    if as_json:
        echo_json({"deleted": deleted})
        return
    click.echo(f"Deleted {deleted} audit rows.")


COMMANDS = (audit_group,)
