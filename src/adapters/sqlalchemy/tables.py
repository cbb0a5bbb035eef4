"""ORM records of the data model, on ONE shared `metadata`.

Records are plain SQLAlchemy classes; the repositories map them to and from the domain
dataclasses, so the domain never sees SQLAlchemy. This module holds the base, the column
types and the library's records; each other area's records live in their own module on the
same `Base` (listed in `adapters.sqlalchemy.all_tables`), so a command maps only the records
of the repositories it uses (`mlxm list` maps the library's: issue 19).

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
    ForeignKey,
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


# Records that moved to their area's module, still importable from here (`from ...tables import DownloadRecord`).
_MOVED = {
    "ProfileRecord": "profile_tables", "InferenceProfileRecord": "profile_tables", "AudioProfileRecord": "profile_tables",
    "DownloadRecord": "download_tables",
    "SettingRecord": "settings_tables", "ServerConfigRecord": "settings_tables", "MigrationReportRecord": "settings_tables",
    "BackendMappingRecord": "routing_tables",
    "CloudCredentialRecord": "auth_tables", "AuditLogRecord": "auth_tables", "UserRecord": "auth_tables",
}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"adapters.sqlalchemy.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
