"""Alembic environment: runs online against the connection or URL the caller provides.

`adapters.sqlalchemy.migrate.upgrade_database(url)` is the normal entry point; it passes an
open connection in `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from adapters.sqlalchemy.all_tables import metadata
from adapters.sqlalchemy.search_index import is_search_index_table

config = context.config


def include_name(name, type_, parent_names) -> bool:
    # The FTS5 index and its shadow tables live outside the metadata, behind the adapter.
    if type_ == "table" and name is not None and is_search_index_table(name):
        return False
    return True


def _widen_version_table(connection) -> None:
    """Alembic's own version table holds 32 characters, and revision ids here are longer
    (`0005_vision_embedding_dependencies`); SQLite ignores lengths, PostgreSQL does not. Alembic
    uses an existing table as it is, so create it wide first."""
    if connection.dialect.name != "sqlite":
        connection.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(255) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )


def _configure_and_run(connection) -> None:
    _widen_version_table(connection)
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _configure_and_run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("mlxm migrations run online only: use `mlxm db upgrade`")
run_migrations_online()
