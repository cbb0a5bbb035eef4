"""Opening the application database: upgrade to the head revision, then hand out the engine."""

from __future__ import annotations

from sqlalchemy import Engine

from adapters.sqlalchemy.engine import make_engine


def open_database(url: str, *, upgrade: bool = True) -> Engine:
    """The engine for `url`, after bringing the schema to head (a no-op when it is there).

    Every frontend gets an up-to-date schema, whichever command touches the database first.
    """
    if upgrade:
        from adapters.sqlalchemy.migrate import upgrade_database  # alembic loads only when needed

        upgrade_database(url)
    return make_engine(url)


def database_upgrader(url: str):
    """A no-argument callable that upgrades `url` to head (for start-up hooks)."""

    def upgrade():
        from adapters.sqlalchemy.migrate import upgrade_database

        return upgrade_database(url)

    return upgrade
