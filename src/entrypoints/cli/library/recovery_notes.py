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


def settle_interruptions(ctx: click.Context) -> list:
    """For list and show: what crashed imports and deletes left behind is recovered when the cheap scan above
    (a listing of staging/ and models/.trash/, no database) finds any, as `mlxm rm`, `import` and `serve` do.
    Nothing found, the usual case: no recovery runs, so these read commands cost what they did. Returns what
    is still interrupted (recovery could not run or settle it), for the caller to report."""
    found = interruptions(ctx)
    if not found:
        return found
    try:
        recover_and_report(ctx)
    except OSError as exc:  # e.g. a home this user cannot write: reading the library still works
        click.echo(f"Note: could not recover what a crash left behind ({exc})", err=True)
        return found
    return interruptions(ctx)
