"""Route inference requests to the local runtime or a cloud backend, with fallback and auditing.

The HTTP frontends (OpenAI `/v1/chat/completions` and `/v1/completions`, Anthropic `/v1/messages`,
`/api/chat`) build a `GenerationRequest` and reach `InferenceRouter` through `RoutedInferenceService`,
so cloud routes, fallback and the audit log behave the same for all of them.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Protocol, TypeVar

from application.routing.backend_mappings import BackendMappingService
from application.routing.credentials import CredentialService
from application.errors import BackendError, InvalidRequest, NotFound, NotInstalled, Unavailable
from application.inference.service import open_generation
from application.inference.streams import Completion, TokenTally
from application.audit.ports import AuditSink
from application.ports import Clock
from application.routing.ports import CloudRuntimeFactory
from application.inference.ports import ChatMessage, GenerationChunk, GenerationRequest
from domain.audit.model import AuditEntry, AuditStatus
from domain.enums import BackendType, ModelType
from domain.profiles.params import InferenceParams


T = TypeVar("T")


class LocalGeneration(Protocol):
    """The local inference path (the runtime issue's InferenceService, adapted)."""

    def generate(self, model: str, request: GenerationRequest) -> Iterator[GenerationChunk]: ...


class RoutedStream(TokenTally):
    """The chunks of one request; `backend` tells which backend answered (after any fallback)."""

    def __init__(self) -> None:
        super().__init__()
        self.backend: str | None = None
        self._chunks: Iterator[GenerationChunk] | None = None

    def __iter__(self) -> "RoutedStream":
        return self

    def __next__(self) -> GenerationChunk:
        return next(self._chunks)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop generating (a client went away); the audit row says `cancelled`."""
        self._chunks.close()  # type: ignore[union-attr]


@contextmanager
def _closing(chunks: Iterator[GenerationChunk]):
    """Close the backend's stream however we leave it, so generation stops with the client."""
    try:
        yield chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class InferenceRouter:
    def __init__(
        self,
        mappings: BackendMappingService,
        credentials: CredentialService,
        cloud_runtimes: CloudRuntimeFactory,
        local: LocalGeneration | None,
        audit: AuditSink,
        clock: Clock,
        new_request_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._mappings = mappings
        self._credentials = credentials
        self._cloud_runtimes = cloud_runtimes
        self._local = local
        self._audit = audit
        self._clock = clock
        self._new_request_id = new_request_id

    def generate(self, model: str, request: GenerationRequest, *, endpoint: str = "generate",
                 request_id: str | None = None) -> RoutedStream:
        """Stream the answer. Errors (routing, backend) surface on the first `next()`.

        A retryable backend failure (connection, 5xx, timeout) before the first chunk goes to the
        mapping's fallback backend; after output has started the stream cannot switch and fails.
        """
        stream = RoutedStream()
        stream._chunks = self._run(stream, model, request, endpoint, request_id or self._new_request_id())
        return stream

    def complete(self, model: str, request: GenerationRequest, *, endpoint: str = "generate",
                 request_id: str | None = None) -> Completion:
        stream = RoutedStream()
        stream._chunks = self._run(stream, model, request, endpoint, request_id or self._new_request_id(),
                                   streaming=False)
        return stream.completion(list(stream), model, backend=stream.backend or "")

    def run_local(self, model: str, call: Callable[[], T], *, endpoint: str, request_id: str | None = None) -> T:
        """A request only the local runtime serves (speech, transcription, embeddings): one audit row too."""
        started = self._clock.monotonic()
        status, error_type = AuditStatus.SUCCESS, None
        try:
            return call()
        except Exception as exc:
            status, error_type = AuditStatus.ERROR, type(exc).__name__
            raise
        finally:
            self._audit.record(AuditEntry(
                request_id=request_id or self._new_request_id(), timestamp=self._clock.now(), model=model,
                backend=BackendType.LOCAL.value, endpoint=endpoint,
                duration_ms=int((self._clock.monotonic() - started) * 1000), status=status, error_type=error_type,
            ))

    def _attempts(self, model: str) -> list[tuple[BackendType, str]]:
        decision = self._mappings.resolve(model)
        attempts = [(decision.backend_type, decision.backend_model)]
        fallback = decision.fallback_backend
        if fallback is not None and fallback is not decision.backend_type:
            # Locally the mapping's local model (`local:NAME`), else the user's own name; another cloud
            # gets the mapped name.
            local_name = decision.fallback_model or model
            attempts.append((fallback, local_name if fallback is BackendType.LOCAL else decision.backend_model))
        return attempts

    def _open(self, backend: BackendType, model: str, request: GenerationRequest,
              streaming: bool) -> Iterator[GenerationChunk]:
        if backend is BackendType.LOCAL:
            if self._local is None:
                raise Unavailable("no local runtime is configured")
            return iter(self._local.generate(model, request))
        runtime = self._cloud_runtimes(self._credentials.endpoint_for(backend))
        loaded = runtime.load(model, Path("."), ModelType.TEXT_GEN)
        complete = getattr(runtime, "complete", None)
        if not streaming and complete is not None:
            # A non-streaming client gets the backend's non-streaming answer: one round trip.
            return iter([complete(loaded, request)])
        return iter(runtime.generate(loaded, request))

    def _run(self, stream: RoutedStream, model: str, request: GenerationRequest, endpoint: str,
             request_id: str, streaming: bool = True) -> Iterator[GenerationChunk]:
        started = self._clock.monotonic()
        status, error_type = AuditStatus.SUCCESS, None
        try:
            attempts = self._attempts(model)
            cloud_failure: BackendError | None = None
            for index, (backend, target) in enumerate(attempts):
                stream.backend = backend.value
                produced = False
                try:
                    with _closing(self._open(backend, target, request, streaming)) as chunks:
                        for chunk in chunks:
                            produced = True
                            stream.count(chunk)
                            yield chunk
                    break
                except BackendError as exc:
                    if produced or not exc.retryable or index == len(attempts) - 1:
                        raise
                    cloud_failure = exc
                except (NotFound, NotInstalled) as exc:
                    if cloud_failure is None:
                        raise
                    # The local fallback has no such model: the user must learn that the cloud failed, and why.
                    raise BackendError(
                        f"the {attempts[0][0].value} backend failed ({cloud_failure}), and the local fallback "
                        f"cannot run {target!r}: {exc}; name a local model with `--fallback local:NAME`",
                        backend=attempts[0][0].value,
                    ) from exc
        except GeneratorExit:
            status = AuditStatus.CANCELLED
            raise
        except Exception as exc:
            status, error_type = AuditStatus.ERROR, type(exc).__name__
            raise
        finally:
            self._audit.record(AuditEntry(
                request_id=request_id, timestamp=self._clock.now(), model=model, backend=stream.backend or "none",
                endpoint=endpoint, duration_ms=int((self._clock.monotonic() - started) * 1000), status=status,
                prompt_tokens=stream.prompt_tokens, completion_tokens=stream.completion_tokens,
                error_type=error_type,
            ))


@dataclass(frozen=True)
class RequestContext:
    """Where a request came in, for its audit row."""

    endpoint: str = "generate"
    request_id: str | None = None


class InferenceServiceGeneration:
    """Adapts the local InferenceService (stream_chat / stream_complete) to `LocalGeneration`."""

    def __init__(self, service) -> None:
        self._service = service

    def generate(self, model: str, request: GenerationRequest) -> Iterator[GenerationChunk]:
        return open_generation(self._service, model, request)


def _chat_message(message) -> ChatMessage:
    if isinstance(message, ChatMessage):
        return message
    if isinstance(message, dict) and isinstance(message.get("role"), str) and isinstance(message.get("content"), str):
        return ChatMessage(message["role"], message["content"])
    raise InvalidRequest("each message needs a string role and string content")


class RoutedInferenceService:
    """The local InferenceService's interface with backend routing and the audit log in front.

    Text generation (`stream_chat`, `stream_complete`, `chat`, `complete`) goes through the
    router; speech, transcription and embeddings run locally with an audit row each; everything
    else (resolution, pool management) is the local service's as is.
    """

    def __init__(self, local, router: InferenceRouter,
                 context: Callable[[], RequestContext] = RequestContext) -> None:
        self._local = local
        self._router = router
        self._context = context

    def __getattr__(self, name: str):
        if self._local is None:
            raise AttributeError(name)
        return getattr(self._local, name)

    def stream(self, name: str, request: GenerationRequest) -> RoutedStream:
        """Every field of the request (tools, thinking, ...) reaches the backend."""
        if request.messages:
            request = replace(request, messages=_chat_request(request.messages, request.params).messages)
        else:
            _prompt_request(request.prompt, request.params)
        return self._generate(name, request)

    def stream_chat(self, name: str, messages, params: InferenceParams | None = None) -> RoutedStream:
        return self._generate(name, _chat_request(messages, params))

    def stream_complete(self, name: str, prompt: str, params: InferenceParams | None = None) -> RoutedStream:
        return self._generate(name, _prompt_request(prompt, params))

    def chat(self, name: str, messages, params: InferenceParams | None = None) -> Completion:
        """Non-streaming: a cloud route makes one non-streaming upstream call."""
        context = self._context()
        return self._router.complete(name, _chat_request(messages, params), endpoint=context.endpoint,
                                     request_id=context.request_id)

    def complete(self, name: str, prompt: str, params: InferenceParams | None = None) -> Completion:
        context = self._context()
        return self._router.complete(name, _prompt_request(prompt, params), endpoint=context.endpoint,
                                     request_id=context.request_id)

    def speak(self, name: str, text: str, audio=None) -> bytes:
        return self._audited_local(name, "speak", text, audio)

    def transcribe(self, name: str, audio: bytes, language: str | None = None):
        return self._audited_local(name, "transcribe", audio, language)

    def embed(self, name: str, inputs, **options):
        return self._audited_local(name, "embed", inputs, **options)

    def _audited_local(self, name: str, method: str, *args, **kwargs):
        if self._local is None:
            raise Unavailable("no local runtime is configured")
        context = self._context()
        return self._router.run_local(name, lambda: getattr(self._local, method)(name, *args, **kwargs),
                                      endpoint=context.endpoint, request_id=context.request_id)

    def _generate(self, name: str, request: GenerationRequest) -> RoutedStream:
        context = self._context()
        return self._router.generate(name, request, endpoint=context.endpoint, request_id=context.request_id)


def _chat_request(messages, params: InferenceParams | None, base: GenerationRequest | None = None) -> GenerationRequest:
    messages = tuple(_chat_message(m) for m in messages)
    if not messages:
        raise InvalidRequest("messages must not be empty")
    if base is not None:
        return replace(base, params=params or InferenceParams(), messages=messages)
    return GenerationRequest(params=params or InferenceParams(), messages=messages)


def _prompt_request(prompt: str, params: InferenceParams | None, base: GenerationRequest | None = None) -> GenerationRequest:
    if not isinstance(prompt, str) or not prompt:
        raise InvalidRequest("prompt must be a non-empty string")
    if base is not None:
        return replace(base, params=params or InferenceParams(), prompt=prompt)
    return GenerationRequest(params=params or InferenceParams(), prompt=prompt)
