"""The user's metadata overlays, one row per (model, field); they go with their model (ON DELETE CASCADE)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.tables import Base, UtcDateTime


class ModelOverlayRecord(Base):
    __tablename__ = "model_overlays"
    __table_args__ = (UniqueConstraint("model_pk", "field", name="uq_model_overlays_model_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(32))
    # The overlay as `domain.library.overlays.overlay_to_dict` writes it (the manifest holds the same form).
    data: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
