"""Per-host state in a database several mlxm servers share (PostgreSQL): what each host has loaded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.tables import Base, UtcDateTime, utcnow


class PoolStateRecord(Base):
    """One model loaded in one host's pool; the host's rows are replaced on each publish."""

    __tablename__ = "pool_state"
    __table_args__ = (PrimaryKeyConstraint("host", "model_id", name="pk_pool_state"),)

    host: Mapped[str] = mapped_column(String(255))
    model_id: Mapped[str] = mapped_column(String(255))
    model_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    loaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UtcDateTime)
    use_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
