"""Key/value settings, the model pool's stored configuration, and upgrade reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.tables import Base, UtcDateTime, utcnow


class SettingRecord(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)



class ServerConfigRecord(Base):
    """The model pool's stored configuration (a single row, id 1)."""

    __tablename__ = "server_config"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    memory_limit_mode: Mapped[str] = mapped_column(String(16), default="percent")
    memory_limit_value: Mapped[float] = mapped_column(Float, default=80)
    eviction_policy: Mapped[str] = mapped_column(String(16), default="lru")
    preload_models: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=utcnow)



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
