"""Every repository port runs one contract suite against the in-memory fake, SQLite AND PostgreSQL."""

from __future__ import annotations

import pytest

from adapters.memory.repositories import InMemoryUnitOfWork
from tests.support.database import SqliteUnitOfWorks, migrated_database


@pytest.fixture(scope="session")
def database_template_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("db-template")


@pytest.fixture(params=["memory", "sqlalchemy", "postgresql"])
def uow_factory(request, tmp_path, database_template_dir):
    """A callable returning a unit of work, as the container hands it to use cases."""
    if request.param == "memory":
        uow = InMemoryUnitOfWork()  # the fake is one shared instance (its state is the "database")
        yield lambda: uow
        return
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")  # a real server the session started (skips without)
    else:
        url = migrated_database(tmp_path, database_template_dir)
    factory = SqliteUnitOfWorks(url)
    yield factory
    factory.dispose()
