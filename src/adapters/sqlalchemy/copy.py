"""`mlxm db copy --to URL`: every row of one database into another (SQLite <-> PostgreSQL), verified.

The target is brought to the head revision first, then filled in ONE transaction: rows are
copied table by table in foreign-key order with their ids (so references stay right), the search
index is rebuilt from the copied rows, id sequences are moved past the copied ids (PostgreSQL),
and every table's row count is compared with the source's before the commit. Any difference
rolls the whole copy back: the target is then as it was.

The target must hold no data of its own. The dependency tables are the exception: migrations
seed them, so the target's seeded rows are replaced by the source's (which hold the same seeds
plus the user's own profiles and bindings).
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from sqlalchemy import Connection, Engine, Table, func, select, text
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.file_guard import DatabaseUnreachable, is_disk_full, is_server, translate_damage
from adapters.sqlalchemy.search_index import SEARCH_INDEX_TABLE, rebuild_search_index
from adapters.sqlalchemy.urls import sqlite_file_name, sqlite_file_path
from application.errors import InvalidRequest, OutOfSpace, is_out_of_space

SEEDED_TABLES = ("dependency_profiles", "dependency_requirements", "dependency_bindings")
BATCH_ROWS = 2000


class CopyRefused(RuntimeError):
    """The target holds data, or the copy did not verify (nothing was changed)."""


@dataclass
class CopyReport:
    source: str
    target: str
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (source rows, target rows)
    indexed: tuple[int, int] = (0, 0)  # (models, search-index rows) in the target

    @property
    def rows(self) -> int:
        return sum(source for source, _ in self.counts.values())


def _tables() -> list[Table]:
    from adapters.sqlalchemy.all_tables import metadata

    return list(metadata.sorted_tables)  # parents before children


def _count(connection: Connection, table: Table | str) -> int:
    if isinstance(table, str):
        return connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
    return connection.execute(select(func.count()).select_from(table)).scalar_one()


def _search_rows(connection: Connection) -> int | None:
    """Rows of the search index (FTS5 or tsvector), None on a database without one."""
    if connection.dialect.name not in ("sqlite", "postgresql"):
        return None
    return _count(connection, SEARCH_INDEX_TABLE)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


_HELP_LINK = re.compile(r"\s*\(Background on this error at: [^)]*\)")


def _reason(exc: BaseException) -> str:
    """The driver's own words on one line: no "[SQL: ...]" echo, no SQLAlchemy help link."""
    reason = str(getattr(exc, "orig", None) or exc)
    return " ".join(_HELP_LINK.sub("", reason).split())[:300]


@contextmanager
def _using(role: str, url: str) -> Iterator[None]:
    """Errors of opening or upgrading the `role` database as one line naming it (password masked):
    unreachable or unopenable is "unavailable" (exit 7, as for every command's own database), a URL
    SQLAlchemy cannot use is an invalid request (exit 2)."""
    try:
        yield
    except ArgumentError as exc:  # also an unknown dialect or driver plugin (NoSuchModuleError)
        raise InvalidRequest(f"the {role} database URL {_safe(url)} cannot be used: {_reason(exc)}") from exc
    except ImportError as exc:  # the URL names a driver that is not installed (mysql://: MySQLdb)
        raise InvalidRequest(f"the {role} database URL {_safe(url)} needs a driver that is not installed: "
                             f"{_reason(exc)}") from exc
    except OSError as exc:  # its folder cannot be made (a file in the way, read-only, a full disk)
        if is_out_of_space(exc):  # not "unavailable": a full disk is its own exit code (10) everywhere
            raise OutOfSpace.from_os_error(exc, f"cannot create the {role} database {_safe(url)}") from exc
        what = f"{exc.filename} is not a folder" if isinstance(exc, (FileExistsError, NotADirectoryError)) \
            else f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".rstrip(": ")
        raise DatabaseUnreachable(f"cannot open the {role} database {_safe(url)}: {what}") from exc
    except SQLAlchemyError as exc:
        translate_damage(exc, url)  # damaged, unopenable, locked or refused: its own plain line (exit 7)
        if isinstance(exc, OperationalError):  # e.g. psycopg's "invalid port number", "invalid sslmode"
            raise DatabaseUnreachable(f"cannot use the {role} database {_safe(url)}: {_reason(exc)}") from exc
        raise CopyRefused(f"copy failed, the target was not changed: the {role} database {_safe(url)}: "
                          f"{_reason(exc)}") from exc


@contextmanager
def _copying(target_url: str) -> Iterator[None]:
    """A failure while rows move (either side; the transaction rolls back) as one line, without the link;
    a full disk (SQLite's "database or disk is full", PostgreSQL's disk_full: only the target grows) is
    OutOfSpace (exit 10)."""
    try:
        yield
    except SQLAlchemyError as exc:
        if is_disk_full(exc, target_url):  # only the target grows
            raise OutOfSpace(f"copy failed, the target was not changed: the target database {_safe(target_url)} "
                             "cannot grow: no space left on device", path=sqlite_file_name(target_url),
                             server=is_server(target_url)) from exc
        raise CopyRefused(f"copy failed, the target was not changed: {_reason(exc)}") from exc


def _safe(url: str) -> str:
    try:
        return _redact(url)
    except ArgumentError:
        return "(unparsable URL)"  # it could hold a password in a place make_url cannot find


def copy_database(source_url: str, target_url: str) -> CopyReport:
    """Copy every row from `source_url` into `target_url` (upgraded to head first); verified by counts."""
    from adapters.sqlalchemy.migrate import _transactional_engine, sync_sequences, upgrade_database

    with _using("source", source_url):
        path = sqlite_file_path(source_url)
        if path is not None and not os.path.lexists(path):
            # upgrade_database would create an empty one (and its folders) only to copy the seed rows
            raise DatabaseUnreachable(f"the source database {path} does not exist; nothing to copy")
    with _using("target", target_url):
        sqlite_file_path(target_url)  # parsed before the source is touched
    if _redact(source_url) == _redact(target_url):
        raise CopyRefused("the source and the target are the same database")
    with _using("source", source_url):
        upgrade_database(source_url)
        source: Engine = make_engine(source_url)
    with _using("target", target_url):
        upgrade_database(target_url)
        target: Engine = _transactional_engine(target_url)
    report = CopyReport(_redact(source_url), _redact(target_url))
    tables = _tables()
    try:
        with _copying(target_url), source.connect() as reader, target.connect() as writer:
            # A consistent snapshot of the source for the whole copy (SQLite: a read transaction;
            # PostgreSQL: REPEATABLE READ, so counts and rows agree while servers keep writing).
            if source.dialect.name == "postgresql":
                reader.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            with writer.begin():
                busy = [t.name for t in tables if t.name not in SEEDED_TABLES and _count(writer, t)]
                if busy:
                    raise CopyRefused(f"the target already holds data ({', '.join(busy[:5])}); "
                                      "copy into a new, empty database")
                for table in reversed(tables):
                    if table.name in SEEDED_TABLES:
                        writer.execute(table.delete())
                for table in tables:
                    _copy_table(reader, writer, table)
                rebuild_search_index(writer)
                if writer.dialect.name == "postgresql":
                    sync_sequences(writer)
                for table in tables:
                    report.counts[table.name] = (_count(reader, table), _count(writer, table))
                models = report.counts["models"][1]
                indexed = _search_rows(writer)
                report.indexed = (models, models if indexed is None else indexed)
                wrong = {name: pair for name, pair in report.counts.items() if pair[0] != pair[1]}
                if wrong or report.indexed[0] != report.indexed[1]:
                    raise CopyRefused(f"the copy did not verify, nothing was changed: rows {wrong}, "
                                      f"models/indexed {report.indexed}")
            reader.rollback()
    finally:
        source.dispose()
        target.dispose()
    return report


def _copy_table(reader: Connection, writer: Connection, table: Table) -> None:
    order = list(table.primary_key.columns) or list(table.columns)
    result = reader.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(
        select(table).order_by(*order)
    )
    for batch in result.mappings().partitions(BATCH_ROWS):
        writer.execute(table.insert(), [dict(row) for row in batch])
