"""Execution profiles (joined-table inheritance: inference and audio profiles extend the base row)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.tables import Base, UtcDateTime


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
