"""ORM records of the data model, on ONE shared `metadata`.

Records are plain SQLAlchemy classes; the repositories map them to and from the domain
dataclasses, so the domain never sees SQLAlchemy. Other adapter modules add their own
records on the same `Base` and list their module in `adapters.sqlalchemy.all_tables`.

Enum-like values are stored as their lower-case strings in VARCHAR columns (portable SQL:
no native ENUM types, no CHECK constraints tied to a dialect).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Stable constraint names so that autogenerate and batch migrations agree across dialects.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


metadata = Base.metadata


class UtcDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone, the domain wants aware times."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------------------- library


class ModelRecord(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(255), unique=True)
    repo_id: Mapped[str | None] = mapped_column(String(255), index=True)
    canonical_id: Mapped[str | None] = mapped_column(String(255), index=True)
    model_type: Mapped[str | None] = mapped_column(String(32), index=True)
    family: Mapped[str | None] = mapped_column(String(128))
    local_path: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(32), index=True, default="completed")
    revision: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    managed: Mapped[bool] = mapped_column(Boolean, default=True)
    review_reasons: Mapped[list] = mapped_column(JSON, default=list)
    display_name: Mapped[str | None] = mapped_column(String(255))
    downloaded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    capabilities: Mapped["CapabilityRecord | None"] = relationship(
        back_populates="model", uselist=False, cascade="all, delete-orphan", passive_deletes=True
    )
    aliases: Mapped[list["ModelAliasRecord"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ModelAliasRecord.position"
    )
    tags: Mapped[list["ModelTagRecord"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ModelTagRecord.position"
    )
    files: Mapped[list["ModelFileRecord"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ModelFileRecord.position"
    )


class ModelAliasRecord(Base):
    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_pk", "alias", name="uq_model_aliases_model_pk_alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(255), index=True)
    # Lower-cased copy: `find` is case-insensitive and must use an index on every database.
    alias_key: Mapped[str] = mapped_column(String(255), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class ModelTagRecord(Base):
    __tablename__ = "model_tags"
    __table_args__ = (UniqueConstraint("model_pk", "tag", name="uq_model_tags_model_pk_tag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    tag: Mapped[str] = mapped_column(String(128), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class ModelFileRecord(Base):
    """One file of an installed model, with where it came from."""

    __tablename__ = "model_files"
    __table_args__ = (UniqueConstraint("model_pk", "path", name="uq_model_files_model_pk_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    revision: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)


# ----------------------------------------------------------- capabilities (joined-table)


class CapabilityRecord(Base):
    __tablename__ = "model_capabilities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), unique=True)
    capability_type: Mapped[str] = mapped_column(String(32), index=True)
    probed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    probe_version: Mapped[int | None] = mapped_column(Integer)
    model_family: Mapped[str | None] = mapped_column(String(128))

    model: Mapped[ModelRecord] = relationship(back_populates="capabilities")

    __mapper_args__ = {"polymorphic_on": "capability_type", "polymorphic_abstract": True}


def _capability_pk() -> Mapped[int]:
    return mapped_column(ForeignKey("model_capabilities.id", ondelete="CASCADE"), primary_key=True)


class TextGenCapabilityRecord(CapabilityRecord):
    __tablename__ = "text_gen_capabilities"

    id: Mapped[int] = _capability_pk()
    supports_native_tools: Mapped[bool | None] = mapped_column(Boolean)
    supports_thinking: Mapped[bool | None] = mapped_column(Boolean)
    tool_format: Mapped[str | None] = mapped_column(String(64))
    practical_max_tokens: Mapped[int | None] = mapped_column(Integer)
    tool_parser_id: Mapped[str | None] = mapped_column(String(64))
    thinking_parser_id: Mapped[str | None] = mapped_column(String(64))

    __mapper_args__ = {"polymorphic_identity": "text-gen", "polymorphic_load": "inline"}


class VisionCapabilityRecord(CapabilityRecord):
    __tablename__ = "vision_capabilities"

    id: Mapped[int] = _capability_pk()
    supports_native_tools: Mapped[bool | None] = mapped_column(Boolean)
    supports_thinking: Mapped[bool | None] = mapped_column(Boolean)
    supports_multi_image: Mapped[bool | None] = mapped_column(Boolean)
    supports_video: Mapped[bool | None] = mapped_column(Boolean)
    tool_parser_id: Mapped[str | None] = mapped_column(String(64))
    thinking_parser_id: Mapped[str | None] = mapped_column(String(64))

    __mapper_args__ = {"polymorphic_identity": "vision", "polymorphic_load": "inline"}


class EmbeddingCapabilityRecord(CapabilityRecord):
    __tablename__ = "embedding_capabilities"

    id: Mapped[int] = _capability_pk()
    embedding_dimensions: Mapped[int | None] = mapped_column(Integer)
    max_sequence_length: Mapped[int | None] = mapped_column(Integer)
    is_normalized: Mapped[bool | None] = mapped_column(Boolean)

    __mapper_args__ = {"polymorphic_identity": "embeddings", "polymorphic_load": "inline"}


class AudioCapabilityRecord(CapabilityRecord):
    __tablename__ = "audio_capabilities"

    id: Mapped[int] = _capability_pk()
    supports_tts: Mapped[bool | None] = mapped_column(Boolean)
    supports_stt: Mapped[bool | None] = mapped_column(Boolean)

    __mapper_args__ = {"polymorphic_identity": "audio", "polymorphic_load": "inline"}


# --------------------------------------------------------------- profiles (joined-table)


class ProfileRecord(Base):
    """Base execution profile; embeddings profiles are exactly this row (type `base`)."""

    __tablename__ = "execution_profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    profile_type: Mapped[str] = mapped_column(String(16), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    # The model's name (canonical id or repo id): a profile may name a model not installed yet.
    model_id: Mapped[str | None] = mapped_column(String(255), index=True)
    auto_start: Mapped[bool] = mapped_column(Boolean, default=False)
    launchd_installed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __mapper_args__ = {"polymorphic_on": "profile_type", "polymorphic_identity": "base"}


def _profile_pk() -> Mapped[int]:
    return mapped_column(ForeignKey("execution_profiles.id", ondelete="CASCADE"), primary_key=True)


class InferenceProfileRecord(ProfileRecord):
    __tablename__ = "inference_profiles"

    id: Mapped[int] = _profile_pk()
    temperature: Mapped[float | None] = mapped_column(Float)
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    top_p: Mapped[float | None] = mapped_column(Float)
    top_k: Mapped[int | None] = mapped_column(Integer)
    min_p: Mapped[float | None] = mapped_column(Float)
    repetition_penalty: Mapped[float | None] = mapped_column(Float)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    stop: Mapped[list | None] = mapped_column(JSON)
    context_length: Mapped[int | None] = mapped_column(Integer)
    system_prompt: Mapped[str | None] = mapped_column(Text)
    enable_tool_injection: Mapped[bool | None] = mapped_column(Boolean)
    enable_thinking: Mapped[bool | None] = mapped_column(Boolean)
    output_constraint: Mapped[dict | None] = mapped_column(JSON)  # {"kind", "spec"}: the profile's response_format

    __mapper_args__ = {"polymorphic_identity": "inference", "polymorphic_load": "inline"}


class AudioProfileRecord(ProfileRecord):
    __tablename__ = "audio_profiles"

    id: Mapped[int] = _profile_pk()
    voice: Mapped[str | None] = mapped_column(String(128))
    speed: Mapped[float | None] = mapped_column(Float)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    stt_language: Mapped[str | None] = mapped_column(String(32))

    __mapper_args__ = {"polymorphic_identity": "audio", "polymorphic_load": "inline"}


# ------------------------------------------------------------------------ everything else


class DownloadRecord(Base):
    __tablename__ = "downloads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True, default="pending")
    total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    downloaded_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revision: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str | None] = mapped_column(Text)
    files: Mapped[list] = mapped_column(JSON, default=list)


class SettingRecord(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class BackendMappingRecord(Base):
    __tablename__ = "backend_mappings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_pattern: Mapped[str] = mapped_column(String(255), index=True)
    pattern_type: Mapped[str] = mapped_column(String(16), default="exact")
    backend_type: Mapped[str] = mapped_column(String(32))
    backend_model: Mapped[str | None] = mapped_column(String(255))
    fallback_backend: Mapped[str | None] = mapped_column(String(32))
    fallback_model: Mapped[str | None] = mapped_column(String(255))  # the local fallback's model (local:NAME)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=utcnow)


class CloudCredentialRecord(Base):
    """An API key for a cloud backend, encrypted by the caller before it gets here."""

    __tablename__ = "cloud_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    backend_type: Mapped[str] = mapped_column(String(32), index=True)
    api_type: Mapped[str] = mapped_column(String(16), default="openai")
    name: Mapped[str] = mapped_column(String(128), default="")
    encrypted_api_key: Mapped[str] = mapped_column(Text)
    base_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=utcnow)


class ServerConfigRecord(Base):
    """The model pool's stored configuration (a single row, id 1)."""

    __tablename__ = "server_config"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    memory_limit_mode: Mapped[str] = mapped_column(String(16), default="percent")
    memory_limit_value: Mapped[float] = mapped_column(Float, default=80)
    eviction_policy: Mapped[str] = mapped_column(String(16), default="lru")
    preload_models: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=utcnow)


class AuditLogRecord(Base):
    """One inference request. Never the prompt or completion text."""

    __tablename__ = "audit_logs"
    __table_args__ = (Index("ix_audit_logs_model_timestamp", "model", "timestamp"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime, index=True, default=utcnow)
    model: Mapped[str] = mapped_column(String(255))
    backend_type: Mapped[str] = mapped_column(String(32))
    endpoint: Mapped[str] = mapped_column(String(128))
    duration_ms: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    total_tokens: Mapped[int | None] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255), index=True)  # the server that wrote it


class UserRecord(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    hashed_password: Mapped[str] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class MigrationReportRecord(Base):
    """A value an upgrade could not carry over as-is, kept so the user can see and act on it."""

    __tablename__ = "migration_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(255))
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
