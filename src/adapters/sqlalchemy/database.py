"""Opening the application database: upgrade to the head revision, then hand out the engine.

Start-up fast path: alembic costs a few hundred milliseconds to import, and almost every command
meets a database that is already at head. So the recorded revision is read with plain SQL and
compared with the head found by reading the migration scripts' `revision`/`down_revision` lines;
alembic is imported only when they differ (or the database is not a SQLite file).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sqlalchemy import Engine

from adapters.sqlalchemy.engine import make_engine, sqlite_file_path

_REVISION_LINE = re.compile(r"""^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:["']([^"']+)["']|None)""", re.M)


def migrations_dir() -> Path:
    """The repository's `migrations/` folder (works from an editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "migrations"
        if (candidate / "env.py").is_file():
            return candidate
    raise RuntimeError(f"cannot find the migrations folder above {here}")


def script_head_revision() -> str | None:
    """The head revision of the migration scripts, without alembic; None unless there is exactly one."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (migrations_dir() / "versions").glob("*.py"):
        found = dict((key, value) for key, value in _REVISION_LINE.findall(script.read_text(encoding="utf-8")))
        if not found.get("revision"):
            return None  # a script this reader does not understand: let alembic decide
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def recorded_revision(url: str) -> str | None:
    """The revision an existing SQLite file records, read with plain SQL; None when unknown."""
    path = sqlite_file_path(url)
    if path is None or not path.is_file():
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


def is_at_head(url: str) -> bool:
    """True when the database already records the scripts' head revision (no alembic needed)."""
    recorded = recorded_revision(url)
    return recorded is not None and recorded == script_head_revision()


def open_database(url: str, *, upgrade: bool = True) -> Engine:
    """The engine for `url`, after bringing the schema to head (a no-op when it is there).

    Every frontend gets an up-to-date schema, whichever command touches the database first.
    """
    if upgrade and not is_at_head(url):
        from adapters.sqlalchemy.migrate import upgrade_database  # alembic loads only when needed

        upgrade_database(url)
    engine = make_engine(url)
    if upgrade:
        from adapters.sqlalchemy.search_index import ensure_search_index_shape

        ensure_search_index_shape(engine)  # derived data: an index of an older shape is rebuilt, never an error
    return engine


def database_upgrader(url: str):
    """A no-argument callable that upgrades `url` to head (for start-up hooks); None when already there."""

    def upgrade():
        if is_at_head(url):
            return None
        from adapters.sqlalchemy.migrate import upgrade_database

        return upgrade_database(url)

    return upgrade
