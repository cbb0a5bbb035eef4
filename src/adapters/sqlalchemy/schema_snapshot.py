"""A new SQLite database in one step: the schema and seed rows the migrations build, from a snapshot.

As Rails' `db:schema:load` does for a new database: alembic replays every migration (~0.4 s, most of a
first command's start-up, issue 19); this runs one SQL script with the standard library. The snapshot
names the head revision it was made at and is used only when that is the migration scripts' head, so a
stale snapshot costs speed, never correctness. Existing databases are always upgraded by alembic.

`python -m adapters.sqlalchemy.schema_snapshot` rewrites it; tests/integration/test_schema_snapshot.py
checks that it is current and that it builds the same database as the migrations.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from adapters.filesystem.durability import fsync_dir, fsync_file
from adapters.sqlalchemy.migration_scripts import migrations_dir, script_head_revision

SNAPSHOT_NAME = "sqlite_head.sql"
_HEAD_LINE = "-- head: "


def snapshot_path() -> Path:
    return migrations_dir() / SNAPSHOT_NAME


def create_from_snapshot(path: Path) -> bool:
    """Create the SQLite database file `path` from the snapshot. False, with nothing changed, when the
    snapshot is missing or stale, or when `path` exists (another process may have made it meanwhile)."""
    head = script_head_revision()
    try:
        script = snapshot_path().read_text(encoding="utf-8")
    except OSError:
        return False
    if head is None or script.split("\n", 1)[0] != _HEAD_LINE + head:
        return False
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)
    try:
        try:
            connection = sqlite3.connect(temp, isolation_level=None)
            try:
                # A scratch file until it is linked into place, deleted on any failure: no journal and no fsync
                # per commit (34 ms -> 3 ms here). One fsync of the finished file makes it durable before
                # its name appears.
                connection.execute("PRAGMA journal_mode=OFF")
                connection.execute("PRAGMA synchronous=OFF")
                connection.executescript(script)  # one transaction: the script is BEGIN ... COMMIT
                # Stored in the file: the first connection's `journal_mode = WAL` (engine.py) then writes
                # nothing, where it used to rewrite the header through a journal (three fsyncs).
                connection.execute("PRAGMA journal_mode=WAL")
            finally:
                connection.close()
        except sqlite3.Error:  # e.g. a SQLite without FTS5: alembic runs instead and reports it its usual way
            return False
        fsync_file(Path(temp))
        try:
            # Create-if-absent: a database that appeared meanwhile is never replaced.
            os.link(temp, path)
        except OSError:  # it exists, or the filesystem has no hard links: alembic makes it instead
            return False
        fsync_dir(path.parent)
        return True
    finally:
        os.unlink(temp)


def render_snapshot(connection: sqlite3.Connection, head: str, made: tuple[datetime, datetime]) -> str:
    """The SQL that rebuilds the database behind `connection` (made by the migrations between the two times
    of `made`): tables, their rows, then indexes and triggers. A time the migrations stamped as "now" (a seed
    row's created_at) is written as SQLite's 'now', so each new database gets its own."""
    shadow = {row[1] for row in connection.execute("PRAGMA table_list") if row[2] == "shadow"}
    entries = [(kind, name, sql) for kind, name, sql in connection.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
        if name not in shadow and not name.startswith("sqlite_")]
    lines = [_HEAD_LINE + head, "-- Written by `python -m adapters.sqlalchemy.schema_snapshot`; do not edit.",
             "BEGIN;"]
    user_version = connection.execute("PRAGMA user_version").fetchone()[0]
    if user_version:
        lines.append(f"PRAGMA user_version = {user_version};")
    lines += [f"{sql};" for kind, _, sql in entries if kind == "table"]
    # Rows before indexes and triggers: a trigger must not fire again for a row its migration already handled.
    plain = [name for kind, name, sql in entries if kind == "table" and not sql.upper().startswith("CREATE VIRTUAL")]
    for table in plain + (["sqlite_sequence"] if _has_table(connection, "sqlite_sequence") else []):
        columns = connection.execute(f'PRAGMA table_info("{table}")').fetchall()
        times = [column[2].upper() in ("DATETIME", "TIMESTAMP") for column in columns]
        if table == "sqlite_sequence":
            lines.append("DELETE FROM sqlite_sequence;")  # the inserts above advanced it; keep the migrations' own
        for row in connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
            values = ",".join(_NOW if is_time and _stamped_now(value, made) else _literal(value)
                              for value, is_time in zip(row, times))
            lines.append(f'INSERT INTO "{table}" VALUES({values});')
    lines += [f"{sql};" for kind, _, sql in entries if kind != "table"]
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


# SQLAlchemy's SQLite DateTime text (microseconds), UTC, at the time the script runs.
_NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


def _stamped_now(value, made: tuple[datetime, datetime]) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False
    start, end = made
    return start <= moment.replace(tzinfo=None) <= end


def _literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    return connection.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None


def build_with_migrations(path: Path) -> tuple[datetime, datetime]:
    """A new database at `path`, made by alembic from the migration scripts; the UTC times it took."""
    from adapters.sqlalchemy.engine import dispose_engines
    from adapters.sqlalchemy.migrate import upgrade_database

    start = _utc_now()
    upgrade_database(f"sqlite:///{path}")
    dispose_engines()
    return start, _utc_now()


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def main() -> None:
    head = script_head_revision()
    if head is None:
        raise SystemExit("the migration scripts have no single head revision")
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "head.db"
        made = build_with_migrations(database)
        connection = sqlite3.connect(database)
        try:
            text = render_snapshot(connection, head, made)
        finally:
            connection.close()
    snapshot_path().write_text(text, encoding="utf-8")
    print(f"wrote {snapshot_path()} ({head})")


if __name__ == "__main__":
    main()
