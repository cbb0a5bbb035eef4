"""`MlxRuntime`: one `ModelRuntime` that dispatches each call by the model's type.

text-gen goes to `MlxTextRuntime` (mlx-lm), vision to `MlxVisionRuntime` (mlx-vlm, text-only
requests included), audio to `MlxAudioRuntime` (mlx-audio), embeddings to `MlxEmbeddingsRuntime`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from adapters.mlx.audio import MlxAudioRuntime
from adapters.mlx.embeddings import MlxEmbeddingsRuntime
from adapters.mlx.text import MlxTextRuntime
from adapters.mlx.vision import MlxVisionRuntime
from application.inference.ports import (
    EmbeddingRequest,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    LoadedModel,
    PromptCacheStats,
    Transcription,
)
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults


class MlxRuntime:
    def __init__(
        self,
        *,
        enable_batching: bool = True,
        max_batch_size: int = 8,
        max_speech_tokens: int | None = None,
        max_embedding_batch: int = 32,
        **text_options,
    ) -> None:
        # text_options: prompt_cache_entries, prompt_cache_bytes, max_prompt_tokens, prefill_step_size, grammar
        self.text = MlxTextRuntime(enable_batching=enable_batching, max_batch_size=max_batch_size, **text_options)
        self.audio = MlxAudioRuntime(max_speech_tokens=max_speech_tokens)
        self.embeddings = MlxEmbeddingsRuntime(max_batch_size=max_embedding_batch)
        # Vision: continuous batching on mlx-vlm's BatchGenerator (adapters.mlx.vision_engine).
        # Its prompt cache (mlx-vlm's APC) takes the text models' bounds.
        self.vision = MlxVisionRuntime(max_batch_size=max_batch_size if enable_batching else 1,
                                       max_prompt_tokens=text_options.get("max_prompt_tokens", 0),
                                       grammar=text_options.get("grammar"),
                                       prompt_cache_entries=text_options.get("prompt_cache_entries", 10),
                                       prompt_cache_bytes=text_options.get("prompt_cache_bytes", 2 << 30))

    def _for(self, model_type: ModelType):
        model_type = ModelType(model_type)
        if model_type is ModelType.AUDIO:
            return self.audio
        if model_type is ModelType.EMBEDDINGS:
            return self.embeddings
        if model_type is ModelType.VISION:
            return self.vision
        return self.text

    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel:
        return self._for(model_type).load(model_id, path, model_type)

    def unload(self, model: LoadedModel) -> None:
        self._for(model.model_type).unload(model)

    def generate(self, model: LoadedModel, request: GenerationRequest) -> Iterator[GenerationChunk]:
        return self._for(model.model_type).generate(model, request)

    def count_tokens(self, model: LoadedModel, request: GenerationRequest) -> int:
        return self._for(model.model_type).count_tokens(model, request)

    def warm(self, model: LoadedModel, request: GenerationRequest) -> int:
        runtime = self._for(model.model_type)
        return runtime.warm(model, request) if runtime is self.text else 0

    def cache_bytes(self, model: LoadedModel) -> int:
        runtime = self._for(model.model_type)
        return runtime.cache_bytes(model) if runtime in (self.text, self.vision) else 0

    def free_cache(self, model: LoadedModel) -> int:
        runtime = self._for(model.model_type)
        return runtime.free_cache(model) if runtime in (self.text, self.vision) else 0

    def cache_stats(self, model: LoadedModel) -> PromptCacheStats | None:
        runtime = self._for(model.model_type)
        return runtime.cache_stats(model) if runtime in (self.text, self.vision) else None

    def synthesize(self, model: LoadedModel, text: str, audio: AudioDefaults) -> bytes:
        return self._for(model.model_type).synthesize(model, text, audio)

    def transcribe(self, model: LoadedModel, audio: bytes, language: str | None) -> Transcription:
        return self._for(model.model_type).transcribe(model, audio, language)

    def embed(self, model: LoadedModel, request: EmbeddingRequest) -> EmbeddingResult:
        return self._for(model.model_type).embed(model, request)
