"""Opening the application database: upgrade to the head revision, then hand out the engine.

Start-up fast path: alembic costs a few hundred milliseconds to import, and almost every command
meets a database that is already at head. So the recorded revision is read with plain SQL and
compared with the head found by reading the migration scripts' `revision`/`down_revision` lines;
alembic is imported only when they differ (on PostgreSQL the same query runs over a connection).
A new SQLite file is made from the head schema's snapshot (`schema_snapshot`), without alembic either.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DatabaseError as SqlDatabaseError

from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.file_guard import translate_damage
from adapters.sqlalchemy.migration_scripts import script_head_revision
from adapters.sqlalchemy.urls import sqlite_file_path

def recorded_revision(url: str) -> str | None:
    """The revision the database records, read with plain SQL; None when unknown."""
    path = sqlite_file_path(url)
    if path is None:
        return _server_recorded_revision(url)
    if not path.is_file():
        return None
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=15)
        try:
            rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        finally:
            connection.close()
    except sqlite3.Error:  # no alembic_version table (new or legacy database), locked, unreadable
        return None
    return rows[0][0] if len(rows) == 1 else None


def _server_recorded_revision(url: str) -> str | None:
    """A database server (PostgreSQL): one plain query, so a database at head never loads alembic."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() == "sqlite":
        return None  # an in-memory or URI-style SQLite database: let alembic look
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except Exception:  # noqa: BLE001 - no table yet (new database), unreachable: the upgrade path reports it
        return None
    finally:
        engine.dispose()
    return rows[0][0] if len(rows) == 1 else None


def is_at_head(url: str) -> bool:
    """True when the database already records the scripts' head revision (no alembic needed)."""
    recorded = recorded_revision(url)
    return recorded is not None and recorded == script_head_revision()


def open_database(url: str, *, upgrade: bool = True) -> Engine:
    """The engine for `url`, after bringing the schema to head (a no-op when it is there).

    Every frontend gets an up-to-date schema, whichever command touches the database first.
    """
    if upgrade and not is_at_head(url):
        _upgrade(url)
    engine = make_engine(url)
    if upgrade:
        from adapters.sqlalchemy.search_index import ensure_search_index_shape

        try:
            ensure_search_index_shape(engine)  # derived data: an index of an older shape is rebuilt, never an error
        except SqlDatabaseError as exc:
            translate_damage(exc, url)
            raise
    return engine


def _upgrade(url: str):
    path = sqlite_file_path(url)
    if path is not None and not path.exists():
        from adapters.sqlalchemy.schema_snapshot import create_from_snapshot

        path.parent.mkdir(parents=True, exist_ok=True)
        if create_from_snapshot(path):  # a new SQLite file: one script instead of every migration
            return None
    from adapters.sqlalchemy.migrate import upgrade_database  # alembic loads only when needed

    try:
        return upgrade_database(url)
    except SqlDatabaseError as exc:
        translate_damage(exc, url)  # a damaged file: "unavailable" with SQLite's reason, not an internal error
        raise


def database_upgrader(url: str):
    """A no-argument callable that upgrades `url` to head (for start-up hooks); None when already there."""

    def upgrade():
        if is_at_head(url):
            return None
        return _upgrade(url)

    return upgrade
