"""Capabilities a probe found, one subclass per model type (persisted with joined-table inheritance)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.enums import ModelType


@dataclass
class ModelCapabilities:
    probed_at: datetime | None = None
    probe_version: int | None = None
    model_family: str | None = None

    model_type: ModelType = ModelType.TEXT_GEN  # overridden by each subclass


@dataclass
class TextGenCapabilities(ModelCapabilities):
    supports_native_tools: bool | None = None
    supports_thinking: bool | None = None
    tool_format: str | None = None
    practical_max_tokens: int | None = None
    tool_parser_id: str | None = None
    thinking_parser_id: str | None = None
    model_type: ModelType = ModelType.TEXT_GEN


@dataclass
class VisionCapabilities(ModelCapabilities):
    supports_native_tools: bool | None = None
    supports_thinking: bool | None = None
    supports_multi_image: bool | None = None
    supports_video: bool | None = None
    tool_parser_id: str | None = None
    thinking_parser_id: str | None = None
    model_type: ModelType = ModelType.VISION


@dataclass
class EmbeddingCapabilities(ModelCapabilities):
    embedding_dimensions: int | None = None
    max_sequence_length: int | None = None
    is_normalized: bool | None = None
    model_type: ModelType = ModelType.EMBEDDINGS


@dataclass
class AudioCapabilities(ModelCapabilities):
    supports_tts: bool | None = None
    supports_stt: bool | None = None
    model_type: ModelType = ModelType.AUDIO


CAPABILITY_CLASSES: dict[ModelType, type[ModelCapabilities]] = {
    ModelType.TEXT_GEN: TextGenCapabilities,
    ModelType.VISION: VisionCapabilities,
    ModelType.EMBEDDINGS: EmbeddingCapabilities,
    ModelType.AUDIO: AudioCapabilities,
}


def capabilities_for(model_type: ModelType, **values) -> ModelCapabilities:
    return CAPABILITY_CLASSES[model_type](**values)


def supports(capabilities: ModelCapabilities | None, capability: str) -> bool:
    """Capability filter names used by search: tools, thinking, vision, tts, stt, embeddings."""
    if capabilities is None:
        return False
    attribute = {
        "tools": "supports_native_tools",
        "thinking": "supports_thinking",
        "multi_image": "supports_multi_image",
        "video": "supports_video",
        "tts": "supports_tts",
        "stt": "supports_stt",
        "normalized": "is_normalized",
    }.get(capability)
    if attribute is None:
        return False
    return bool(getattr(capabilities, attribute, False))
