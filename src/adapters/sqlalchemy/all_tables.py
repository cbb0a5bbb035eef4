"""Imports every module that defines records on the shared metadata.

Alembic's env.py and the model/migration agreement test import this one module. Adding a
table module? Add one import line here (and a migration under `migrations/versions`).
"""

from adapters.sqlalchemy import tables  # noqa: F401
from adapters.sqlalchemy import auth_tables  # noqa: F401  (users, api_keys, cloud_credentials, audit_logs)
from adapters.sqlalchemy import download_tables  # noqa: F401  (downloads)
from adapters.sqlalchemy import profile_tables  # noqa: F401  (execution/inference/audio profiles)
from adapters.sqlalchemy import routing_tables  # noqa: F401  (backend_mappings)
from adapters.sqlalchemy import settings_tables  # noqa: F401  (settings, server_config, migration_reports)
from adapters.sqlalchemy import library_tables  # noqa: F401  (dependency profiles/bindings, model links)
from adapters.sqlalchemy import host_tables  # noqa: F401  (pool_state per host)
from adapters.sqlalchemy import overlay_tables  # noqa: F401  (model_overlays)
from adapters.sqlalchemy.tables import metadata

__all__ = ["metadata"]
