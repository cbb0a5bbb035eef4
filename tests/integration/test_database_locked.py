"""A SQLite database another process holds locked past the busy timeout: the unit of work reports it as
"unavailable" (HTTP 503, CLI exit 7, one line naming the file), not as an internal error."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, text

from adapters.sqlalchemy.engine import make_session_factory
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from application.errors import Unavailable
from entrypoints.errors import mapping_for


def test_a_write_to_a_database_locked_by_another_process_is_unavailable(tmp_path):
    path = tmp_path / "mlxm.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")  # as `sqlite3 mlxm.db` with an open write transaction
    try:
        # No busy timeout (mlxm's engines wait 15 s first): the same error, at once.
        engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
        with pytest.raises(Unavailable) as caught:
            with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
                uow.session.execute(text("INSERT INTO t VALUES (1)"))
        engine.dispose()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(caught.value)
    assert f"the database {path} is locked by another process" in message and "\n" not in message
    assert mapping_for(caught.value).exit_code == 7 and mapping_for(caught.value).status == 503
