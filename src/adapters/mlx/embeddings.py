"""`MlxEmbeddingsRuntime`: embeddings models (BERT-style, e.g. all-MiniLM-L6-v2).

mlx-lm cannot run encoder models, and mlx-embeddings is not a dependency of mlxm: on PyPI
(0.1.0) it pulls in mlx-vlm, datasets, pandas, pyarrow, opencv-python and fastapi, which is
far too heavy for a model manager and would change the shared environment. So:

- when `mlx_embeddings` is importable, it is used (its documented `load` + `text_embeds`);
- otherwise loading an embeddings model raises `NotSupported` with a message saying what to
  install. (That branch is the one exercised here; the mlx-embeddings path is untested.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Sequence

from adapters.mlx.common import free_buffer_cache, weights_nbytes
from application.errors import InvalidRequest
from application.inference.ports import GenerationRequest, LoadedModel, NotSupported, Transcription
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults

INSTALL_HINT = (
    "embeddings need the optional package mlx-embeddings, which is not installed "
    "(pip install mlx-embeddings; it is not bundled because it pulls in mlx-vlm, pandas, pyarrow and opencv)"
)


def embeddings_available() -> bool:
    return importlib.util.find_spec("mlx_embeddings") is not None


class MlxEmbeddingsRuntime:
    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel:
        if not embeddings_available():
            raise NotSupported(f"{model_id}: {INSTALL_HINT}")
        from mlx_embeddings import load  # pragma: no cover - optional dependency

        model, tokenizer = load(str(path))  # pragma: no cover
        return LoadedModel(  # pragma: no cover
            model_id, ModelType(model_type), Path(path), weights_nbytes(model), handle=(model, tokenizer)
        )

    def unload(self, model: LoadedModel) -> None:
        model.handle = None
        free_buffer_cache()

    def embed(self, model: LoadedModel, texts: Sequence[str]) -> list[list[float]]:
        if not isinstance(model.handle, tuple):
            raise NotSupported(f"{model.model_id}: {INSTALL_HINT}")
        if not texts:
            raise InvalidRequest("no input to embed")
        embedder, tokenizer = model.handle  # pragma: no cover - optional dependency
        inputs: Any = tokenizer.batch_encode_plus(  # pragma: no cover
            list(texts), return_tensors="mlx", padding=True, truncation=True
        )
        outputs = embedder(inputs["input_ids"], attention_mask=inputs["attention_mask"])  # pragma: no cover
        return [list(map(float, row)) for row in outputs.text_embeds.tolist()]  # pragma: no cover

    def generate(self, model: LoadedModel, request: GenerationRequest):
        raise InvalidRequest(f"{model.model_id} is an embeddings model; it cannot generate text")

    def synthesize(self, model: LoadedModel, text: str, audio: AudioDefaults) -> bytes:
        raise InvalidRequest(f"{model.model_id} is an embeddings model; speech needs an audio (TTS) model")

    def transcribe(self, model: LoadedModel, audio: bytes, language: str | None) -> Transcription:
        raise InvalidRequest(f"{model.model_id} is an embeddings model; transcription needs an audio (STT) model")
