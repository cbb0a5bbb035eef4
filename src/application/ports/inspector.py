"""Port: facts about a model folder that a probe needs, read without running the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from domain.enums import ModelType


@dataclass(frozen=True)
class ModelFacts:
    config: dict = field(default_factory=dict)  # config.json
    chat_template: str | None = None  # from tokenizer_config.json or chat_template.jinja
    special_tokens: tuple[str, ...] = ()  # added / special tokens of the tokenizer
    audio_kind: str | None = None  # "tts" | "stt" for audio models
    normalizes_embeddings: bool | None = None  # sentence-transformers Normalize module present
    files: tuple[str, ...] = ()


class ModelInspector(Protocol):
    def inspect(self, path: Path, model_type: ModelType) -> ModelFacts: ...
