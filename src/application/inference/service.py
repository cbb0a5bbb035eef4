"""Inference use cases: resolve a name, lease the model from the pool, run it with the cascade.

A name may be a profile name, a model id / canonical ID, an alias or a repo id. Parameters
resolve field by field: request over profile over the server's `MLX_SERVER_*` defaults
(`domain.profiles.params.cascade`), so a request's `temperature=0` beats a profile's 0.7.

Frontends call (all protocol-neutral):

    service.stream(name, GenerationRequest)          -> InferenceStream (every request field)
    service.stream_chat(name, messages, params)      -> InferenceStream of GenerationChunk
    service.chat(name, messages, params)             -> Completion
    service.stream_complete(name, prompt, params)    -> InferenceStream
    service.complete(name, prompt, params)           -> Completion
    service.speak(name, text, audio=AudioDefaults)   -> bytes (WAV)
    service.transcribe(name, audio_bytes, language)  -> Transcription
    service.embed(name, inputs, dimensions, truncate) -> EmbeddingResult (vectors + real token count)
    service.resolve(name)                            -> Target (model + profile)
    service.preload_auto_start()                     -> ids pinned in the pool

Errors: `NotFound` (unknown name, with suggestions), `NotInstalled` (known, not on disk),
`InvalidRequest` (the model's type does not fit the call), `Unavailable` (pool full).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

from application.errors import InvalidRequest, NotFound, NotInstalled
from application.inference.images import ImageResolver, image_count
from application.inference.pool import Lease, ModelPool
from application.inference.inputs import _embedding_inputs, _message
from application.inference.streams import Completion, InferenceStream, Target, collect as _collect, open_generation
from application.catalog.ports import CatalogProvider
from application.ports import Clock
from application.ports import UnitOfWork
from application.inference.ports import (
    ChatMessage,
    EmbeddingRequest,
    EmbeddingResult,
    GenerationRequest,
    ModelRuntime,
    Transcription,
)
from domain.enums import ModelType
from domain.library.models import Model
from domain.profiles.params import SYSTEM_INFERENCE_DEFAULTS, AudioDefaults, InferenceParams, cascade

TEXT_TYPES = (ModelType.TEXT_GEN, ModelType.VISION)
# `last_used_at` is written at most this often per model: a database write per request would
# sit on every request's time to first token.
LAST_USED_WRITE_INTERVAL_SECONDS = 10.0


# The model name that means "the selected model" (unless a profile is called that).
DEFAULT_MODEL_NAME = "default"


class InferenceService:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        catalog: CatalogProvider,
        pool: ModelPool,
        runtime: ModelRuntime,
        clock: Clock,
        system_params: InferenceParams = SYSTEM_INFERENCE_DEFAULTS,
        system_audio: AudioDefaults | None = None,
        images: ImageResolver | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._catalog = catalog
        self._pool = pool
        self._runtime = runtime
        self._clock = clock
        self.system_params = system_params
        self.system_audio = system_audio or AudioDefaults()
        self._last_use_written: dict[str, float] = {}
        self._images = images or ImageResolver()

    # ------------------------------------------------------------------ resolution

    def resolve(self, name: str | None) -> Target:
        """Profile name, model id, canonical ID, alias or repo id -> an installed model; None or `default`: the selection."""
        if name is not None and not str(name).strip():
            raise InvalidRequest("a model name is required")
        name = str(name).strip() if name is not None else DEFAULT_MODEL_NAME
        with self._uow_factory() as uow:
            profile = uow.profiles.get(name)
            if profile is None and name.lower() == DEFAULT_MODEL_NAME:
                name = self._selected_model()
            if profile is not None:
                if not profile.model_id:
                    raise InvalidRequest(f"profile {name!r} names no model")
                model = uow.models.find(profile.model_id)
                if model is None:
                    raise NotInstalled(f"profile {name!r} uses {profile.model_id!r}, which is not installed")
                return Target(self._installed(model, name), profile)
            model = uow.models.find(name)
            if model is None:
                entry = self._catalog.load_catalog().find(name)
                if entry is not None:
                    model = uow.models.find(entry.id)
                    if model is None:
                        for repo_id in entry.repo_ids:
                            model = uow.models.find(repo_id)
                            if model is not None:
                                break
                    if model is None:
                        raise NotInstalled(f"{name!r} ({entry.id}) is not installed; run `mlxm pull {entry.id}`")
            if model is None:
                raise NotFound(f"unknown model or profile {name!r}", self._suggestions(uow, name))
            return Target(self._installed(model, name))

    def _selected_model(self) -> str:
        """`default` (or no name) is the selected model (`mlxm select`), normalised as selection always is."""
        from application.catalog.selection import SelectionService

        selected = SelectionService(self._uow_factory, self._catalog).current().model_id
        if not selected:
            raise InvalidRequest("no model named and none selected: name one, or choose a default with `mlxm select NAME`")
        return selected

    @staticmethod
    def _installed(model: Model, name: str) -> Model:
        if not model.is_installed:
            raise NotInstalled(f"{name!r} is not installed (status: {model.status.value})")
        return model

    def _suggestions(self, uow: UnitOfWork, name: str) -> list[str]:
        import difflib

        names = [m.model_id for m in uow.models.list()] + [p.name for p in uow.profiles.list()]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        if len(close) < 3:
            close += [s for s in self._catalog.load_catalog().suggestions(name) if s not in close]
        return close[:3]

    # ------------------------------------------------------------------ text

    def resolve_params(self, target: Target, request: InferenceParams | None) -> InferenceParams:
        profile = target.profile.inference if target.profile is not None else None
        return cascade(request, profile, self.system_params)

    def stream(self, name: str, request: GenerationRequest) -> InferenceStream:
        """Stream a chat (`request.messages`) or raw-prompt answer, with every field of the request
        (tools, thinking, ...). Resolution and loading happen now; errors raise here."""
        return self._open(name, request)

    def stream_chat(
        self, name: str, messages: Sequence[ChatMessage | dict], params: InferenceParams | None = None,
        *, request: GenerationRequest | None = None,
    ) -> InferenceStream:
        """Stream a chat answer. Resolution and loading happen now; errors raise here."""
        base = request if request is not None else GenerationRequest(params=params or InferenceParams())
        return self.stream(name, replace(base, params=params or base.params,
                                         messages=tuple(_message(m) for m in messages), prompt=None))

    @staticmethod
    def _require_images(target: Target, count: int) -> None:
        """Images need a vision model; the probe's findings (multi-image) decide the rest."""
        model_type = _model_type(target.model)
        if model_type is not ModelType.VISION:
            raise InvalidRequest(f"{target.name!r} is {_with_article(model_type.value)} model; images need a vision model")
        capabilities = target.model.capabilities
        if count > 1 and getattr(capabilities, "supports_multi_image", None) is False:
            raise InvalidRequest(f"{target.name!r} takes one image per request (probed); this request has {count}")

    def stream_complete(
        self, name: str, prompt: str, params: InferenceParams | None = None, *, request: GenerationRequest | None = None
    ) -> InferenceStream:
        base = request if request is not None else GenerationRequest(params=params or InferenceParams())
        return self.stream(name, replace(base, params=params or base.params, prompt=prompt, messages=()))

    def _open(self, name: str, request: GenerationRequest) -> InferenceStream:
        """`stream` with every option the request carries (tools, thinking, constraint, n, ...);
        its params are the request layer of the cascade."""
        if request.messages:
            messages = tuple(_message(m) for m in request.messages)
            if not messages:
                raise InvalidRequest("messages must not be empty")
            target = self.resolve(name)
            if image_count(messages):
                self._require_images(target, image_count(messages))
                messages = self._images.resolve_messages(messages)  # remote URLs: fetched here, if allowed
            request = replace(request, messages=self._with_system_prompt(target, messages), prompt=None)
        else:
            if not isinstance(request.prompt, str) or not request.prompt:
                raise InvalidRequest("prompt must be a non-empty string")
            target = self.resolve(name)
        return self._stream(target, request)

    def count_tokens(self, name: str, request: GenerationRequest) -> int:
        """The prompt's size in tokens for the model `name` resolves to, as generation would see it
        (the profile's system prompt and thinking switch included). Loads the model for its tokenizer."""
        target = self.resolve(name)
        self._require(target, TEXT_TYPES, "token counting")
        fields: dict = {}
        if request.messages:
            fields["messages"] = self._with_system_prompt(target, tuple(_message(m) for m in request.messages))
        thinking = request.enable_thinking
        if thinking is None and target.profile is not None:
            thinking = target.profile.context.enable_thinking
        with self._lease(target) as lease:
            return self._runtime.count_tokens(lease.model, replace(request, enable_thinking=thinking, **fields))

    def chat(self, name: str, messages: Sequence[ChatMessage | dict], params: InferenceParams | None = None) -> Completion:
        return _collect(self.stream_chat(name, messages, params))

    def complete(self, name: str, prompt: str, params: InferenceParams | None = None) -> Completion:
        return _collect(self.stream_complete(name, prompt, params))

    def _stream(self, target: Target, request: GenerationRequest) -> InferenceStream:
        self._require(target, TEXT_TYPES, "text generation")
        resolved = self.resolve_params(target, request.params)
        profile = target.profile
        thinking = request.enable_thinking
        if thinking is None and profile is not None:
            thinking = profile.context.enable_thinking  # request > profile > the template's default
        requested_max = request.params.max_tokens is not None or (
            profile is not None and profile.inference.max_tokens is not None)
        constraint = request.constraint
        if constraint is None and profile is not None and not request.tools:
            constraint = profile.context.response_format  # the profile's structured output, unless the request has its own
        request = replace(
            request, params=resolved, enable_thinking=thinking, max_tokens_requested=requested_max, constraint=constraint,
            context_length=request.context_length or (profile.context.context_length if profile is not None else None),
        )
        lease = self._lease(target)
        try:
            chunks = self._runtime.generate(lease.model, request)
        except BaseException:
            lease.release()
            raise
        return InferenceStream(iter(chunks), lease, target, resolved)

    @staticmethod
    def _with_system_prompt(target: Target, messages: tuple[ChatMessage, ...]) -> tuple[ChatMessage, ...]:
        """The profile's system prompt applies when the request brings none."""
        if target.profile is None or not target.profile.context.system_prompt:
            return messages
        if any(m.role == "system" for m in messages):
            return messages
        return (ChatMessage("system", target.profile.context.system_prompt), *messages)

    # ------------------------------------------------------------------ audio / embeddings

    def resolve_audio(self, target: Target, request: AudioDefaults | None) -> AudioDefaults:
        profile = target.profile.audio if target.profile is not None else None
        return cascade(request, profile, self.system_audio)

    def speak(self, name: str, text: str, audio: AudioDefaults | None = None) -> bytes:
        """Text to WAV bytes with the voice and speed from request > profile > defaults."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequest("input text must not be empty")
        target = self.resolve(name)
        self._require(target, (ModelType.AUDIO,), "speech synthesis", capability="supports_tts")
        resolved = self.resolve_audio(target, audio)
        with self._lease(target) as lease:
            return self._runtime.synthesize(lease.model, text, resolved)

    def transcribe(self, name: str, audio: bytes, language: str | None = None) -> Transcription:
        if not audio:
            raise InvalidRequest("the audio file is empty")
        target = self.resolve(name)
        self._require(target, (ModelType.AUDIO,), "transcription", capability="supports_stt")
        if language is None:
            language = self.resolve_audio(target, None).stt_language
        with self._lease(target) as lease:
            return self._runtime.transcribe(lease.model, audio, language)

    def embed(self, name: str, inputs, *, dimensions: int | None = None, truncate: bool = False) -> EmbeddingResult:
        """Embed a string, a list of strings, a token array or a list of token arrays."""
        request = EmbeddingRequest(_embedding_inputs(inputs), dimensions=dimensions, truncate=truncate)
        if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
            raise InvalidRequest("dimensions: must be a positive integer")
        target = self.resolve(name)
        self._require(target, (ModelType.EMBEDDINGS,), "embeddings")
        with self._lease(target) as lease:
            return self._runtime.embed(lease.model, request)

    # ------------------------------------------------------------------ pool

    def preload_auto_start(self, on_error: Callable[[str, Exception], None] | None = None) -> list[str]:
        """Load and pin the models of every `auto_start` profile (server start-up).

        With `on_error`, a profile that fails is reported as (profile name, error) and the others
        still load (a broken profile must not stop the server); without it, the first error raises.
        """
        with self._uow_factory() as uow:
            names = [p.name for p in uow.profiles.list() if p.auto_start]
        loaded = []
        for name in names:
            try:
                target = self.resolve(name)
                model = target.model
                self._pool.preload([(model.model_id, Path(model.local_path), _model_type(model))])  # type: ignore[arg-type]
                self._warm_system_prompt(target)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(name, exc)
                continue
            loaded.append(model.model_id)
        return loaded

    def _warm_system_prompt(self, target: Target) -> int:
        """Prefill the profile's system prompt into the model's prompt cache: its first request
        starts from it instead of prefilling it. Returns the tokens warmed (0: nothing to warm)."""
        profile = target.profile
        if profile is None or not profile.context.system_prompt or _model_type(target.model) not in TEXT_TYPES:
            return 0
        warm = getattr(self._runtime, "warm", None)
        if warm is None:
            return 0
        request = GenerationRequest(params=self.resolve_params(target, None),
                                    messages=(ChatMessage("system", profile.context.system_prompt),),
                                    enable_thinking=profile.context.enable_thinking)
        with self._lease(target) as lease:
            return warm(lease.model, request)

    def load(self, name: str) -> str:
        """Load the model `name` resolves to (profile or any model name) into the pool; its model id.

        It stays loaded for the next request, until the pool evicts or unloads it.
        """
        target = self.resolve(name)
        self._lease(target, keep=True).release()  # keep: cancels an unload waiting for running requests
        return target.model.model_id

    def unload(self, name: str) -> tuple[str, bool]:
        """Unload the model `name` resolves to: (model id, unloaded now). False: it goes when its requests end."""
        try:
            model_id = self.resolve(name).model.model_id
        except (NotFound, InvalidRequest):  # a loaded model may already be gone from the library
            model_id = name
        return model_id, self._pool.unload(model_id)

    def _lease(self, target: Target, *, keep: bool = False) -> Lease:
        model = target.model
        lease = self._pool.acquire(
            model.model_id, Path(model.local_path), _model_type(model), size_hint=model.size_bytes,  # type: ignore[arg-type]
            keep=keep,
        )
        try:
            self._record_use(model.model_id)
        except BaseException:
            lease.release()  # never leave a model pinned by a request that did not start
            raise
        return lease

    def _record_use(self, model_id: str) -> None:
        now = self._clock.monotonic()
        last = self._last_use_written.get(model_id)
        if last is not None and now - last < LAST_USED_WRITE_INTERVAL_SECONDS:
            return
        self._last_use_written[model_id] = now
        with self._uow_factory() as uow:
            model = uow.models.get(model_id)
            if model is None:
                return
            model.last_used_at = self._clock.now()
            uow.models.add(model)
            uow.commit()

    @staticmethod
    def _require(target: Target, types: Iterable[ModelType], call: str, capability: str | None = None) -> None:
        types = tuple(types)
        model_type = _model_type(target.model)
        if model_type not in types:
            wanted = " or ".join(_with_article(t.value) for t in types)
            raise InvalidRequest(
                f"{target.name!r} is {_with_article(model_type.value)} model; {call} needs {wanted} model"
            )
        capabilities = target.model.capabilities
        if capability and capabilities is not None and getattr(capabilities, capability, None) is False:
            raise InvalidRequest(f"{target.name!r} does not support {call}")


def _with_article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _model_type(model: Model) -> ModelType:
    return ModelType(model.model_type) if model.model_type is not None else ModelType.TEXT_GEN


__all__ = ["Completion", "InferenceService", "InferenceStream", "Target", "open_generation"]
