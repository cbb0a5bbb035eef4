"""Port: facts about a model folder that a probe needs, read without running the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Protocol

from application.errors import InvalidRequest
from domain.profiles.constraints import OutputConstraint
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults, InferenceParams


@dataclass(frozen=True)
class ModelFacts:
    config: dict = field(default_factory=dict)  # config.json
    chat_template: str | None = None  # from tokenizer_config.json or chat_template.jinja
    special_tokens: tuple[str, ...] = ()  # added / special tokens of the tokenizer
    audio_kind: str | None = None  # "tts" | "stt" for audio models
    normalizes_embeddings: bool | None = None  # sentence-transformers Normalize module present
    files: tuple[str, ...] = ()
    # What the model's tokenizer (as mlx-lm loads it) says: its tool-call parser and thinking markers.
    tool_parser_id: str | None = None
    thinking_markers: tuple[str, str] | None = None


class ModelInspector(Protocol):
    def inspect(self, path: Path, model_type: ModelType) -> ModelFacts: ...


class NotSupported(InvalidRequest):
    """The runtime cannot serve this kind of call here (e.g. embeddings without mlx-embeddings)."""


@dataclass(frozen=True)
class ToolCall:
    """One function call the model made: `arguments` is a JSON text, as OpenAI sends it."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True)
class ImageInput:
    """One image of a chat message: encoded file bytes (PNG, JPEG, ...), or a remote `url` that the
    inference service fetches (when allowed) before the runtime sees the message."""

    data: bytes = field(default=b"", repr=False)
    media_type: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant turn's calls, passed back in the history
    tool_call_id: str | None = None  # a `tool` message: which call it answers
    name: str | None = None  # a `tool` message: the function's name
    reasoning: str | None = None  # an assistant turn's thinking, for templates that render it
    # Images of this turn, in order; they come before the text in the prompt (vision models only).
    images: tuple[ImageInput, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True)
class GenerationRequest:
    """Protocol-neutral request: either chat `messages` or a raw `prompt`."""

    params: InferenceParams
    messages: tuple[ChatMessage, ...] = ()
    prompt: str | None = None
    # Function tools in OpenAI's shape ({"type": "function", "function": {name, description, parameters}}).
    tools: tuple[dict, ...] = ()
    tool_choice: str | dict | None = None  # "auto" | "none" | "required" | {"type": "function", "function": {"name"}}
    enable_thinking: bool | None = None  # the chat template's switch; None: request > profile > model default
    parallel_tool_calls: bool = True  # False: at most one tool call (enforced with tool_choice required/named)
    constraint: OutputConstraint | None = None  # structured output (constrained decoding)
    n: int = 1  # choices, generated together in the batch; chunks carry their `index`
    # The context window to hold the prompt to (a profile's `context_length`); None: the model's own.
    context_length: int | None = None
    # False when `params.max_tokens` is only the server's default: then it is capped to the room
    # left in the context instead of making a long prompt a 400.
    max_tokens_requested: bool = True


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token's log probability, with the most likely alternatives at its position."""

    token: str
    logprob: float
    bytes: tuple[int, ...] = ()
    top: tuple["TokenLogprob", ...] = ()


@dataclass(frozen=True)
class GenerationChunk:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # "stop" | "length" | "tool_calls" on the last chunk
    reasoning: str = ""  # text between the model's thinking markers
    tool_calls: tuple[ToolCall, ...] = ()  # calls completed in this chunk, parsed from the model's format
    cached_tokens: int = 0  # prompt tokens served from the prompt (KV) cache, not prefilled
    logprobs: tuple[TokenLogprob, ...] | None = None  # the tokens this chunk covers, when asked for
    index: int = 0  # choice index (n > 1)
    # Of `completion_tokens`, those generated inside the model's thinking block (its markers included).
    reasoning_tokens: int = 0
    # Characters of this choice's decoded text that no chunk has carried yet (held back in case they start a
    # stop string): with `text`, where the chunk's token ends in the text, so each token is counted with the
    # part (reasoning or content) its own text lands in, however late that text comes out.
    held_back: int = 0


@dataclass(frozen=True)
class EmbeddingRequest:
    """Texts or token-id sequences to embed; `dimensions` truncates Matryoshka-trained models."""

    inputs: tuple[str | tuple[int, ...], ...]
    dimensions: int | None = None
    truncate: bool = False  # False: an input past the model's max sequence length is refused


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]]
    prompt_tokens: int  # real tokens the model saw (special tokens included)
    max_sequence_length: int | None = None  # the limit the runtime enforced (the probe stores it)


@dataclass(frozen=True)
class Transcription:
    text: str
    language: str | None = None
    segments: tuple[dict, ...] = ()
    duration: float | None = None


@dataclass(frozen=True)
class Sharding:
    """How a model sharded over several ranks (processes, usually on several machines) is placed."""

    mode: str  # "tensor" | "pipeline"
    hosts: tuple[str, ...]  # rank order (rank 0 first)
    backend: str  # mx.distributed backend: "ring", "jaccl", "mpi"
    rank_bytes: tuple[int, ...] = ()  # each rank's share of the weights
    unavailable: str | None = None  # why the model cannot serve now (a rank died or hung), else None

    @property
    def ranks(self) -> int:
        return len(self.hosts)


@dataclass(frozen=True)
class PromptCacheStats:
    """A model's prompt (KV) cache now, and its bounds (MLX_SERVER_PROMPT_CACHE_SIZE / _BYTES)."""

    bytes: int  # what `cache_bytes` answers: the pool counts it against its memory limit
    entries: int  # cached sequences (prompts, or prompt + answer)
    max_entries: int
    max_bytes: int


@dataclass
class LoadedModel:
    """A handle the runtime returns; `size_bytes` is this model's own weights, not process memory."""

    model_id: str
    model_type: ModelType
    path: Path
    size_bytes: int
    handle: Any = field(default=None, repr=False)
    # Set by a runtime that shards the model over several ranks (replaced when its state changes).
    sharding: Sharding | None = None


class ModelRuntime(Protocol):
    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel: ...

    def unload(self, model: LoadedModel) -> None:
        """Release the model and free cached buffers."""
        ...

    def generate(self, model: LoadedModel, request: GenerationRequest) -> Iterator[GenerationChunk]:
        """Stream deltas; closing the iterator stops generation."""
        ...

    def count_tokens(self, model: LoadedModel, request: GenerationRequest) -> int:
        """How many tokens the request's prompt is for this model (chat template, tools and all)."""
        ...

    # Prompt (KV) cache. Runtimes without one answer 0 (the pool and the service call them only if present).
    def warm(self, model: LoadedModel, request: GenerationRequest) -> int:
        """Prefill the start every request like `request` shares (a system prompt) into the prompt cache."""
        ...

    def cache_bytes(self, model: LoadedModel) -> int:
        """Bytes the model's prompt cache holds now."""
        ...

    def free_cache(self, model: LoadedModel) -> int:
        """Drop the model's prompt cache; the bytes freed."""
        ...

    def cache_stats(self, model: LoadedModel) -> PromptCacheStats | None:
        """The model's prompt cache now and its bounds; None when it has none (turned off, or a kind
        of model without one). What `GET /api/pool` shows."""
        ...

    def synthesize(self, model: LoadedModel, text: str, audio: AudioDefaults) -> bytes:
        """Text to WAV bytes."""
        ...

    def transcribe(self, model: LoadedModel, audio: bytes, language: str | None) -> Transcription: ...

    def embed(self, model: LoadedModel, request: EmbeddingRequest) -> EmbeddingResult: ...


class ImageFetcher(Protocol):
    """Fetch one remote image for a chat message (a server-side request: SSRF-guarded)."""

    def fetch(self, url: str, *, max_bytes: int, timeout: float) -> ImageInput:
        """The image at `url`, at most `max_bytes`, within `timeout` seconds in all.

        Raises `InvalidRequest` for a refused address (loopback, private, link-local...), a failed or
        too-large download, or a non-http(s) URL.
        """
        ...


# ---- constrained decoding: compile an `OutputConstraint` for a model's tokenizer.
# The compiled `TokenConstraint` follows one generation token by token: before each step it says
# which token ids may come next (a bitmask), after it consumes the token that was sampled. A
# runtime turns it into a logits processor for its own array library. A constraint that cannot
# be compiled (a bad schema, an invalid grammar or regex) raises `InvalidRequest` naming the problem.

class TokenConstraint(Protocol):
    def allowed(self) -> bytes:
        """The ids allowed next: one bit per id, little-endian within each byte (id 0 = bit 0 of byte 0)."""
        ...

    def consume(self, token: int) -> None:
        """Advance past the token that was generated."""
        ...

    @property
    def done(self) -> bool:
        """The output is complete: only an end-of-sequence token may follow."""
        ...


class GrammarCompiler(Protocol):
    def compile(self, constraint: OutputConstraint, tokenizer: Any, vocab_size: int) -> TokenConstraint:
        """`tokenizer` is the runtime's own (a Hugging Face fast tokenizer underneath)."""
        ...

    def check(self, constraint: OutputConstraint) -> None:
        """Raise `InvalidRequest` if `constraint` cannot be compiled for any tokenizer (saving a profile
        checks its constraint here, so a bad one is refused when saved, not on every later request)."""
        ...


# -- per-host pool state in a shared database (several servers on one PostgreSQL) ----------------
@dataclass(frozen=True)
class HostPoolEntry:
    """What one host's model pool holds, as other hosts sharing the database see it."""

    host: str
    model_id: str
    model_type: str
    size_bytes: int
    loaded_at: datetime
    last_used_at: datetime
    use_count: int
    updated_at: datetime | None = None  # when the host last published its pool


class PoolStateRepository(Protocol):
    def replace(self, host: str, entries: list[HostPoolEntry]) -> None:
        """The host's rows become exactly `entries` (an empty list clears them)."""
        ...

    def list(self, host: str | None = None) -> list[HostPoolEntry]:
        """Ordered by host, then model id."""
        ...
