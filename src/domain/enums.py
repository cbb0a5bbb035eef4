"""Enumerations of the data model. Values are the persisted, lower-case strings."""

from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


class ModelType(StrEnum):
    TEXT_GEN = "text-gen"
    VISION = "vision"
    EMBEDDINGS = "embeddings"
    AUDIO = "audio"

    @classmethod
    def parse(cls, value: str | None) -> "ModelType":
        """Accept current values and the legacy spellings (`lm`, `multimodal`, NULL)."""
        if value is None or value == "" or value.lower() == "lm":
            return cls.TEXT_GEN
        if value.lower() == "multimodal":
            return cls.VISION
        return cls(value.lower())


class DownloadStatus(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ProfileType(StrEnum):
    BASE = "base"
    INFERENCE = "inference"
    AUDIO = "audio"


class SourceKind(StrEnum):
    HUGGINGFACE_REPO = "huggingface_repo"
    HTTP_MIRROR = "http_mirror"


class BackendType(StrEnum):
    LOCAL = "local"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    OPENAI_COMPATIBLE = "openai_compatible"
    ANTHROPIC_COMPATIBLE = "anthropic_compatible"


class ApiType(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


class PatternType(StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    REGEX = "regex"


class MemoryLimitMode(StrEnum):
    PERCENT = "percent"
    GB = "gb"


class EvictionPolicy(StrEnum):
    LRU = "lru"
    LFU = "lfu"
    TTL = "ttl"


class UserStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DISABLED = "disabled"

    @classmethod
    def parse(cls, value: str) -> "UserStatus":
        # Legacy databases stored the upper-case member names.
        return cls(value.lower())
