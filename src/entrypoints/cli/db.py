"""`mlxm db`: the database schema (upgrade, current revision, upgrade reports)."""

from __future__ import annotations

import click

from entrypoints.cli.base import echo_json, get_container


def _database_url(ctx: click.Context) -> str:
    return get_container(ctx).settings().manager.resolved_database_url


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def upgrade(ctx: click.Context, as_json: bool) -> None:
    """Upgrade the database to the latest schema (a pre-redesign database is recognised and upgraded).

    A copy of the database file is kept before the first step.
    """
    import logging

    from adapters.sqlalchemy.migrate import upgrade_database

    # This command prints the report itself; the migration's log warning would say it a second time.
    migrations_log = logging.getLogger("mlxm.migrations")
    level = migrations_log.level
    migrations_log.setLevel(logging.ERROR)
    try:
        # Its errors go through the CLI's one error map: a damaged or unopenable database is "unavailable"
        # (exit 7), a full disk exit 10, with the same line as every other command. It runs in one transaction.
        result = upgrade_database(_database_url(ctx))
    finally:
        migrations_log.setLevel(level)
    if as_json:
        echo_json({
            "from_revision": result.from_revision,
            "to_revision": result.to_revision,
            "legacy": result.legacy,
            "backup": str(result.backup_path) if result.backup_path else None,
            "reports": result.reports,
        })
        return
    if not result.changed:
        click.echo(f"Database already at {result.to_revision}.")
        return
    origin = "legacy layout" if result.legacy else (result.from_revision or "empty database")
    click.echo(f"Upgraded database from {origin} to {result.to_revision}.")
    if result.backup_path:
        click.echo(f"Backup of the previous file: {result.backup_path}")
    _echo_reports(result.reports)


def _database_url_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from entrypoints.composition.settings import database_url_problem

    if problem := database_url_problem(value):  # the same forms MLX_MANAGER_DATABASE_URL takes
        raise click.BadParameter(problem, ctx, param)
    return value


@db_group.command("copy")
@click.option("--to", "target", required=True, metavar="URL", callback=_database_url_option,
              help="The database to fill, e.g. postgresql+psycopg://user@host/mlxm or sqlite:////path/mlxm.db.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def copy(ctx: click.Context, target: str, as_json: bool) -> None:
    """Copy this database (every row and the search index) into a new, empty one, verified by counts.

    SQLite to PostgreSQL and back. Afterwards point MLX_MANAGER_DATABASE_URL at the target.
    """
    from adapters.sqlalchemy.copy import CopyRefused, copy_database

    try:
        # A database that cannot be reached or opened is "unavailable" (exit 7), a URL SQLAlchemy cannot use an
        # invalid request (exit 2): copy_database raises those errors, the CLI's error map gives the exit codes.
        report = copy_database(_database_url(ctx), target)
    except CopyRefused as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        echo_json({"source": report.source, "target": report.target, "rows": report.rows,
                   "tables": {name: {"source": s, "target": t} for name, (s, t) in report.counts.items()},
                   "models": report.indexed[0], "indexed": report.indexed[1]})
        return
    for name, (source_rows, target_rows) in report.counts.items():
        if source_rows:
            click.echo(f"  {name:<28} {source_rows:>8} -> {target_rows}")
    click.echo(f"Copied {report.rows} rows into {report.target}; search index: "
               f"{report.indexed[1]} of {report.indexed[0]} models. Counts verified.")


@db_group.command("reports")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def reports(ctx: click.Context, as_json: bool) -> None:
    """Values that upgrades could not carry over as they were."""
    from adapters.sqlalchemy.migrate import migration_reports

    rows = migration_reports(_database_url(ctx))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No upgrade reports.")
        return
    _echo_reports(rows)


def _echo_reports(rows: list[dict]) -> None:
    if not rows:
        return
    click.echo(f"{len(rows)} value(s) were not carried over (kept in the migration_reports table):")
    for row in rows:
        click.echo(f"  {row['entity']} {row['entity_id']}: {row['field']}={row['value']!s} - {row['message']}")
