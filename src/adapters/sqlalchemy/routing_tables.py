"""Backend mappings: which backend (local or a cloud API) serves a model name."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.tables import Base, UtcDateTime, utcnow


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
