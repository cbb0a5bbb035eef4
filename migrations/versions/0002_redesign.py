"""The data-model redesign: joined-table capabilities and profiles, library tables, FTS index.

Upgrades a flat (legacy) database in place, inside the caller's single transaction:
1. every legacy table is renamed `legacy_<name>` and its indexes dropped;
2. the redesigned tables are created;
3. rows are copied with their values (`lm`/NULL -> `text-gen`, `multimodal` -> `vision`,
   upper-case enum names -> lower-case values); probed models get one `model_capabilities`
   row plus one subclass row holding only their type's columns; each `server_profiles`
   row becomes an `execution_profiles` row plus the subclass its model's type calls for;
4. a value that has no place in the new shape (an audio profile's temperature, a leftover
   column such as `tool_call_parser`) is written to `migration_reports` and logged, never
   silently dropped;
5. only then are the legacy tables dropped.
Leftover columns (`tool_call_parser`, `port`, ...) may or may not exist: rows are read
with `SELECT *`, so both shapes work.

Revision ID: 0002_redesign
Revises: 0001_legacy_flat
Create Date: 2026-11-23
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0002_redesign"
down_revision = "0001_legacy_flat"
branch_labels = None
depends_on = None

log = logging.getLogger("mlxm.migrations")

LEGACY_TABLES = (
    "models", "server_profiles", "settings", "downloads", "users",
    "backend_mappings", "cloud_credentials", "server_config", "audit_logs",
)
MODEL_TYPES = ("text-gen", "vision", "embeddings", "audio")
CAPABILITY_COLUMNS = {
    "text-gen": ("supports_native_tools", "supports_thinking", "tool_format", "practical_max_tokens",
                 "tool_parser_id", "thinking_parser_id"),
    "vision": ("supports_native_tools", "supports_thinking", "supports_multi_image", "supports_video",
               "tool_parser_id", "thinking_parser_id"),
    "embeddings": ("embedding_dimensions", "max_sequence_length", "is_normalized"),
    "audio": ("supports_tts", "supports_stt"),
}
ALL_CAPABILITY_COLUMNS = sorted({c for cols in CAPABILITY_COLUMNS.values() for c in cols} | {"probe_version"})
CAPABILITY_TABLES = {
    "text-gen": "text_gen_capabilities",
    "vision": "vision_capabilities",
    "embeddings": "embedding_capabilities",
    "audio": "audio_capabilities",
}
# legacy server_profiles column -> (group, new column)
PROFILE_FIELDS = {
    "temperature": ("inference", "temperature"),
    "max_tokens": ("inference", "max_tokens"),
    "top_p": ("inference", "top_p"),
    "context_length": ("inference", "context_length"),
    "system_prompt": ("inference", "system_prompt"),
    "force_tool_injection": ("inference", "enable_tool_injection"),
    "tts_default_voice": ("audio", "voice"),
    "tts_default_speed": ("audio", "speed"),
    "tts_sample_rate": ("audio", "sample_rate"),
    "stt_default_language": ("audio", "stt_language"),
}
# Legacy flags whose 0/False is the default, not a setting a user made.
LEGACY_OFF_FLAGS = frozenset({"force_tool_injection"})
PROFILE_BASE_COLUMNS = ("id", "name", "description", "model_id", "auto_start", "launchd_installed",
                        "created_at", "updated_at")
PROFILE_TYPE_FOR_MODEL = {"text-gen": "inference", "vision": "inference", "audio": "audio", "embeddings": "base"}
# Valid ranges of the profile defaults (as the domain checks them when a profile loads).
PROFILE_RANGES = {
    "temperature": (0.0, 2.0), "max_tokens": (1, 128_000), "top_p": (0.0, 1.0),
    "context_length": (1, 10_000_000), "speed": (0.25, 4.0), "sample_rate": (8_000, 192_000),
}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class _Reports:
    """Values the upgrade could not carry over as they were: stored and logged."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, entity: str, entity_id, field: str, value, message: str) -> None:
        shown = None if value is None else (value if isinstance(value, str) else json.dumps(value, default=str))
        self.rows.append({"revision": revision, "created_at": _now(), "entity": entity,
                          "entity_id": None if entity_id is None else str(entity_id),
                          "field": field, "value": shown, "message": message})
        log.warning("upgrade: %s %s: %s=%r %s", entity, entity_id, field, value, message)


def _rows(bind, table: str) -> list[dict]:
    return [dict(r._mapping) for r in bind.execute(sa.text(f"SELECT * FROM {table}"))]


def _table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns))


def _insert(bind, name: str, rows: list[dict]) -> None:
    if rows:
        bind.execute(sa.insert(_table(name, *rows[0].keys())), rows)


def _lower(value):
    return value.lower() if isinstance(value, str) else value


def _model_type(value, reports: _Reports, model_pk) -> str:
    if value is None or str(value).strip().lower() in ("", "lm"):
        return "text-gen"
    lowered = str(value).strip().lower()
    if lowered == "multimodal":
        return "vision"
    if lowered in MODEL_TYPES:
        return lowered
    reports.add("models", model_pk, "model_type", value, "unknown model type; treated as text-gen")
    return "text-gen"


def _report_extras(row: dict, known: set[str], entity: str, reports: _Reports) -> None:
    for column, value in row.items():
        if column not in known and value is not None:
            reports.add(entity, row.get("id"), column, value, "column has no place in the new schema; value not carried over")


def _move_legacy_tables_aside(bind) -> set[str]:
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    moved = set()
    for table in LEGACY_TABLES:
        if table not in present:
            continue
        for index in inspector.get_indexes(table):
            if index.get("name"):
                op.drop_index(index["name"], table_name=table)
        op.rename_table(table, f"legacy_{table}")
        moved.add(table)
    return moved


def create_redesigned_schema() -> None:
    op.create_table('audit_logs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('timestamp', sa.DateTime(), nullable=False),
    sa.Column('model', sa.String(length=255), nullable=False),
    sa.Column('backend_type', sa.String(length=32), nullable=False),
    sa.Column('endpoint', sa.String(length=128), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('prompt_tokens', sa.Integer(), nullable=True),
    sa.Column('completion_tokens', sa.Integer(), nullable=True),
    sa.Column('total_tokens', sa.Integer(), nullable=True),
    sa.Column('error_type', sa.String(length=64), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_logs'))
    )
    op.create_index('ix_audit_logs_model_timestamp', 'audit_logs', ['model', 'timestamp'], unique=False)
    op.create_index(op.f('ix_audit_logs_request_id'), 'audit_logs', ['request_id'], unique=False)
    op.create_index(op.f('ix_audit_logs_status'), 'audit_logs', ['status'], unique=False)
    op.create_index(op.f('ix_audit_logs_timestamp'), 'audit_logs', ['timestamp'], unique=False)
    op.create_table('backend_mappings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_pattern', sa.String(length=255), nullable=False),
    sa.Column('pattern_type', sa.String(length=16), nullable=False),
    sa.Column('backend_type', sa.String(length=32), nullable=False),
    sa.Column('backend_model', sa.String(length=255), nullable=True),
    sa.Column('fallback_backend', sa.String(length=32), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backend_mappings'))
    )
    op.create_index(op.f('ix_backend_mappings_model_pattern'), 'backend_mappings', ['model_pattern'], unique=False)
    op.create_table('cloud_credentials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('backend_type', sa.String(length=32), nullable=False),
    sa.Column('api_type', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('encrypted_api_key', sa.Text(), nullable=False),
    sa.Column('base_url', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cloud_credentials'))
    )
    op.create_index(op.f('ix_cloud_credentials_backend_type'), 'cloud_credentials', ['backend_type'], unique=False)
    op.create_table('downloads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('total_bytes', sa.BigInteger(), nullable=True),
    sa.Column('downloaded_bytes', sa.BigInteger(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    sa.Column('revision', sa.String(length=128), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_downloads'))
    )
    op.create_index(op.f('ix_downloads_model_id'), 'downloads', ['model_id'], unique=False)
    op.create_index(op.f('ix_downloads_status'), 'downloads', ['status'], unique=False)
    op.create_table('execution_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('profile_type', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('model_id', sa.String(length=255), nullable=True),
    sa.Column('auto_start', sa.Boolean(), nullable=False),
    sa.Column('launchd_installed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_execution_profiles')),
    sa.UniqueConstraint('name', name=op.f('uq_execution_profiles_name'))
    )
    op.create_index(op.f('ix_execution_profiles_model_id'), 'execution_profiles', ['model_id'], unique=False)
    op.create_index(op.f('ix_execution_profiles_profile_type'), 'execution_profiles', ['profile_type'], unique=False)
    op.create_table('migration_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=255), nullable=True),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_migration_reports'))
    )
    op.create_table('models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=255), nullable=False),
    sa.Column('repo_id', sa.String(length=255), nullable=True),
    sa.Column('canonical_id', sa.String(length=255), nullable=True),
    sa.Column('model_type', sa.String(length=32), nullable=True),
    sa.Column('family', sa.String(length=128), nullable=True),
    sa.Column('local_path', sa.Text(), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('revision', sa.String(length=128), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('managed', sa.Boolean(), nullable=False),
    sa.Column('review_reasons', sa.JSON(), nullable=False),
    sa.Column('downloaded_at', sa.DateTime(), nullable=True),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_models')),
    sa.UniqueConstraint('model_id', name=op.f('uq_models_model_id'))
    )
    op.create_index(op.f('ix_models_canonical_id'), 'models', ['canonical_id'], unique=False)
    op.create_index(op.f('ix_models_model_type'), 'models', ['model_type'], unique=False)
    op.create_index(op.f('ix_models_repo_id'), 'models', ['repo_id'], unique=False)
    op.create_index(op.f('ix_models_status'), 'models', ['status'], unique=False)
    op.create_table('server_config',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('memory_limit_mode', sa.String(length=16), nullable=False),
    sa.Column('memory_limit_value', sa.Float(), nullable=False),
    sa.Column('eviction_policy', sa.String(length=16), nullable=False),
    sa.Column('preload_models', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_server_config'))
    )
    op.create_table('settings',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_settings'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('hashed_password', sa.Text(), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('approved_at', sa.DateTime(), nullable=True),
    sa.Column('approved_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['approved_by'], ['users.id'], name=op.f('fk_users_approved_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('audio_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('voice', sa.String(length=128), nullable=True),
    sa.Column('speed', sa.Float(), nullable=True),
    sa.Column('sample_rate', sa.Integer(), nullable=True),
    sa.Column('stt_language', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['id'], ['execution_profiles.id'], name=op.f('fk_audio_profiles_id_execution_profiles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audio_profiles'))
    )
    op.create_table('inference_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('temperature', sa.Float(), nullable=True),
    sa.Column('max_tokens', sa.Integer(), nullable=True),
    sa.Column('top_p', sa.Float(), nullable=True),
    sa.Column('top_k', sa.Integer(), nullable=True),
    sa.Column('min_p', sa.Float(), nullable=True),
    sa.Column('repetition_penalty', sa.Float(), nullable=True),
    sa.Column('seed', sa.BigInteger(), nullable=True),
    sa.Column('stop', sa.JSON(), nullable=True),
    sa.Column('context_length', sa.Integer(), nullable=True),
    sa.Column('system_prompt', sa.Text(), nullable=True),
    sa.Column('enable_tool_injection', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['id'], ['execution_profiles.id'], name=op.f('fk_inference_profiles_id_execution_profiles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inference_profiles'))
    )
    op.create_table('model_aliases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_pk', sa.Integer(), nullable=False),
    sa.Column('alias', sa.String(length=255), nullable=False),
    sa.Column('alias_key', sa.String(length=255), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['model_pk'], ['models.id'], name=op.f('fk_model_aliases_model_pk_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_aliases')),
    sa.UniqueConstraint('model_pk', 'alias', name='uq_model_aliases_model_pk_alias')
    )
    op.create_index(op.f('ix_model_aliases_alias'), 'model_aliases', ['alias'], unique=False)
    op.create_index(op.f('ix_model_aliases_alias_key'), 'model_aliases', ['alias_key'], unique=False)
    op.create_index(op.f('ix_model_aliases_model_pk'), 'model_aliases', ['model_pk'], unique=False)
    op.create_table('model_capabilities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_pk', sa.Integer(), nullable=False),
    sa.Column('capability_type', sa.String(length=32), nullable=False),
    sa.Column('probed_at', sa.DateTime(), nullable=True),
    sa.Column('probe_version', sa.Integer(), nullable=True),
    sa.Column('model_family', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['model_pk'], ['models.id'], name=op.f('fk_model_capabilities_model_pk_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_capabilities')),
    sa.UniqueConstraint('model_pk', name=op.f('uq_model_capabilities_model_pk'))
    )
    op.create_index(op.f('ix_model_capabilities_capability_type'), 'model_capabilities', ['capability_type'], unique=False)
    op.create_table('model_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_pk', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('revision', sa.String(length=128), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['model_pk'], ['models.id'], name=op.f('fk_model_files_model_pk_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_files')),
    sa.UniqueConstraint('model_pk', 'path', name='uq_model_files_model_pk_path')
    )
    op.create_index(op.f('ix_model_files_model_pk'), 'model_files', ['model_pk'], unique=False)
    op.create_table('model_tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_pk', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=128), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['model_pk'], ['models.id'], name=op.f('fk_model_tags_model_pk_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_tags')),
    sa.UniqueConstraint('model_pk', 'tag', name='uq_model_tags_model_pk_tag')
    )
    op.create_index(op.f('ix_model_tags_model_pk'), 'model_tags', ['model_pk'], unique=False)
    op.create_index(op.f('ix_model_tags_tag'), 'model_tags', ['tag'], unique=False)
    op.create_table('audio_capabilities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('supports_tts', sa.Boolean(), nullable=True),
    sa.Column('supports_stt', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['id'], ['model_capabilities.id'], name=op.f('fk_audio_capabilities_id_model_capabilities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audio_capabilities'))
    )
    op.create_table('embedding_capabilities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('embedding_dimensions', sa.Integer(), nullable=True),
    sa.Column('max_sequence_length', sa.Integer(), nullable=True),
    sa.Column('is_normalized', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['id'], ['model_capabilities.id'], name=op.f('fk_embedding_capabilities_id_model_capabilities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_embedding_capabilities'))
    )
    op.create_table('text_gen_capabilities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('supports_native_tools', sa.Boolean(), nullable=True),
    sa.Column('supports_thinking', sa.Boolean(), nullable=True),
    sa.Column('tool_format', sa.String(length=64), nullable=True),
    sa.Column('practical_max_tokens', sa.Integer(), nullable=True),
    sa.Column('tool_parser_id', sa.String(length=64), nullable=True),
    sa.Column('thinking_parser_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['id'], ['model_capabilities.id'], name=op.f('fk_text_gen_capabilities_id_model_capabilities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_text_gen_capabilities'))
    )
    op.create_table('vision_capabilities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('supports_native_tools', sa.Boolean(), nullable=True),
    sa.Column('supports_thinking', sa.Boolean(), nullable=True),
    sa.Column('supports_multi_image', sa.Boolean(), nullable=True),
    sa.Column('supports_video', sa.Boolean(), nullable=True),
    sa.Column('tool_parser_id', sa.String(length=64), nullable=True),
    sa.Column('thinking_parser_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['id'], ['model_capabilities.id'], name=op.f('fk_vision_capabilities_id_model_capabilities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vision_capabilities'))
    )


# ------------------------------------------------------------------------------ copying


def _copy_models(bind, reports: _Reports) -> dict[int, dict]:
    """Models and their capabilities. Returns legacy id -> {repo_id, model_type} for profiles."""
    known = {"id", "repo_id", "model_type", "local_path", "size_bytes", "downloaded_at", "last_used_at",
             "probed_at", "model_family", *ALL_CAPABILITY_COLUMNS}
    models, capabilities, subclass_rows = [], [], {t: [] for t in MODEL_TYPES}
    by_id: dict[int, dict] = {}
    for row in _rows(bind, "legacy_models"):
        pk = row["id"]
        model_type = _model_type(row.get("model_type"), reports, pk)
        by_id[pk] = {"repo_id": row["repo_id"], "model_type": model_type}
        models.append({
            "id": pk, "model_id": row["repo_id"], "repo_id": row["repo_id"], "canonical_id": None,
            "model_type": model_type, "family": row.get("model_family"), "local_path": row.get("local_path"),
            "size_bytes": row.get("size_bytes"), "status": "completed", "revision": None, "source": None,
            "description": "", "managed": True, "review_reasons": "[]",
            "downloaded_at": row.get("downloaded_at"), "last_used_at": row.get("last_used_at"),
        })
        _report_extras(row, known, "models", reports)
        own = set(CAPABILITY_COLUMNS[model_type])
        if row.get("probed_at") is None:
            # Never probed: no capability row. Values there anyway are reported, not dropped.
            for column in ALL_CAPABILITY_COLUMNS:
                if row.get(column) is not None:
                    reports.add("models", pk, column, row[column], "model was never probed; capability value not carried over")
            continue
        capabilities.append({"id": pk, "model_pk": pk, "capability_type": model_type, "probed_at": row["probed_at"],
                             "probe_version": row.get("probe_version"), "model_family": row.get("model_family")})
        subclass_rows[model_type].append({"id": pk, **{c: row.get(c) for c in CAPABILITY_COLUMNS[model_type]}})
        for column in ALL_CAPABILITY_COLUMNS:
            if column not in own and column != "probe_version" and row.get(column) is not None:
                reports.add("models", pk, column, row[column], f"does not apply to a model of type {model_type}; not carried over")
    _insert(bind, "models", models)
    _insert(bind, "model_capabilities", capabilities)
    for model_type, rows in subclass_rows.items():
        _insert(bind, CAPABILITY_TABLES[model_type], rows)
    return by_id


def _in_range(column: str, value) -> bool:
    bounds = PROFILE_RANGES.get(column)
    if bounds is None or value is None or isinstance(value, bool):
        return True
    try:
        return bounds[0] <= float(value) <= bounds[1]
    except (TypeError, ValueError):
        return False


def _copy_profiles(bind, models: dict[int, dict], reports: _Reports) -> None:
    known = set(PROFILE_BASE_COLUMNS) | set(PROFILE_FIELDS)
    base_rows, inference_rows, audio_rows = [], [], []
    used_names: set[str] = set()
    for row in _rows(bind, "legacy_server_profiles"):
        pk = row["id"]
        model = models.get(row.get("model_id")) if row.get("model_id") is not None else None
        if row.get("model_id") is not None and model is None:
            reports.add("server_profiles", pk, "model_id", row["model_id"], "linked model does not exist; profile kept without a model")
        profile_type = PROFILE_TYPE_FOR_MODEL[model["model_type"]] if model else "inference"
        name = row["name"]
        if name in used_names:
            # Legacy names were not unique; profile names are now.
            new_name = f"{name}-{pk}"
            reports.add("server_profiles", pk, "name", name, f"duplicate profile name; renamed to {new_name!r}")
            name = new_name
        used_names.add(name)
        base_rows.append({
            "id": pk, "name": name, "profile_type": profile_type, "description": row.get("description"),
            "model_id": model["repo_id"] if model else None, "auto_start": bool(row.get("auto_start")),
            "launchd_installed": bool(row.get("launchd_installed")), "created_at": row.get("created_at"),
            "updated_at": row.get("updated_at"),
        })
        groups = {"inference": {}, "audio": {}}
        for legacy_column, (group, column) in PROFILE_FIELDS.items():
            value = row.get(legacy_column)
            if value is None or (legacy_column in LEGACY_OFF_FLAGS and not value):
                continue  # unset, or a flag left at its "off" default: nothing is lost
            fits = (group == "inference" and profile_type == "inference") or (group == "audio" and profile_type == "audio")
            if not fits:
                reports.add("server_profiles", pk, legacy_column, value,
                            f"{group} default does not apply to profile {name!r} of type {profile_type}; not carried over")
            elif not _in_range(column, value):
                reports.add("server_profiles", pk, legacy_column, value, f"out of range for {column}; not carried over")
            else:
                groups[group][column] = value
        if profile_type == "inference":
            inference_rows.append({"id": pk, "temperature": None, "max_tokens": None, "top_p": None,
                                   "context_length": None, "system_prompt": None, "enable_tool_injection": None,
                                   **groups["inference"]})
        elif profile_type == "audio":
            audio_rows.append({"id": pk, "voice": None, "speed": None, "sample_rate": None, "stt_language": None,
                               **groups["audio"]})
        _report_extras(row, known, "server_profiles", reports)
    _insert(bind, "execution_profiles", base_rows)
    _insert(bind, "inference_profiles", inference_rows)
    _insert(bind, "audio_profiles", audio_rows)


def _copy_simple(bind, table: str, reports: _Reports, columns: dict, enums: tuple[str, ...] = (),
                 defaults: dict | None = None) -> None:
    """Copy a table whose columns map one to one; enum-like values become lower case."""
    rows = []
    for row in _rows(bind, f"legacy_{table}"):
        new = {column: row.get(legacy) for column, legacy in columns.items()}
        for column in enums:
            new[column] = _lower(new[column])
        for column, default in (defaults or {}).items():
            if new.get(column) is None:
                new[column] = default() if callable(default) else default
        rows.append(new)
        _report_extras(row, set(columns.values()), table, reports)
    _insert(bind, table, rows)


def _same(*names: str) -> dict:
    return {n: n for n in names}


def _copy_everything_else(bind, moved: set[str], reports: _Reports) -> None:
    if "settings" in moved:
        _copy_simple(bind, "settings", reports, _same("key", "value", "updated_at"), defaults={"updated_at": _now})
    if "downloads" in moved:
        _copy_simple(bind, "downloads", reports,
                     _same("id", "model_id", "status", "total_bytes", "downloaded_bytes", "error", "started_at",
                           "completed_at") | {"files": "__none__"},
                     enums=("status",),
                     defaults={"status": "failed", "downloaded_bytes": 0, "started_at": _now, "files": "[]"})
    if "users" in moved:
        _copy_simple(bind, "users", reports,
                     _same("id", "email", "hashed_password", "is_admin", "status", "created_at", "approved_at",
                           "approved_by"),
                     enums=("status",), defaults={"status": "pending", "is_admin": False, "created_at": _now})
    if "backend_mappings" in moved:
        _copy_simple(bind, "backend_mappings", reports,
                     _same("id", "model_pattern", "pattern_type", "backend_type", "backend_model", "fallback_backend",
                           "priority", "enabled", "created_at", "updated_at"),
                     enums=("pattern_type", "backend_type", "fallback_backend"),
                     defaults={"pattern_type": "exact", "priority": 0, "enabled": True})
    if "cloud_credentials" in moved:
        _copy_simple(bind, "cloud_credentials", reports,
                     _same("id", "backend_type", "api_type", "name", "encrypted_api_key", "base_url", "created_at",
                           "updated_at"),
                     enums=("backend_type", "api_type"), defaults={"api_type": "openai", "name": ""})
    if "server_config" in moved:
        _copy_simple(bind, "server_config", reports,
                     _same("id", "memory_limit_mode", "memory_limit_value", "eviction_policy", "preload_models",
                           "updated_at"),
                     enums=("memory_limit_mode", "eviction_policy"),
                     defaults={"memory_limit_mode": "percent", "memory_limit_value": 80, "eviction_policy": "lru",
                               "preload_models": "[]"})
    if "audit_logs" in moved:
        _copy_simple(bind, "audit_logs", reports,
                     _same("id", "request_id", "timestamp", "model", "backend_type", "endpoint", "duration_ms",
                           "status", "prompt_tokens", "completion_tokens", "total_tokens", "error_type",
                           "error_message"),
                     enums=("backend_type", "status"), defaults={"duration_ms": 0})


def upgrade() -> None:
    from adapters.sqlalchemy.search_index import create_search_index, rebuild_search_index

    bind = op.get_bind()
    reports = _Reports()
    moved = _move_legacy_tables_aside(bind)
    create_redesigned_schema()
    models = _copy_models(bind, reports) if "models" in moved else {}
    if "server_profiles" in moved:
        _copy_profiles(bind, models, reports)
    _copy_everything_else(bind, moved, reports)
    _insert(bind, "migration_reports", reports.rows)
    # The copy succeeded (any failure above aborts the whole transaction): drop the old shape.
    for table in ("server_profiles", *[t for t in LEGACY_TABLES if t != "server_profiles"]):
        if table in moved:
            op.drop_table(f"legacy_{table}")
    create_search_index(bind)
    rebuild_search_index(bind)
    if reports.rows:
        log.warning("upgrade: %d value(s) could not be carried over; see the migration_reports table", len(reports.rows))


def downgrade() -> None:
    """Back to the flat layout; refused when the library holds data (restore the backup instead)."""
    from adapters.sqlalchemy.search_index import drop_search_index

    bind = op.get_bind()
    for table in ("models", "execution_profiles", "downloads", "users", "backend_mappings", "cloud_credentials",
                  "audit_logs", "settings", "server_config"):
        if bind.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar():
            raise RuntimeError(
                f"downgrade would lose the rows of {table!r}; restore the backup copy made before the upgrade instead"
            )
    drop_search_index(bind)
    for table in ("audio_capabilities", "embedding_capabilities", "text_gen_capabilities", "vision_capabilities",
                  "model_capabilities", "model_files", "model_tags", "model_aliases", "audio_profiles",
                  "inference_profiles", "execution_profiles", "migration_reports", "models", "settings",
                  "downloads", "users", "backend_mappings", "cloud_credentials", "server_config", "audit_logs"):
        op.drop_table(table)
    baseline = _baseline()
    if baseline.legacy_layout_applies():  # SQLite only: elsewhere the baseline revision is empty
        baseline.create_legacy_tables()


def _baseline():
    """The baseline module (its file name starts with a digit, so it is loaded by path)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("0001_legacy_flat_baseline.py")
    spec = importlib.util.spec_from_file_location("mlxm_migration_0001", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
