"""What an inference returns: the resolved target, the stream that holds the model's lease while it
runs, and the collected completion. Split from `service.py` (the use cases) by job: these are the values
and handles the use cases hand to frontends; `InferenceService` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from application.inference.pool import Lease
from application.inference.ports import GenerationChunk, GenerationRequest
from domain.enums import BackendType
from domain.library.models import Model
from domain.profiles.model import ExecutionProfile
from domain.profiles.params import InferenceParams


@dataclass(frozen=True)
class Target:
    """What a name resolved to: an installed model, and the profile when the name was one."""

    model: Model
    profile: ExecutionProfile | None = None

    @property
    def name(self) -> str:
        return self.profile.name if self.profile is not None else self.model.model_id


@dataclass(frozen=True)
class Completion:
    """One generation's whole answer: what the non-streaming `chat`/`complete` of both the local
    `InferenceService` and the routed service (application.routing.service) return."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    model: str  # the name the request asked for (a profile's, a model's, or a cloud route's)
    reasoning: str = ""  # the model's thinking, apart from `text`
    tool_calls: tuple = ()  # ToolCall, when the request offered tools
    cached_tokens: int = 0
    backend: str = BackendType.LOCAL.value  # which backend answered (after any fallback, when routed)


class TokenTally:
    """One generation's usage and finish reason so far, counted from its chunks; the local
    `InferenceStream` and the router's `RoutedStream` both keep it.

    Runtimes report running totals, but not on every chunk (a cloud stream's text deltas carry none,
    the vision engine's flush of held-back text carries zeros), so the largest seen is kept.
    """

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cached_tokens = 0
        self.finish_reason: str | None = None

    def count(self, chunk: GenerationChunk) -> None:
        self.prompt_tokens = max(self.prompt_tokens, chunk.prompt_tokens)
        self.completion_tokens = max(self.completion_tokens, chunk.completion_tokens)
        self.cached_tokens = max(self.cached_tokens, chunk.cached_tokens)
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason

    def completion(self, chunks: list[GenerationChunk], model: str,
                   backend: str = BackendType.LOCAL.value) -> Completion:
        """The whole answer of `chunks`, the chunks this tally counted."""
        return Completion(
            text="".join(chunk.text for chunk in chunks),
            reasoning="".join(chunk.reasoning for chunk in chunks),
            tool_calls=tuple(call for chunk in chunks for call in chunk.tool_calls),
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            finish_reason=self.finish_reason,
            model=model,
            cached_tokens=self.cached_tokens,
            backend=backend,
        )


class InferenceStream(TokenTally):
    """Chunks of one generation, holding the model's pool lease until exhausted or closed.

    Closing it (a client disconnected) closes the runtime's iterator, which stops generation,
    and releases the lease so the pool may unload the model again.
    """

    def __init__(self, chunks: Iterator[GenerationChunk], lease: Lease, target: Target, params: InferenceParams):
        super().__init__()
        self._chunks = chunks
        self._lease = lease
        self.target = target
        self.params = params  # the resolved parameters, after the cascade

    def __iter__(self) -> "InferenceStream":
        return self

    def __next__(self) -> GenerationChunk:
        try:
            chunk = next(self._chunks)
        except BaseException:
            self.close()
            raise
        self.count(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            self._lease.release()

    def __enter__(self) -> "InferenceStream":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def open_generation(service, name: str, request: GenerationRequest) -> Iterator[GenerationChunk]:
    """The stream of a chat (`request.messages`) or a raw-prompt completion, on any service with
    `stream(name, request)` (the local InferenceService or the routed one in front of it), or else
    `stream_chat` / `stream_complete` (which carry only messages/prompt and params)."""
    stream = getattr(service, "stream", None)
    if callable(stream):
        return stream(name, request)
    if request.messages:
        return service.stream_chat(name, request.messages, request.params)
    return service.stream_complete(name, request.prompt, request.params)


def collect(stream: InferenceStream) -> Completion:
    with stream:
        chunks = list(stream)
    return stream.completion(chunks, stream.target.name)
