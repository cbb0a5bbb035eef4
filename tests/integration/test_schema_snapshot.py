"""A new SQLite database made from the head schema's snapshot is the one the migrations build (real SQLite)."""

import sqlite3
from datetime import datetime, timezone

import pytest

from adapters.sqlalchemy import schema_snapshot
from adapters.sqlalchemy.database import open_database
from adapters.sqlalchemy.engine import dispose_engines
from adapters.sqlalchemy.migration_scripts import script_head_revision


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    path = tmp_path_factory.mktemp("migrated") / "head.db"
    return path, schema_snapshot.build_with_migrations(path)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _made_now(value, made) -> bool:
    try:
        return made[0] <= datetime.fromisoformat(value) <= made[1]
    except (TypeError, ValueError):
        return False


def _contents(path, made) -> dict:
    """Every table's rows, a time stamped while the database was made (`made`) replaced by "now"."""
    connection = sqlite3.connect(path)
    try:
        master = sorted(((kind, name, table, _ddl(sql)) for kind, name, table, sql in
                         connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")), key=repr)
        rows = {name: sorted((tuple("now" if _made_now(v, made) else v for v in row)
                              for row in connection.execute(f'SELECT * FROM "{name}"')), key=repr)
                for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        pragmas = {p: connection.execute(f"PRAGMA {p}").fetchone()[0] for p in ("user_version", "application_id")}
    finally:
        connection.close()
    return {"master": master, "rows": rows, "pragmas": pragmas}


REGENERATE = "run `.venv/bin/python -m adapters.sqlalchemy.schema_snapshot` to rewrite migrations/sqlite_head.sql"


def test_the_snapshot_is_at_the_scripts_head():
    first = schema_snapshot.snapshot_path().read_text(encoding="utf-8").split("\n", 1)[0]
    assert first == f"-- head: {script_head_revision()}", REGENERATE


def _ddl(sql):
    """A CREATE TABLE with its constraint clauses sorted: alembic's batch rebuilds emit them in set order."""
    if sql is None or not sql.startswith("CREATE TABLE"):
        return sql
    head, _, body = sql.partition("(")
    parts = [part.strip().rstrip(",").strip() for part in body.rsplit(")", 1)[0].split("\n\t")]
    columns = [p for p in parts if p and not p.startswith("CONSTRAINT")]
    return head, tuple(columns), tuple(sorted(p for p in parts if p.startswith("CONSTRAINT")))


def test_a_database_from_the_snapshot_is_the_one_the_migrations_build(migrated, tmp_path):
    new = tmp_path / "new.db"
    start = _now()
    assert schema_snapshot.create_from_snapshot(new)
    ours, theirs = _contents(new, (start, _now())), _contents(*migrated)
    assert ours["master"] == theirs["master"], REGENERATE
    # Seed rows (their created_at: when this database was made), alembic_version, sqlite_sequence, FTS tables.
    assert ours["rows"] == theirs["rows"], REGENERATE
    assert any("now" in row for row in ours["rows"]["dependency_profiles"])
    assert ours["pragmas"] == theirs["pragmas"]
    assert ours["rows"]["alembic_version"] == [(script_head_revision(),)]
    assert not list(tmp_path.glob(".new.db.*"))  # the temporary file is gone


def test_a_new_sqlite_database_is_made_from_the_snapshot_without_alembic(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("adapters.sqlalchemy.migrate.upgrade_database", lambda *a, **k: calls.append(a))
    engine = open_database(f"sqlite:///{tmp_path / 'home' / 'mlxm.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").all() == \
                [(script_head_revision(),)]
    finally:
        dispose_engines()
    assert calls == []


def test_a_stale_snapshot_is_not_used(tmp_path, monkeypatch):
    stale = tmp_path / "stale.sql"
    text = schema_snapshot.snapshot_path().read_text(encoding="utf-8")
    stale.write_text(text.replace(script_head_revision(), "0011_an_older_head", 1), encoding="utf-8")
    monkeypatch.setattr(schema_snapshot, "snapshot_path", lambda: stale)
    assert not schema_snapshot.create_from_snapshot(tmp_path / "new.db")
    assert not (tmp_path / "new.db").exists()
    # ... and opening a new database then runs the migrations, as before
    engine = open_database(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == \
                script_head_revision()
    finally:
        dispose_engines()


def test_an_existing_file_is_never_replaced(tmp_path):
    existing = tmp_path / "mlxm.db"
    existing.write_bytes(b"the user's bytes")
    assert not schema_snapshot.create_from_snapshot(existing)
    assert existing.read_bytes() == b"the user's bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["mlxm.db"]


def test_a_snapshot_sqlite_cannot_run_leaves_the_database_to_the_migrations(tmp_path, monkeypatch):
    broken = tmp_path / "broken.sql"
    broken.write_text(f"-- head: {script_head_revision()}\nBEGIN;\nCREATE VIRTUAL TABLE t USING no_such_module(a);\n"
                      "COMMIT;\n", encoding="utf-8")
    monkeypatch.setattr(schema_snapshot, "snapshot_path", lambda: broken)
    assert not schema_snapshot.create_from_snapshot(tmp_path / "new.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.sql"]  # no database, no temporary file


def test_a_database_from_the_snapshot_is_stored_in_wal_mode_with_no_scratch_files_left(tmp_path):
    """The engine's `journal_mode = WAL` on the first connection then changes nothing on disk (it used to
    rewrite the header through a rollback journal), and the scratch file it was built in is gone."""
    path = tmp_path / "mlxm.db"
    assert schema_snapshot.create_from_snapshot(path)
    header = path.read_bytes()[:20]
    assert (header[18], header[19]) == (2, 2)  # SQLite's file format numbers for WAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlxm.db"]
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        connection.close()
