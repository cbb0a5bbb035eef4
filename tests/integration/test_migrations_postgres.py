"""Alembic migrations on a real PostgreSQL server the tests start (empty -> head, down and up again)."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from adapters.sqlalchemy.all_tables import metadata
from adapters.sqlalchemy.migrate import (
    BASELINE_REVISION,
    LegacyUpgradeUnsupported,
    alembic_config,
    downgrade_database,
    head_revision,
    upgrade_database,
)
from adapters.sqlalchemy.search_index import SEARCH_INDEX_TABLE, is_search_index_table
from application.library.ports import ModelQuery
from domain.library.dependency_model import DependencyProfile, Requirement
from domain.enums import ModelType
from domain.library.models import Model
from tests.support.database import SqliteUnitOfWorks as UnitOfWorks


@pytest.fixture
def empty_url(postgres_templates):
    url = postgres_templates.empty_database()
    yield url
    postgres_templates.drop(url)


def _schema_diff(url: str) -> list:
    def include_name(name, type_, parent_names):
        return not (type_ == "table" and name and is_search_index_table(name))

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": include_name})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def _scalar(url: str, sql: str):
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def test_an_empty_postgresql_database_upgrades_to_head_and_matches_the_models(empty_url):
    report = upgrade_database(empty_url)
    assert report.from_revision is None and report.to_revision == head_revision() and not report.legacy
    assert report.backup_path is None  # no file to copy: PostgreSQL has its own backups
    assert _schema_diff(empty_url) == []
    command.check(alembic_config(url=empty_url))
    assert not upgrade_database(empty_url).changed
    # The search index is a tsvector table with a GIN index, not a LIKE scan.
    assert _scalar(empty_url, f"SELECT indexdef FROM pg_indexes WHERE tablename = '{SEARCH_INDEX_TABLE}' "
                              "AND indexdef LIKE '%gin%'") is not None


def test_postgresql_downgrades_to_the_baseline_and_up_again(empty_url):
    upgrade_database(empty_url)
    downgrade_database(empty_url, BASELINE_REVISION)
    engine = create_engine(empty_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    # The flat baseline is SQLite-only: on PostgreSQL it is empty (only alembic's own table stays).
    assert tables == {"alembic_version"}
    upgrade_database(empty_url)
    assert _schema_diff(empty_url) == []


def test_rows_seeded_by_migrations_do_not_block_new_rows(empty_url):
    """Migrations insert dependency profiles with explicit ids; the id sequence must move past them."""
    upgrade_database(empty_url)
    assert _scalar(empty_url, "SELECT COUNT(*) FROM dependency_profiles") > 0
    uows = UnitOfWorks(empty_url)
    try:
        with uows() as uow:
            uow.dependency_profiles.add(DependencyProfile("mine", 1, "python-venv", (Requirement("numpy", "==1.26.4"),)))
            uow.commit()
        with uows() as uow:
            assert uow.dependency_profiles.get("mine", 1) is not None
    finally:
        uows.dispose()


def test_a_flat_legacy_layout_on_postgresql_is_refused_with_the_reason(empty_url):
    engine = create_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE models (id SERIAL PRIMARY KEY, repo_id TEXT, probed_at TIMESTAMP)"))
            connection.execute(text("CREATE TABLE server_profiles (id SERIAL PRIMARY KEY, name TEXT, model_id INT)"))
    finally:
        engine.dispose()
    with pytest.raises(LegacyUpgradeUnsupported, match="SQLite-only"):
        upgrade_database(empty_url)
    assert _scalar(empty_url, "SELECT to_regclass('alembic_version')") is None  # left as it was


def test_the_search_index_is_written_in_the_same_transaction_as_the_rows(postgres_url):
    uows = UnitOfWorks(postgres_url)
    try:
        with uows() as uow:
            uow.models.add(Model("qwen-tiny", model_type=ModelType.TEXT_GEN, family="qwen"))
            assert uow.models.search(ModelQuery(text="qwe")).total == 1  # visible inside the transaction
            uow.rollback()
        assert _scalar(postgres_url, f"SELECT COUNT(*) FROM {SEARCH_INDEX_TABLE}") == 0
        with uows() as uow:
            uow.models.add(Model("qwen-tiny", model_type=ModelType.TEXT_GEN, family="qwen"))
            uow.commit()
        assert _scalar(postgres_url, f"SELECT COUNT(*) FROM {SEARCH_INDEX_TABLE}") == 1
        with uows() as uow:
            uow.models.remove("qwen-tiny")
            uow.commit()
        assert _scalar(postgres_url, f"SELECT COUNT(*) FROM {SEARCH_INDEX_TABLE}") == 0
    finally:
        uows.dispose()
