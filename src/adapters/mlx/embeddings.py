"""`MlxEmbeddingsRuntime`: sentence embeddings from encoder and decoder models.

- Encoders (BERT / XLM-R / ModernBERT: all-MiniLM, bge, e5, nomic...) run on mlx-embeddings'
  model classes; we pool its `last_hidden_state` ourselves as the model's sentence-transformers
  config says (`1_Pooling/config.json`: mean, CLS or last token), because mlx-embeddings'
  `text_embeds` is always mean-pooled and bge-style models pool the CLS token.
- Decoders laid out as embedding models (Qwen3-Embedding) run on mlx-lm's model classes: the
  inner transformer's final hidden states, last-token pooling (the model card's), normalised.
- Normalisation follows `modules.json` (a `Normalize` module); without one, vectors are normalised
  (what every catalog model's card asks for).
- Inputs are run in batches of at most `max_batch_size`, each padded to its longest input.
  An input past the model's max sequence length is refused unless the request asks to truncate.
- `dimensions` truncates (then re-normalises) Matryoshka-trained models, recognised by their model
  card ("matryoshka" tag, or "MRL" support as in Qwen3-Embedding's card); other models refuse it.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.mlx.common import free_buffer_cache, read_config, weights_nbytes
from adapters.mlx.engine import on_engine_thread, run_on_engine_thread
from application.errors import InvalidRequest, Unavailable
from application.inference.ports import (
    EmbeddingRequest,
    EmbeddingResult,
    GenerationRequest,
    LoadedModel,
    NotSupported,
    Transcription,
)
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults

DEFAULT_MAX_BATCH_SIZE = 32
# model_type values mlx-embeddings runs as encoders; anything else is tried as an mlx-lm decoder.
ENCODER_TYPES = {"bert", "xlm-roberta", "xlm_roberta", "roberta", "modernbert", "nomic_bert"}
_ENCODER_MODULES = {"xlm-roberta": "xlm_roberta", "roberta": "xlm_roberta", "nomic_bert": "bert"}
_MAX_SANE_LENGTH = 1_000_000  # tokenizers say 1e30 for "no limit"


@dataclass
class EmbeddingHandle:
    model: Any
    tokenizer: Any  # a transformers tokenizer
    kind: str  # "encoder" | "decoder"
    pooling: str  # "mean" | "cls" | "last"
    normalize: bool
    dimensions: int
    max_length: int
    matryoshka: bool
    pad_id: int
    vocab_size: int
    lock: threading.Lock


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def pooling_mode(path: Path, kind: str) -> str:
    pooling = _json(path / "1_Pooling" / "config.json")
    if isinstance(pooling, dict):
        if pooling.get("pooling_mode_lasttoken"):
            return "last"
        if pooling.get("pooling_mode_cls_token"):
            return "cls"
        if pooling.get("pooling_mode_mean_tokens"):
            return "mean"
    return "last" if kind == "decoder" else "mean"


def normalizes(path: Path) -> bool:
    modules = _json(path / "modules.json")
    if not isinstance(modules, list):
        return True
    return any("Normalize" in str(m.get("type", "")) for m in modules if isinstance(m, dict))


def is_matryoshka(path: Path) -> bool:
    card = path / "README.md"
    try:
        text = card.read_text(encoding="utf-8", errors="replace")[:200_000]
    except OSError:
        return False
    return bool(re.search(r"matryoshka|\bMRL\b", text, re.IGNORECASE))


def max_sequence_length(path: Path, config: dict, tokenizer: Any) -> int:
    st = _json(path / "sentence_bert_config.json")
    if isinstance(st, dict) and isinstance(st.get("max_seq_length"), int) and st["max_seq_length"] > 0:
        return st["max_seq_length"]
    limits = []
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < _MAX_SANE_LENGTH:
        limits.append(model_max)
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        # RoBERTa-style position ids start after the padding index: 514 positions = 512 tokens.
        limits.append(positions - 2 if config.get("model_type") in ("xlm-roberta", "roberta") else positions)
    return min(limits) if limits else 512


def on_parked_thread(job):
    """Run `job` on a parked engine thread and return its result (or raise its error).

    A thread that ran MLX and then ends can abort the process at exit (see adapters.mlx.engine);
    the server's request threads come and go, so the forward passes run on the parked ones.
    """
    if on_engine_thread():
        return job()
    box: queue.SimpleQueue = queue.SimpleQueue()

    def run() -> None:
        try:
            box.put((True, job()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box.put((False, exc))

    run_on_engine_thread(run)
    ok, value = box.get()
    if not ok:
        raise value
    return value


class MlxEmbeddingsRuntime:
    def __init__(self, *, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE) -> None:
        self.max_batch_size = max(1, int(max_batch_size))
        self._load_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel:
        path = Path(path)
        config = read_config(path)
        if not config:
            raise InvalidRequest(f"{model_id}: {path} has no readable config.json; is the model fully installed?")
        family = str(config.get("model_type", "")).lower()
        with self._load_lock:
            try:
                if family in ENCODER_TYPES:
                    model, tokenizer, kind = *self._load_encoder(path, config), "encoder"
                else:
                    model, tokenizer, kind = *self._load_decoder(path), "decoder"
            except FileNotFoundError as exc:
                raise InvalidRequest(f"{model_id}: the model folder {path} is incomplete: {exc}") from exc
            except (ValueError, ImportError, KeyError, AttributeError) as exc:
                raise NotSupported(f"{model_id}: cannot load this embeddings model ({family or 'unknown type'}): {exc}") from exc
        dims = config.get("hidden_size") or config.get("dim") or config.get("d_model")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        handle = EmbeddingHandle(
            model=model,
            tokenizer=tokenizer,
            kind=kind,
            pooling=pooling_mode(path, kind),
            normalize=normalizes(path),
            dimensions=int(dims) if isinstance(dims, int) else 0,
            max_length=max_sequence_length(path, config, tokenizer),
            matryoshka=is_matryoshka(path),
            pad_id=int(pad),
            vocab_size=int(config.get("vocab_size") or len(tokenizer)),
            lock=threading.Lock(),
        )
        return LoadedModel(model_id, ModelType(model_type), path, weights_nbytes(model), handle=handle)

    @staticmethod
    def _load_encoder(path: Path, config: dict):
        import importlib

        from mlx_embeddings.utils import load_model
        from transformers import AutoTokenizer

        family = str(config["model_type"]).lower()
        if family in _ENCODER_MODULES:  # mlx-embeddings names its module after another spelling
            importlib.import_module(f"mlx_embeddings.models.{_ENCODER_MODULES[family]}")
        model = load_model(path)
        return model, AutoTokenizer.from_pretrained(str(path))

    @staticmethod
    def _load_decoder(path: Path):
        from mlx_lm.utils import load_model
        from transformers import AutoTokenizer

        model, _ = load_model(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        tokenizer.padding_side = "left"  # last-token pooling reads the final column
        return model, tokenizer

    def unload(self, model: LoadedModel) -> None:
        model.handle = None
        free_buffer_cache()

    # ------------------------------------------------------------------ embeddings

    def describe(self, model: LoadedModel) -> dict:
        """What a probe stores: dimensions, max sequence length, normalised, Matryoshka."""
        handle = self._handle(model)
        return {"dimensions": handle.dimensions, "max_sequence_length": handle.max_length,
                "normalized": handle.normalize, "matryoshka": handle.matryoshka, "pooling": handle.pooling}

    def embed(self, model: LoadedModel, request: EmbeddingRequest) -> EmbeddingResult:
        handle = self._handle(model)
        if not request.inputs:
            raise InvalidRequest("input: nothing to embed")
        dims = self._check_dimensions(model, handle, request.dimensions)
        sequences = [self._tokens(model, handle, item, index, request.truncate)
                     for index, item in enumerate(request.inputs)]
        def batches() -> list[list[float]]:
            vectors: list[list[float]] = []
            with handle.lock:  # one forward pass at a time per model; each is a whole batch
                for start in range(0, len(sequences), self.max_batch_size):
                    vectors.extend(self._run(handle, sequences[start:start + self.max_batch_size], dims))
            return vectors

        return EmbeddingResult(on_parked_thread(batches), sum(len(s) for s in sequences), handle.max_length)

    def _check_dimensions(self, model: LoadedModel, handle: EmbeddingHandle, dimensions: int | None) -> int | None:
        if dimensions is None or dimensions == handle.dimensions:
            return None
        if not handle.matryoshka:
            raise InvalidRequest(f"dimensions: {model.model_id} is not Matryoshka-trained; it only gives "
                                 f"{handle.dimensions} dimensions")
        if not 1 <= dimensions < handle.dimensions:
            raise InvalidRequest(f"dimensions: must be between 1 and {handle.dimensions} for {model.model_id}")
        return dimensions

    def _tokens(self, model: LoadedModel, handle: EmbeddingHandle, item, index: int, truncate: bool) -> list[int]:
        if isinstance(item, str):
            if not item:
                raise InvalidRequest(f"input[{index}]: empty string")
            tokens = list(handle.tokenizer(item, add_special_tokens=True)["input_ids"])
        else:
            tokens = [int(t) for t in item]
            if not tokens:
                raise InvalidRequest(f"input[{index}]: empty token array")
            bad = next((t for t in tokens if not 0 <= t < handle.vocab_size), None)
            if bad is not None:
                raise InvalidRequest(f"input[{index}]: token id {bad} is outside the vocabulary (0..{handle.vocab_size - 1})")
        if len(tokens) > handle.max_length:
            if not truncate:
                raise InvalidRequest(
                    f"input[{index}]: {len(tokens)} tokens, more than {model.model_id}'s max sequence length "
                    f"{handle.max_length}; shorten it or ask for truncation (\"truncate\": true)")
            # Keep the end-of-sequence token of decoders (their pooled position); encoders keep [CLS].
            tokens = tokens[: handle.max_length - 1] + tokens[-1:] if handle.kind == "decoder" else tokens[: handle.max_length]
        return tokens

    def _run(self, handle: EmbeddingHandle, batch: list[list[int]], dims: int | None) -> list[list[float]]:
        import mlx.core as mx

        width = max(len(s) for s in batch)
        left = handle.kind == "decoder"
        ids, mask = [], []
        for seq in batch:
            pad = [handle.pad_id] * (width - len(seq))
            ids.append(pad + seq if left else seq + pad)
            ones, zeros = [1] * len(seq), [0] * (width - len(seq))
            mask.append(zeros + ones if left else ones + zeros)
        input_ids = mx.array(ids)
        attention = mx.array(mask)
        if handle.kind == "encoder":
            hidden = handle.model(input_ids, attention_mask=attention).last_hidden_state
        else:
            hidden = self._decoder_hidden(handle.model, input_ids, attention)
        hidden = hidden.astype(mx.float32)
        if handle.pooling == "cls":
            pooled = hidden[:, 0, :]
        elif handle.pooling == "last":
            # Right-padded batches (encoders with last-token pooling) read each row's last real token.
            last = attention.sum(axis=1) - 1 if not left else mx.full((len(batch),), width - 1)
            pooled = mx.take_along_axis(hidden, last.astype(mx.int32)[:, None, None], axis=1)[:, 0, :]
        else:
            weights = attention[:, :, None].astype(mx.float32)
            pooled = (hidden * weights).sum(axis=1) / mx.maximum(weights.sum(axis=1), 1e-9)
        if dims is not None:
            pooled = pooled[:, :dims]
        if handle.normalize or dims is not None:
            pooled = pooled / mx.maximum(mx.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
        mx.eval(pooled)
        return pooled.tolist()

    @staticmethod
    def _decoder_hidden(model: Any, input_ids, attention):
        """Final hidden states of an mlx-lm causal LM, padding masked out of attention.

        mlx-lm's inner model builds a causal mask without padding, so the layers are run here with
        a mask that also hides pad keys. Pad rows attend to themselves only: a row with no key at
        all would be NaN, and a NaN value times a zero weight still poisons real rows. RoPE is
        relative, so left padding does not change the real tokens' scores.
        """
        import mlx.core as mx

        inner = getattr(model, "model", None)
        if inner is None or not all(hasattr(inner, a) for a in ("embed_tokens", "layers", "norm")):
            raise NotSupported("this decoder does not expose embed_tokens/layers/norm to embed with")
        width = input_ids.shape[1]
        causal = mx.tril(mx.ones((width, width), dtype=mx.bool_))
        eye = mx.eye(width, dtype=mx.bool_)
        real_keys = attention.astype(mx.bool_)[:, None, None, :]
        mask = (causal[None, None] & real_keys) | eye[None, None]
        hidden = inner.embed_tokens(input_ids)
        for layer in inner.layers:
            hidden = layer(hidden, mask, None)
        return inner.norm(hidden)

    # ------------------------------------------------------------------ other modalities

    @staticmethod
    def _handle(model: LoadedModel) -> EmbeddingHandle:
        if model.handle is None:
            raise Unavailable(f"{model.model_id} was unloaded")
        if not isinstance(model.handle, EmbeddingHandle):
            raise InvalidRequest(f"{model.model_id} is not loaded as an embeddings model")
        return model.handle

    def generate(self, model: LoadedModel, request: GenerationRequest):
        raise InvalidRequest(f"{model.model_id} is an embeddings model; it cannot generate text")

    def synthesize(self, model: LoadedModel, text: str, audio: AudioDefaults) -> bytes:
        raise InvalidRequest(f"{model.model_id} is an embeddings model; speech needs an audio (TTS) model")

    def transcribe(self, model: LoadedModel, audio: bytes, language: str | None) -> Transcription:
        raise InvalidRequest(f"{model.model_id} is an embeddings model; transcription needs an audio (STT) model")
