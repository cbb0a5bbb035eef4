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

import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from adapters.mlx.chat_output import (
    ChatOutputSplitter,
    ChatOutputStream,
    check_tools,
    initial_state,
    needs_splitting,
    template_kwargs,
    template_messages,
    wants_tool_calls,
)
from adapters.mlx.common import free_buffer_cache, read_config, weights_nbytes
from adapters.mlx.engine import BatchEngine, EngineRequest, on_engine_thread
from application.errors import InvalidRequest, Unavailable
from application.inference.ports import (
    GenerationChunk,
    GenerationRequest,
    LoadedModel,
    NotSupported,
    Transcription,
)
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults, InferenceParams

DEFAULT_MAX_TOKENS = 512
# How long `TextStream.close()` waits for the engine to drop the request (normally one step).
CLOSE_ACK_SECONDS = 5.0


@dataclass
class TextModelHandle:
    model: Any
    tokenizer: Any  # mlx_lm TokenizerWrapper
    engine: BatchEngine
    config: dict


class KeyedSampler:
    """top_p / min_p / top_k then a categorical draw from this request's own random key."""

    def __init__(self, temperature: float, top_p: float | None, min_p: float | None, top_k: int | None, seed: int | None):
        import mlx.core as mx

        self._temperature = float(temperature)
        self._top_p = top_p
        self._min_p = min_p
        self._top_k = top_k
        self._key = mx.random.key(seed if seed is not None else secrets.randbits(63))

    def __call__(self, logprobs):
        import mlx.core as mx
        from mlx_lm.sample_utils import apply_min_p, apply_top_k, apply_top_p

        if self._top_p is not None and 0 < self._top_p < 1.0:
            logprobs = apply_top_p(logprobs, self._top_p)
        if self._min_p:
            logprobs = apply_min_p(logprobs, self._min_p)
        if self._top_k and 0 < self._top_k < logprobs.shape[-1]:
            logprobs = apply_top_k(logprobs, self._top_k)
        self._key, draw = mx.random.split(self._key)
        return mx.random.categorical(logprobs * (1.0 / self._temperature), key=draw)


def build_sampler(params: InferenceParams) -> KeyedSampler | None:
    """None means greedy: the engine's shared argmax sampler, batched across requests."""
    if not params.temperature:  # None or 0: greedy
        return None
    return KeyedSampler(params.temperature, params.top_p, params.min_p, params.top_k, params.seed)


def build_logits_processors(params: InferenceParams) -> list:
    if params.repetition_penalty is None or params.repetition_penalty == 1.0:
        return []
    from mlx_lm.sample_utils import make_logits_processors

    return make_logits_processors(repetition_penalty=params.repetition_penalty)


class MlxTextRuntime:
    """The `ModelRuntime` port for text-gen (and, text-only, vision) models via mlx-lm."""

    def __init__(self, *, enable_batching: bool = True, max_batch_size: int = 8, prefill_step_size: int = 2048) -> None:
        self.enable_batching = enable_batching
        self.max_batch_size = max_batch_size if enable_batching else 1
        self.prefill_step_size = prefill_step_size
        self._load_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel:
        import mlx_lm

        path = Path(path)
        if not (path / "config.json").is_file():
            raise InvalidRequest(f"{model_id}: {path} has no config.json; is the model fully installed?")
        with self._load_lock:
            try:
                model, tokenizer = mlx_lm.load(str(path))
            except FileNotFoundError as exc:
                raise InvalidRequest(f"{model_id}: the model folder {path} is incomplete: {exc}") from exc
            except (ValueError, ImportError, KeyError) as exc:  # unknown architecture, bad weights
                kind = "vision model (served text-only)" if ModelType(model_type) is ModelType.VISION else "model"
                raise NotSupported(f"{model_id}: mlx-lm cannot load this {kind}: {exc}") from exc
        engine = BatchEngine(
            model,
            sorted(tokenizer.eos_token_ids),
            max_batch_size=self.max_batch_size,
            prefill_step_size=self.prefill_step_size,
        )
        handle = TextModelHandle(model=model, tokenizer=tokenizer, engine=engine, config=read_config(path))
        return LoadedModel(model_id, ModelType(model_type), path, weights_nbytes(model), handle=handle)

    def unload(self, model: LoadedModel) -> None:
        handle: TextModelHandle | None = model.handle
        if handle is not None:
            handle.engine.close()
        model.handle = None
        del handle
        free_buffer_cache()

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
        params = request.params
        engine_request = EngineRequest(
            prompt=tokens,
            max_tokens=params.max_tokens or DEFAULT_MAX_TOKENS,
            sampler=build_sampler(params),
            logits_processors=build_logits_processors(params),
        )
        stream = TextStream(handle, engine_request, tuple(params.stop or ()))
        if request.messages and needs_splitting(handle.tokenizer, request):
            splitter = ChatOutputSplitter(handle.tokenizer, request.tools, wants_tool_calls(request),
                                          initial_state(handle.tokenizer, tokens))
            return ChatOutputStream(stream, splitter)
        return stream

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
        if model.handle is None:  # unloaded under the caller: not the client's mistake
            raise Unavailable(f"{model.model_id} was unloaded")
        if not isinstance(model.handle, TextModelHandle):
            raise InvalidRequest(f"{model.model_id} is not loaded as a text model")
        return model.handle

    @staticmethod
    def _require_text(model: LoadedModel) -> None:
        if model.model_type not in (ModelType.TEXT_GEN, ModelType.VISION):
            raise InvalidRequest(f"{model.model_id} is a {model.model_type.value} model, not a text model")


class TextStream:
    """Iterator of `GenerationChunk`s for one request; `close()` cancels it in the engine.

    The request is submitted on the first `next()`, so an iterator that is never read never
    computes anything.
    """

    def __init__(self, handle: TextModelHandle, request: EngineRequest, stop: tuple[str, ...]) -> None:
        self._handle = handle
        self.request = request
        self._stop = stop
        self._holdback = max((len(s) for s in stop), default=1) - 1
        self._detokenizer = handle.tokenizer.detokenizer
        self._pending = ""
        self._completion_tokens = 0
        self._submitted = False
        self._done = False

    def __iter__(self) -> "TextStream":
        return self

    def __next__(self) -> GenerationChunk:
        if self._done:
            raise StopIteration
        if not self._submitted:
            self._handle.engine.submit(self.request)
            self._submitted = True
        prompt_tokens = len(self.request.prompt)
        event = self.request.events.get()
        if isinstance(event, BaseException):
            self._done = True
            raise event
        token, finish = event
        if finish != "stop":  # "stop" means EOS: not part of the text
            self._detokenizer.add_token(token)
            self._completion_tokens += 1
        if finish is not None:
            self._detokenizer.finalize()
        self._pending += self._detokenizer.last_segment
        if self._stop:
            hit = self._first_stop()
            if hit is not None:
                text = self._pending[:hit]
                self._pending = ""
                self.close()
                return GenerationChunk(text, prompt_tokens, self._completion_tokens, "stop")
        if finish is not None:
            text, self._pending = self._pending, ""
            self._done = True
            return GenerationChunk(text, prompt_tokens, self._completion_tokens, finish)
        # One chunk per token, even when its text is still held back (a partial UTF-8
        # sequence, or a possible stop string): consumers see progress and token counts.
        cut = max(len(self._pending) - self._holdback, 0)
        text, self._pending = self._pending[:cut], self._pending[cut:]
        return GenerationChunk(text, prompt_tokens, self._completion_tokens, None)

    def _first_stop(self) -> int | None:
        hits = [i for i in (self._pending.find(s) for s in self._stop) if i >= 0]
        return min(hits) if hits else None

    def close(self) -> None:
        """Stop generating (a client went away, or a stop string matched).

        Waits (briefly) until the engine has dropped the request, so that when close() returns
        no step is still computing for it: a process that exits right after (`mlxm run` whose
        stop string matched) never finalises with an engine thread inside MLX.
        """
        self._cancel()
        if self._submitted and not on_engine_thread():
            self.request.finished.wait(timeout=CLOSE_ACK_SECONDS)

    def _cancel(self) -> None:
        self._done = True
        if self._submitted:
            self._handle.engine.cancel(self.request)

    def __del__(self) -> None:
        try:
            self._cancel()  # never blocks: a finaliser may run on any thread, the engine's too
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
