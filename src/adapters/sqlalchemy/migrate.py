"""Programmatic Alembic: bring any database (fresh, legacy flat, or older) to the head revision.

Called by `mlxm db upgrade` and at server start-up. The whole upgrade (stamp of a legacy
database included) runs in ONE transaction with foreign keys off, so a failure leaves the
database exactly as it was; a copy of the file is made before the first step anyway.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, event, inspect, text
from sqlalchemy.exc import DatabaseError as SqlDatabaseError

from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.file_guard import describe_database, translate_damage
from adapters.sqlalchemy.migration_scripts import migrations_dir
from adapters.sqlalchemy.urls import sqlite_file_path
from application.errors import Conflict

log = logging.getLogger("mlxm.db")

BASELINE_REVISION = "0001_legacy_flat"
_UPGRADE_LOCK_ID = 0x6D6C786D5F6462  # "mlxm_db": the advisory lock id held while upgrading a PostgreSQL schema
# Tables and columns that only the flat layout has: enough to recognise it by shape.
_LEGACY_SHAPE = {"models": {"repo_id", "probed_at"}, "server_profiles": {"name", "model_id"}}


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


class LegacyUpgradeUnsupported(Conflict):
    """A flat (pre-redesign) layout found on a database other than SQLite (exit 4 / 409, as any conflict)."""


def sync_sequences(connection: Connection) -> None:
    """PostgreSQL: move every serial `id` sequence past the largest id in its table.

    Rows inserted with explicit ids (seeded profiles, `mlxm db copy`) do not advance the sequence,
    so the next ORM insert would collide without this.
    """
    rows = connection.execute(text(
        "SELECT c.table_name, pg_get_serial_sequence(quote_ident(c.table_name), c.column_name) "
        "FROM information_schema.columns c WHERE c.table_schema = current_schema() AND c.column_name = 'id' "
        "AND pg_get_serial_sequence(quote_ident(c.table_name), c.column_name) IS NOT NULL"
    )).all()
    for table, sequence in rows:
        connection.execute(
            text(f'SELECT setval(:seq, COALESCE((SELECT MAX(id) FROM "{table}"), 0) + 1, false)'), {"seq": sequence}
        )


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@dataclass
class UpgradeReport:
    from_revision: str | None
    to_revision: str
    legacy: bool = False
    backup_path: Path | None = None
    reports: list[dict] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.from_revision != self.to_revision


def is_legacy_database(connection: Connection) -> bool:
    """No alembic_version table, and the flat layout's tables and columns."""
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    if "alembic_version" in tables:
        return False
    for table, columns in _LEGACY_SHAPE.items():
        if table not in tables or not columns <= {c["name"] for c in inspector.get_columns(table)}:
            return False
    return True


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _transactional_engine(url: str) -> Engine:
    """pysqlite opens transactions lazily and never around DDL: take over BEGIN ourselves."""
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _autocommit_driver(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    return engine


def backup_database_file(path: Path, label: str) -> Path:
    """A consistent copy of a SQLite file (the backup API also copies WAL content)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    target = path.with_name(f"{path.name}.{label}-{stamp}.bak")
    source = sqlite3.connect(str(path))
    try:
        destination = sqlite3.connect(str(target))
        try:
            source.backup(destination)
        finally:
            destination.close()
    finally:
        source.close()
    shutil.copymode(path, target)
    return target


def upgrade_database(url: str, revision: str = "head") -> UpgradeReport:
    """Upgrade the database at `url` to `revision`; a legacy flat database is stamped first.

    A damaged, unopenable, locked or full database raises the error every other command raises for it
    (`translate_damage`), so `mlxm db upgrade` goes through the CLI's one error map like the rest.
    """
    try:
        return _upgrade_database(url, revision)
    except SqlDatabaseError as exc:
        translate_damage(exc, url)
        raise
    except CommandError as exc:
        if "can't locate revision" not in str(exc).lower():
            raise
        # A revision these scripts lack: a newer mlxm upgraded this database (was "internal error" everywhere).
        raise Conflict(f"this mlxm cannot upgrade the database{describe_database(url)}: {' '.join(str(exc).split())}"
                       " (was it upgraded by a newer mlxm?); nothing was changed") from exc


def _upgrade_database(url: str, revision: str) -> UpgradeReport:
    target = ScriptDirectory.from_config(alembic_config()).get_current_head() if revision == "head" else revision
    engine = _transactional_engine(url)
    try:
        with engine.connect() as connection:
            start = current_revision(connection)
            legacy = start is None and is_legacy_database(connection)
            connection.rollback()  # end the inspection's implicit transaction before PRAGMAs
            if legacy and connection.dialect.name != "sqlite":
                raise LegacyUpgradeUnsupported(
                    "this database has the legacy flat layout; upgrading that layout is SQLite-only "
                    "(earlier versions only ever wrote SQLite). Upgrade the SQLite file, then `mlxm db copy --to URL`."
                )
            if start == target:
                return UpgradeReport(start, target)
            backup = None
            path = sqlite_file_path(url)
            if path is not None and path.exists() and path.stat().st_size > 0 and (legacy or start is not None):
                backup = backup_database_file(path, f"before-{target}")
                log.info("database backup written to %s", backup)
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # Table rebuilds must not cascade deletes; checked again before commit. (A PRAGMA
                # inside a transaction is ignored, so it goes straight to the driver, outside one.)
                _driver_execute(connection, "PRAGMA foreign_keys = OFF")
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    # Several servers may start at once on one database: one upgrades, the others
                    # wait here, then find it at head below. (SQLite's BEGIN IMMEDIATE does this.)
                    connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _UPGRADE_LOCK_ID})
                # Checked again under the write lock: another process may have upgraded meanwhile.
                start = current_revision(connection)
                legacy = start is None and is_legacy_database(connection)
                report_count = _count_reports(connection)
                config = alembic_config(connection)
                if legacy:
                    log.info("legacy database recognised by its shape; stamping %s", BASELINE_REVISION)
                    command.stamp(config, BASELINE_REVISION)
                if start != target:
                    command.upgrade(config, revision)
                if sqlite:
                    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if problems:  # the transaction rolls back: nothing was changed
                        raise Conflict(f"the upgrade would leave dangling foreign keys, so nothing was changed: "
                                       f"{problems[:5]}")
                reports = _new_reports(connection, report_count)
                if connection.dialect.name == "postgresql":
                    sync_sequences(connection)  # data migrations insert rows with explicit ids
            if sqlite:
                _driver_execute(connection, "PRAGMA foreign_keys = ON")
            if reports:  # each value was logged by the migration itself
                log.warning("upgrade kept %d report(s) in migration_reports (`mlxm db reports`)", len(reports))
            return UpgradeReport(start, current_revision(connection) or target, legacy, backup, reports)
    finally:
        engine.dispose()


def downgrade_database(url: str, revision: str) -> Path | None:
    """Downgrade to `revision` in one transaction; returns the backup of a SQLite file taken first."""
    backup = None
    path = sqlite_file_path(url)
    if path is not None and path.exists() and path.stat().st_size > 0:
        backup = backup_database_file(path, f"before-downgrade-{revision.replace('/', '_')}")
        log.info("database backup written to %s", backup)
    engine = _transactional_engine(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                _driver_execute(connection, "PRAGMA foreign_keys = OFF")
            with connection.begin():
                command.downgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()
    return backup


def _driver_execute(connection: Connection, sql: str) -> None:
    connection.connection.driver_connection.execute(sql)


def _count_reports(connection: Connection) -> int:
    if "migration_reports" not in inspect(connection).get_table_names():
        return 0
    return connection.execute(text("SELECT COUNT(*) FROM migration_reports")).scalar() or 0


def _new_reports(connection: Connection, already: int) -> list[dict]:
    if "migration_reports" not in inspect(connection).get_table_names():
        return []
    rows = connection.execute(
        text("SELECT entity, entity_id, field, value, message FROM migration_reports ORDER BY id")
    ).mappings().all()
    return [dict(r) for r in rows[already:]]


def migration_reports(url: str) -> list[dict]:
    """Everything upgrades reported (values not carried over), oldest first."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return _new_reports(connection, 0)
    except SqlDatabaseError as exc:
        translate_damage(exc, url)  # damaged or unopenable: one "unavailable" line, not an internal error
        raise
    finally:
        engine.dispose()
