"""Suite-wide safety net: no test may touch the user's ~/.mlx-manager."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_mlx_manager_home(tmp_path_factory, monkeypatch):
    # A Container() built without settings resolves the database under MLX_MANAGER_HOME; point it
    # at a throw-away folder unless the test chose one itself.
    import os

    if "MLX_MANAGER_HOME" not in os.environ:
        monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path_factory.mktemp("mlxm-home")))


@pytest.fixture(scope="session")
def postgres_server():
    """One throw-away PostgreSQL server per test session (per xdist worker); skips (fails under CI=true) without one."""
    from tests.support.postgres import PostgresServer, skip_or_fail, unavailable_reason

    reason = unavailable_reason()
    if reason:
        skip_or_fail(reason)
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_templates(postgres_server):
    from tests.support.postgres import PostgresTemplates

    return PostgresTemplates(postgres_server)


@pytest.fixture
def postgres_url(postgres_templates):
    """URL of a fresh PostgreSQL database at head, dropped after the test."""
    url = postgres_templates.migrated_database()
    yield url
    postgres_templates.drop(url)
