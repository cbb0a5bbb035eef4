"""What the CLI tells the user about crashed imports and deletes (see application.library.recovery)."""

from __future__ import annotations

import click

from entrypoints.cli.base import get_container


def recover_and_report(ctx: click.Context):
    """Settle what crashed imports and deletes left behind, and tell the user where their files are."""
    report = get_container(ctx).library_recovery().recover()
    for line in report.notices():
        click.echo(f"Note: {line}", err=True)
    return report


def interruptions(ctx: click.Context) -> list:
    """Crashed imports and deletes not yet recovered (reported by list and show; they change nothing)."""
    recovery = getattr(get_container(ctx), "library_recovery", None)
    return recovery().interruptions() if recovery is not None else []
