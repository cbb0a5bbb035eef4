"""`mlxm db upgrade` / `mlxm db reports` on a copy of a legacy database, as users run them."""

from __future__ import annotations

import json
import shutil
import sqlite3

from click.testing import CliRunner

from entrypoints.cli.main import cli
from tests.integration.test_migrations import LEGACY_PROFILES, build_legacy_database


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_db_upgrade_moves_a_legacy_database_into_the_new_tables(tmp_path, monkeypatch):
    original = tmp_path / "original.db"
    build_legacy_database(original, leftovers=True)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(original, home / "mlxm.db")
    monkeypatch.setenv("MLX_MANAGER_HOME", str(home))

    result = _run("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "Upgraded database from legacy layout" in result.output
    assert "10 value(s) were not carried over" in result.output
    assert len(list(home.glob("mlxm.db.*.bak"))) == 1

    with sqlite3.connect(home / "mlxm.db") as db:
        assert db.execute("SELECT COUNT(*) FROM execution_profiles").fetchone() == (len(LEGACY_PROFILES),)
        assert db.execute("SELECT profile_type, COUNT(*) FROM execution_profiles GROUP BY profile_type "
                          "ORDER BY profile_type").fetchall() == [("audio", 1), ("base", 1), ("inference", 4)]
        assert db.execute("SELECT COUNT(*) FROM model_capabilities").fetchone() == (5,)
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'server_profiles'").fetchall() == []

    again = _run("db", "upgrade")
    assert again.exit_code == 0 and "already at" in again.output

    reports = _run("db", "reports", "--json")
    rows = json.loads(reports.output)
    assert {(r["entity"], r["entity_id"], r["field"]) for r in rows} >= {
        ("server_profiles", "2", "temperature"), ("server_profiles", "1", "tool_call_parser")}


def test_db_upgrade_on_a_file_that_is_not_a_database_fails_in_one_line(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "mlxm.db").write_bytes(b"this is not a sqlite database" * 100)
    monkeypatch.setenv("MLX_MANAGER_HOME", str(home))
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 7, result.output  # "unavailable", through the CLI's one error map
    assert result.output.startswith("Error: the database is damaged (file is not a database)")
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    # The same line and exit code as any other command meeting that file (it had its own wording and codes).
    for other in (["db", "reports"], ["list"]):
        again = CliRunner().invoke(cli, other)
        assert (again.exit_code, again.output) == (7, result.output), other


def test_db_upgrade_of_a_database_from_a_newer_mlxm_is_the_same_conflict_line_as_other_commands(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("MLX_MANAGER_HOME", str(home))
    assert _run("db", "upgrade").exit_code == 0
    with sqlite3.connect(home / "mlxm.db") as db:  # a revision these migration scripts do not have
        db.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    before = (home / "mlxm.db").read_bytes()
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 4, result.output  # was "internal error: CommandError" (exit 70) in every command
    assert result.output == (f"Error: this mlxm cannot upgrade the database {home / 'mlxm.db'}: Can't locate "
                             "revision identified by '9999_from_the_future' (was it upgraded by a newer mlxm?); "
                             "nothing was changed\n")
    listed = CliRunner().invoke(cli, ["list"])
    assert (listed.exit_code, listed.output) == (4, result.output)
    assert (home / "mlxm.db").read_bytes() == before


def test_db_upgrade_prints_its_report_once_and_an_off_flag_is_not_a_lost_value(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    home = tmp_path / "home"
    home.mkdir()
    build_legacy_database(home / "mlxm.db", leftovers=True)
    with sqlite3.connect(home / "mlxm.db") as db:  # the audio profile carries the legacy default 0
        db.execute("UPDATE server_profiles SET force_tool_injection = 0 WHERE id = 2")
    env = {**os.environ, "MLX_MANAGER_HOME": str(home)}
    done = subprocess.run([str(Path(sys.executable).with_name("mlxm")), "db", "upgrade"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    both = done.stdout + done.stderr
    assert both.count("tool_call_parser") == 1, both  # each value once: not also as a log line
    assert "force_tool_injection" not in both
    assert "10 value(s) were not carried over" in done.stdout
