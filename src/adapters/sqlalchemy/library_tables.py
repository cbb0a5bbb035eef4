"""Records of the library pipelines: dependency profiles and bindings, and the links made into apps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from adapters.sqlalchemy.tables import Base, UtcDateTime, utcnow


class DependencyProfileRecord(Base):
    """One immutable version of a named set of exactly pinned requirements."""

    __tablename__ = "dependency_profiles"
    __table_args__ = (UniqueConstraint("profile_id", "version", name="uq_dependency_profiles_profile_id_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    environment_kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=utcnow)

    requirements: Mapped[list["DependencyRequirementRecord"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="DependencyRequirementRecord.position"
    )


class DependencyRequirementRecord(Base):
    __tablename__ = "dependency_requirements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_pk: Mapped[int] = mapped_column(ForeignKey("dependency_profiles.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(128))
    extras: Mapped[list] = mapped_column(JSON, default=list)
    pin: Mapped[str] = mapped_column(String(64))
    markers: Mapped[str | None] = mapped_column(Text)
    python_requires: Mapped[str | None] = mapped_column(String(64))


class DependencyBindingRecord(Base):
    """A profile attached to a model (by model id: a binding may precede the install)."""

    __tablename__ = "dependency_bindings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    binding_id: Mapped[str] = mapped_column(String(255), unique=True)
    model_id: Mapped[str] = mapped_column(String(255), index=True)
    profile_id: Mapped[str] = mapped_column(String(128))
    profile_version: Mapped[int | None] = mapped_column(Integer)
    environment_kind: Mapped[str] = mapped_column(String(32), default="python-venv")
    platform_selector: Mapped[str] = mapped_column(String(64), default="*")
    backend_key: Mapped[str] = mapped_column(String(64), default="*")
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=utcnow)


class ModelLinkRecord(Base):
    """A link mlxm made into an app's folder: the only app-side files it may remove."""

    __tablename__ = "model_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app: Mapped[str] = mapped_column(String(64), index=True)
    model_id: Mapped[str] = mapped_column(String(255), index=True)
    rule_target: Mapped[str] = mapped_column(Text)
    folder: Mapped[str] = mapped_column(String(255))
    source_path: Mapped[str] = mapped_column(Text)
    target_path: Mapped[str] = mapped_column(String(1024), unique=True)
    method: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=utcnow)
    fingerprint: Mapped[str | None] = mapped_column(String(128), nullable=True)
