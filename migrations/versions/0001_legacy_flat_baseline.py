"""Baseline: the flat layout from before the data-model redesign.

Databases created by earlier versions have exactly these tables and no alembic_version
table; `upgrade_database` recognises them by shape and stamps them at this revision.
A fresh database runs this too, then the redesign, so both paths end at the same schema.
The flat layout only ever existed in SQLite files: on any other database (PostgreSQL) this
revision is empty, so a fresh database there goes straight to the redesigned tables.

Revision ID: 0001_legacy_flat
Revises:
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_legacy_flat"
down_revision = None
branch_labels = None
depends_on = None

LEGACY_TABLES = (
    "models", "server_profiles", "settings", "downloads", "users",
    "backend_mappings", "cloud_credentials", "server_config", "audit_logs",
)


def create_legacy_tables() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("repo_id", sa.String, nullable=False),
        sa.Column("model_type", sa.String),
        sa.Column("local_path", sa.String),
        sa.Column("size_bytes", sa.Integer),
        sa.Column("downloaded_at", sa.DateTime, nullable=False),
        sa.Column("last_used_at", sa.DateTime),
        sa.Column("probed_at", sa.DateTime),
        sa.Column("probe_version", sa.Integer),
        sa.Column("practical_max_tokens", sa.Integer),
        sa.Column("embedding_dimensions", sa.Integer),
        sa.Column("max_sequence_length", sa.Integer),
        sa.Column("supports_native_tools", sa.Boolean),
        sa.Column("supports_thinking", sa.Boolean),
        sa.Column("supports_multi_image", sa.Boolean),
        sa.Column("supports_video", sa.Boolean),
        sa.Column("is_normalized", sa.Boolean),
        sa.Column("supports_tts", sa.Boolean),
        sa.Column("supports_stt", sa.Boolean),
        sa.Column("tool_format", sa.String),
        sa.Column("model_family", sa.String),
        sa.Column("tool_parser_id", sa.String),
        sa.Column("thinking_parser_id", sa.String),
    )
    op.create_index("ix_models_repo_id", "models", ["repo_id"], unique=True)
    op.create_table(
        "server_profiles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("description", sa.String),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id")),
        sa.Column("context_length", sa.Integer),
        sa.Column("system_prompt", sa.String),
        sa.Column("temperature", sa.Float),
        sa.Column("max_tokens", sa.Integer),
        sa.Column("top_p", sa.Float),
        sa.Column("force_tool_injection", sa.Boolean),
        sa.Column("tts_default_voice", sa.String),
        sa.Column("tts_default_speed", sa.Float),
        sa.Column("tts_sample_rate", sa.Integer),
        sa.Column("stt_default_language", sa.String),
        sa.Column("auto_start", sa.Boolean, nullable=False),
        sa.Column("launchd_installed", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_server_profiles_name", "server_profiles", ["name"])
    op.create_table(
        "settings",
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("value", sa.String, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "downloads",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.String, nullable=False),
        sa.Column("status", sa.String),
        sa.Column("total_bytes", sa.Integer),
        sa.Column("downloaded_bytes", sa.Integer, nullable=False),
        sa.Column("error", sa.String),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("completed_at", sa.DateTime),
    )
    op.create_index("ix_downloads_model_id", "downloads", ["model_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String, nullable=False),
        sa.Column("hashed_password", sa.String, nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("approved_at", sa.DateTime),
        sa.Column("approved_by", sa.Integer, sa.ForeignKey("users.id")),
    )
    op.create_index("ix_users_email", "users", ["email"], unique=True)
    op.create_table(
        "backend_mappings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_pattern", sa.String, nullable=False),
        sa.Column("pattern_type", sa.String, nullable=False),
        sa.Column("backend_type", sa.String, nullable=False),
        sa.Column("backend_model", sa.String),
        sa.Column("fallback_backend", sa.String),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_backend_mappings_model_pattern", "backend_mappings", ["model_pattern"])
    op.create_table(
        "cloud_credentials",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("backend_type", sa.String, nullable=False),
        sa.Column("api_type", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("encrypted_api_key", sa.String, nullable=False),
        sa.Column("base_url", sa.String),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "server_config",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("memory_limit_mode", sa.String, nullable=False),
        sa.Column("memory_limit_value", sa.Integer, nullable=False),
        sa.Column("eviction_policy", sa.String, nullable=False),
        sa.Column("preload_models", sa.String, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.String, nullable=False),
        sa.Column("timestamp", sa.DateTime, nullable=False),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("backend_type", sa.String, nullable=False),
        sa.Column("endpoint", sa.String, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("total_tokens", sa.Integer),
        sa.Column("error_type", sa.String),
        sa.Column("error_message", sa.String),
    )
    op.create_index("ix_audit_logs_request_id", "audit_logs", ["request_id"])
    op.create_index("ix_audit_logs_timestamp", "audit_logs", ["timestamp"])


def legacy_layout_applies() -> bool:
    """The flat layout is SQLite-only (earlier versions never ran on another database)."""
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if legacy_layout_applies():
        create_legacy_tables()


def downgrade() -> None:
    if not legacy_layout_applies():
        return
    for table in reversed(LEGACY_TABLES):
        op.drop_table(table)
