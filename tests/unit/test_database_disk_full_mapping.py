"""PostgreSQL's disk_full (SQLSTATE 53100) from any command's database is a full disk (exit 10 / 507) whose advice
names the server's disk, not MLX_MANAGER_HOME (adapters/sqlalchemy/file_guard.py, entrypoints/errors.py)."""

from __future__ import annotations

import pytest
from psycopg import errors as pg
from sqlalchemy.exc import OperationalError

from adapters.sqlalchemy.file_guard import translate_damage
from application.errors import OutOfSpace
from entrypoints.errors import mapping_for, message_for

URL = "postgresql+psycopg://mlxm:secret@db.example/mlxm"


def test_a_postgresql_disk_full_is_out_of_space_on_the_server():
    failure = OperationalError("INSERT INTO settings ...", {}, pg.DiskFull('could not extend file "base/1/2"'))
    with pytest.raises(OutOfSpace) as raised:
        translate_damage(failure, URL)
    assert (mapping_for(raised.value).status, mapping_for(raised.value).exit_code) == (507, 10)
    assert message_for(raised.value, "/home/me/.mlxm") == (
        "the database postgresql+psycopg://mlxm:***@db.example/mlxm cannot grow: no space left on device; nothing "
        "of this change was written; free space on the database server's disk")


def test_another_postgresql_operational_error_is_not_a_full_disk():
    failure = OperationalError("SELECT 1", {}, pg.QueryCanceled("canceling statement due to statement timeout"))
    assert translate_damage(failure, URL) is None  # not mapped here: not "no space left"
