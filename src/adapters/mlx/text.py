"""`MlxTextRuntime`: text generation with mlx-lm, streamed, cancellable and batched.

- Loads a local model folder with `mlx_lm.load` and applies its chat template.
- Builds the sampler and logits processors from the resolved `InferenceParams`:
  temperature 0 is greedy (argmax, identical to mlx-lm's own greedy generate), top_p, top_k,
  min_p, repetition_penalty; a `seed` gives its own random key, so seeded sampling is
  reproducible even while other requests share the batch (no global RNG state is touched).
- Stop strings are matched on the decoded text, across chunk boundaries, and are not emitted.
- All requests run through a per-model `BatchEngine`: a lone request decodes "solo" on a plain
  KV cache (the work `stream_generate` does); concurrent streams are decoded together by mlx-lm's
  `BatchGenerator` when batching is on (`max_batch_size` > 1), a solo stream joining mid-way.
- Closing the returned iterator (or dropping it) cancels the request in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from adapters.mlx.chat_output import check_tools, template_kwargs, template_messages, with_tool_constraint
from adapters.mlx.common import free_buffer_cache, read_config, weights_nbytes
from adapters.mlx import generation_parts as parts
from adapters.mlx.engine import BatchEngine, EngineRequest, on_engine_thread
from adapters.mlx.prompt_cache import PromptCacheStore
from adapters.mlx.text_stream import TextStream
from adapters.mlx.sampling import KeyedSampler, build_logits_processors, build_sampler
from application.errors import InvalidRequest
from application.inference.ports import GrammarCompiler
from application.inference.ports import (
    GenerationChunk,
    GenerationRequest,
    LoadedModel,
    NotSupported,
    Transcription,
)
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults

__all__ = ["MlxTextRuntime", "TextStream", "KeyedSampler", "build_sampler", "build_logits_processors"]

DEFAULT_MAX_TOKENS = 512
# How long `TextStream.close()` waits for the engine to drop the request (normally one step).
CLOSE_ACK_SECONDS = 5.0
# config.json keys that give a model's context window, most specific first.
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx", "max_sequence_length")


@dataclass
class TextModelHandle:
    model: Any
    tokenizer: Any  # mlx_lm TokenizerWrapper
    engine: BatchEngine
    config: dict
    prompt_cache: PromptCacheStore | None = None
    token_texts: dict = field(default_factory=dict)  # id -> decoded text, for logprobs


def context_window(config: dict) -> int | None:
    """The model's context length from its config (a VLM's text_config included), or None."""
    for source in (config, config.get("text_config") or {}):
        for key in _CONTEXT_KEYS:
            value = source.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def fit_max_tokens(model_id: str, config: dict, request: GenerationRequest, prompt_tokens: int, max_tokens: int,
                   max_prompt_tokens: int = 0) -> int:
    """Refuse (400, before any work) a prompt that cannot fit; returns the max_tokens to run with."""
    if max_prompt_tokens and prompt_tokens > max_prompt_tokens:
        raise InvalidRequest(
            f"the prompt has {prompt_tokens} tokens, over this server's limit of {max_prompt_tokens} "
            "(MLX_SERVER_MAX_PROMPT_TOKENS)")
    window = request.context_length or context_window(config)
    if window is None:
        return max_tokens
    source = "the profile's context_length" if request.context_length else f"{model_id}'s context"
    if prompt_tokens >= window:
        raise InvalidRequest(
            f"the prompt has {prompt_tokens} tokens, but {source} is {window} tokens; shorten the prompt")
    if prompt_tokens + max_tokens > window:
        if request.max_tokens_requested:
            raise InvalidRequest(
                f"the prompt has {prompt_tokens} tokens and max_tokens is {max_tokens}, but {source} is "
                f"{window} tokens ({prompt_tokens} + {max_tokens} > {window}); lower max_tokens to at most "
                f"{window - prompt_tokens} or shorten the prompt")
        return window - prompt_tokens  # only the server default: use the room that is left
    return max_tokens


class MlxTextRuntime(parts.GenerationRuntime):
    """The `ModelRuntime` port for text-gen (and, text-only, vision) models via mlx-lm."""

    def __init__(
        self,
        *,
        enable_batching: bool = True,
        max_batch_size: int = 8,
        prefill_step_size: int = 2048,
        prompt_cache_entries: int = 10,
        prompt_cache_bytes: int = 2 << 30,
        max_prompt_tokens: int = 0,
        grammar: GrammarCompiler | None = None,
    ) -> None:
        super().__init__(max_prompt_tokens=max_prompt_tokens, grammar=grammar,
                         prompt_cache_entries=prompt_cache_entries, prompt_cache_bytes=prompt_cache_bytes)
        self.enable_batching = enable_batching
        self.max_batch_size = max_batch_size if enable_batching else 1
        self.prefill_step_size = prefill_step_size

    # ------------------------------------------------------------------ lifecycle

    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel:
        import mlx_lm

        path = Path(path)
        parts.check_model_folder(model_id, path)
        with self._load_lock:
            try:
                model, tokenizer = mlx_lm.load(str(path))
            except FileNotFoundError as exc:
                raise InvalidRequest(f"{model_id}: the model folder {path} is incomplete: {exc}") from exc
            # unknown architecture, bad weights; TypeError: a config.json without fields the architecture needs
            except (ValueError, ImportError, KeyError, TypeError) as exc:
                kind = "vision model (served text-only)" if ModelType(model_type) is ModelType.VISION else "model"
                raise NotSupported(f"{model_id}: mlx-lm cannot load this {kind}: {exc}") from exc
        store = None
        if self.prompt_cache_on:
            store = PromptCacheStore(self.prompt_cache_entries, self.prompt_cache_bytes)
        engine = BatchEngine(
            model,
            sorted(tokenizer.eos_token_ids),
            max_batch_size=self.max_batch_size,
            prefill_step_size=self.prefill_step_size,
            prompt_cache=store,
        )
        handle = TextModelHandle(model=model, tokenizer=tokenizer, engine=engine, config=read_config(path),
                                 prompt_cache=store)
        return LoadedModel(model_id, ModelType(model_type), path, weights_nbytes(model), handle=handle)

    def unload(self, model: LoadedModel) -> None:
        handle: TextModelHandle | None = model.handle
        if handle is not None:
            handle.engine.close()  # also drops the prompt cache
        model.handle = None
        del handle
        free_buffer_cache()

    # ------------------------------------------------------------------ prompt cache

    def warm(self, model: LoadedModel, request: GenerationRequest) -> int:
        """Prefill the shared start of `request`'s prompts (a profile's system prompt) into the prompt cache.

        For chat messages, the warmed tokens are what every conversation starting with them shares:
        the common prefix of the template applied with two different user turns. Returns how
        many tokens the cache now holds for it (0 when the cache is off).
        """
        handle = self._handle(model)
        if handle.prompt_cache is None:
            return 0
        if request.messages:
            from application.inference.ports import ChatMessage

            variants = [self.prompt_tokens(model, replace(request, messages=(*request.messages, ChatMessage("user", u))))
                        for u in ("a", "b")]
            tokens = _common_prefix(*variants)
        else:
            tokens = self.prompt_tokens(model, request)
        if len(tokens) < 2:
            return 0
        warm = EngineRequest(prompt=tokens, max_tokens=1, warm_only=True)
        handle.engine.submit(warm)
        if not on_engine_thread():
            warm.finished.wait(timeout=600)
        event = warm.events.get(timeout=1) if warm.finished.is_set() else None
        if isinstance(event, BaseException):
            raise event
        return len(tokens)

    # ------------------------------------------------------------------ generation

    def prompt_tokens(self, model: LoadedModel, request: GenerationRequest) -> list[int]:
        """The exact token ids the model sees: chat template for messages, raw text otherwise."""
        tokenizer = self._handle(model).tokenizer
        if request.messages:
            check_tools(model.model_id, tokenizer, request)
            messages = template_messages(request.messages)
            if getattr(tokenizer, "has_chat_template", False):
                try:
                    text = tokenizer.apply_chat_template(
                        messages, add_generation_prompt=True, tokenize=False, **template_kwargs(request)
                    )
                except Exception as exc:  # jinja errors: an unsupported role, say
                    raise InvalidRequest(f"{model.model_id}: chat template rejected the messages: {exc}") from exc
                return list(tokenizer.encode(text, add_special_tokens=False))
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
        elif request.prompt is not None:
            text = request.prompt
        else:
            raise InvalidRequest("a generation request needs messages or a prompt")
        # As mlx-lm does: add BOS unless the text already starts with it.
        add_special = tokenizer.bos_token is None or not text.startswith(tokenizer.bos_token)
        tokens = list(tokenizer.encode(text, add_special_tokens=add_special))
        if not tokens:
            raise InvalidRequest("the prompt is empty")
        return tokens

    def count_tokens(self, model: LoadedModel, request: GenerationRequest) -> int:
        self._require_text(model)
        return len(self.prompt_tokens(model, request))

    def generate(self, model: LoadedModel, request: GenerationRequest) -> Iterator[GenerationChunk]:
        self._require_text(model)
        handle = self._handle(model)
        tokens = self.prompt_tokens(model, request)
        if request.messages:
            request = with_tool_constraint(model.model_id, handle.tokenizer, request, tokens)
        params = request.params
        max_tokens = self._check_lengths(model, handle, request, len(tokens), params.max_tokens or DEFAULT_MAX_TOKENS)
        n = parts.choice_count(request)
        top_logprobs = parts.top_logprobs_of(params)
        events = None
        requests = []
        for index in range(n):
            engine_request = EngineRequest(
                prompt=tokens,
                max_tokens=max_tokens,
                sampler=build_sampler(params, index),
                logits_processors=parts.logits_processors(params, request, lambda: self._compile(handle, request)),
                top_logprobs=top_logprobs,
                index=index,
                params=params,
            )
            if events is None:
                events = engine_request.events
            engine_request.events = events  # one queue for every choice: the stream reads them in order
            requests.append(engine_request)
        stream = TextStream(handle, requests, tuple(params.stop or ()))
        return parts.split_chat_output(stream, handle.tokenizer, request, tokens)

    def _check_lengths(self, model: LoadedModel, handle: TextModelHandle, request: GenerationRequest,
                       prompt_tokens: int, max_tokens: int) -> int:
        return fit_max_tokens(model.model_id, handle.config, request, prompt_tokens, max_tokens, self.max_prompt_tokens)

    def _compile(self, handle: TextModelHandle, request: GenerationRequest):
        vocab = parts.config_vocab_size(handle.config)
        if vocab <= 0:
            vocab = len(handle.tokenizer.vocab) if hasattr(handle.tokenizer, "vocab") else 0
        return self._grammar_compiler().compile(request.constraint, handle.tokenizer, vocab)

    # ------------------------------------------------------------------ other modalities

    def synthesize(self, model: LoadedModel, text: str, audio: AudioDefaults) -> bytes:
        raise InvalidRequest(f"{model.model_id} is a text model; speech needs an audio (TTS) model")

    def transcribe(self, model: LoadedModel, audio: bytes, language: str | None) -> Transcription:
        raise InvalidRequest(f"{model.model_id} is a text model; transcription needs an audio (STT) model")

    def embed(self, model: LoadedModel, texts: Sequence[str]) -> list[list[float]]:
        raise NotSupported(f"{model.model_id} is a text model; embeddings need an embeddings model")

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _handle(model: LoadedModel) -> TextModelHandle:
        return parts.loaded_handle(model, TextModelHandle, "text")

    @staticmethod
    def _require_text(model: LoadedModel) -> None:
        if model.model_type not in (ModelType.TEXT_GEN, ModelType.VISION):
            raise InvalidRequest(f"{model.model_id} is a {model.model_type.value} model, not a text model")


def _common_prefix(a: list[int], b: list[int]) -> list[int]:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return a[:n]

