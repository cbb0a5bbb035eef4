"""Engine and session factory, with the SQLite pragmas the server needs.

WAL lets readers run while a writer commits; `busy_timeout` makes a writer wait for the
lock instead of failing; `foreign_keys` turns on the ON DELETE CASCADE the schema declares.
"""

from __future__ import annotations

import weakref

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from adapters.sqlalchemy.urls import sqlite_file_path
from application.errors import InvalidRequest

BUSY_TIMEOUT_MS = 15_000
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()  # every engine made here that is still alive


def _set_sqlite_pragmas(dbapi_connection, connection_record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


class TextWithNul(InvalidRequest):
    """A NUL character in text bound for the database: a client's mistake (400), on every backend."""


def _refuse_nul(conn, cursor, statement, parameters, context, executemany) -> None:
    # PostgreSQL cannot hold U+0000 in text: psycopg fails the statement, and any name, profile field or
    # query parameter with one was a 500. SQLite stores it, but such a row could never be copied to
    # PostgreSQL, so both refuse it here, the one place every statement passes.
    # One row (a dict or a tuple), or a list of rows or of plain values: every value is looked at.
    rows = parameters if isinstance(parameters, list) else [parameters]
    for row in rows:
        values = row.values() if isinstance(row, dict) else row if isinstance(row, (list, tuple)) else (row,)
        for value in values:
            if isinstance(value, str) and "\x00" in value:
                raise TextWithNul("text with a NUL character (\\u0000) cannot be stored or looked up; remove it")


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine; for a SQLite file, its folder is created on first use (never at import)."""
    engine = _create(url, **kwargs)
    _ENGINES.add(engine)
    return engine


def dispose_engines() -> None:
    """Close the pooled connections of every live engine: a CLI process that exits without the collector's
    help (entrypoints.cli.main) closes its SQLite connections as a normal exit would (WAL checkpoint, the
    -wal/-shm files removed)."""
    for engine in list(_ENGINES):
        engine.dispose()


def _create(url: str, **kwargs) -> Engine:
    path = sqlite_file_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if make_url(url).get_backend_name() == "sqlite":
        connect_args = kwargs.pop("connect_args", {})
        # Connections move between threads (the server runs sync use cases in a threadpool);
        # each unit of work still uses one session on one thread at a time.
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _set_sqlite_pragmas)
        event.listen(engine, "before_cursor_execute", _refuse_nul)
        if path is not None:
            from adapters.sqlalchemy.file_guard import install_file_guard

            install_file_guard(engine, path)  # a deleted or replaced file: 503 until restart
        return engine
    engine = create_engine(url, **kwargs)
    event.listen(engine, "before_cursor_execute", _refuse_nul)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """One factory per engine; every unit of work opens its own session from it."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
