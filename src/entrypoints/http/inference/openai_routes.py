"""The OpenAI-compatible API (`/v1/...`), translated to the protocol-neutral internal request.

`model` may be a profile name, canonical id, alias or repo id; the inference service resolves
it and applies the cascade request > profile > system. Blocking model calls run in the
threadpool so concurrent requests are served together (the runtime batches them).
"""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from typing import Any, AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from application.errors import InvalidRequest
from application.inference.ports import ChatMessage, GenerationChunk, GenerationRequest
from domain.profiles.params import AudioDefaults, InferenceParams
from entrypoints.http.inference.openai_tools import (
    ToolCallDeltas,
    chat_message,
    chunk_deltas,
    request_thinking,
    request_tools,
    response_message,
)
from entrypoints.http.inference.streaming import (
    _sse,
    _start,
    _chunk_batches,
    _event_prefix,
    _collect,
    _event_stream,
    _stream_error,
    _inference,
)
from entrypoints.http.openapi import api_route, parse_body, validate_request
from entrypoints.http.inference.openai_schemas import (
    FINISH_REASONS,
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChunkChoice,
    ChunkDelta,
    Completion,
    CompletionChoice,
    CompletionRequest,
    EmbeddingList,
    EmbeddingObject,
    EmbeddingRequest,
    EmbeddingUsage,
    ModelList,
    ModelObject,
    SpeechRequest,
    Transcription,
    TranscriptionForm,
    TranscriptionSegment,
    Usage,
    VerboseTranscription,
)


TAGS = ("openai",)


# -- translation ----------------------------------------------------------------------
def _params(body, max_tokens: int | None) -> InferenceParams:
    if body.n is not None and body.n != 1:
        raise InvalidRequest("n: only n=1 is supported")
    stop = body.stop
    if isinstance(stop, str):
        stop = (stop,)
    return InferenceParams(
        temperature=body.temperature,
        max_tokens=max_tokens,
        top_p=body.top_p,
        top_k=body.top_k,
        min_p=body.min_p,
        repetition_penalty=body.repetition_penalty,
        seed=body.seed,
        stop=tuple(stop) if stop else None,
    )


def _refuse_unsupported(body: ChatCompletionRequest | CompletionRequest) -> None:
    """Fields a client relies on that local generation cannot honour: a 400 naming the field, never ignored."""
    if isinstance(body, CompletionRequest):
        if body.logprobs:
            raise _unsupported("logprobs", "log probabilities are not supported")
        return
    if body.response_format is not None and body.response_format.get("type", "text") != "text":
        raise _unsupported("response_format", f"type {body.response_format.get('type')!r} is not supported; "
                                              'only {"type": "text"}')
    if body.logprobs:
        raise _unsupported("logprobs", "log probabilities are not supported")
    if body.top_logprobs:
        raise _unsupported("top_logprobs", "log probabilities are not supported")


def _unsupported(field: str, message: str) -> InvalidRequest:
    error = InvalidRequest(f"{field}: {message}")
    error.field = field  # type: ignore[attr-defined] - becomes the error's `param`
    return error


def _usage(last: GenerationChunk | None) -> Usage:
    prompt = last.prompt_tokens if last else 0
    completion = last.completion_tokens if last else 0
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


# -- endpoints ------------------------------------------------------------------------
async def list_models(request: Request) -> JSONResponse:
    """Installed models and execution profiles, as OpenAI model objects."""
    container = request.app.state.container

    def collect() -> ModelList:
        data = []
        for model in container.library_service().list_models():
            if model.is_installed:
                created = int(model.downloaded_at.timestamp()) if model.downloaded_at else 0
                data.append(ModelObject(id=model.model_id, created=created, owned_by="mlxm"))
        for profile in container.profile_service().list_profiles():
            created = int(profile.created_at.timestamp()) if profile.created_at else 0
            data.append(ModelObject(id=profile.name, created=created, owned_by=f"mlxm-profile:{profile.model_id}"))
        return ModelList(data=data)

    return JSONResponse((await run_in_threadpool(collect)).model_dump())


async def retrieve_model(request: Request) -> JSONResponse:
    """One model or profile by any name it answers to (`client.models.retrieve`)."""
    container = request.app.state.container
    name = request.path_params["model"]

    def find() -> ModelObject:
        # The same resolution as inference: what a request for `name` would run (NotFound names close matches).
        target = container.inference_service().resolve(name)
        if target.profile is not None:
            profile = target.profile
            created = int(profile.created_at.timestamp()) if profile.created_at else 0
            return ModelObject(id=profile.name, created=created, owned_by=f"mlxm-profile:{profile.model_id}")
        model = target.model
        created = int(model.downloaded_at.timestamp()) if model.downloaded_at else 0
        return ModelObject(id=model.model_id, created=created, owned_by="mlxm")

    return JSONResponse((await run_in_threadpool(find)).model_dump())


async def chat_completions(request: Request) -> Response:
    """Chat completion, non-streaming or SSE (`stream: true`, `data: [DONE]`)."""
    body = await parse_body(request, ChatCompletionRequest)
    _refuse_unsupported(body)
    max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    tools, tool_choice = request_tools(body)
    internal = GenerationRequest(params=_params(body, max_tokens), messages=tuple(chat_message(m) for m in body.messages),
                                 tools=tools, tool_choice=tool_choice, enable_thinking=request_thinking(body))
    iterator, first = await _start(request, body.model, internal)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    if not body.stream:
        reasoning: list[str] = []
        calls: list = []

        def sink(chunk: GenerationChunk) -> None:
            reasoning.append(chunk.reasoning)
            calls.extend(chunk.tool_calls)

        text, last = await _collect(request, iterator, first, sink)
        response = ChatCompletion(
            id=completion_id,
            created=created,
            model=body.model,
            choices=[ChatChoice(message=AssistantMessage(content=text), finish_reason=_finish(last))],
            usage=_usage(last),
        ).model_dump()
        response["choices"][0]["message"] = response_message(text, "".join(reasoning), calls)
        return JSONResponse(response)

    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(delta: ChunkDelta, finish: str | None = None) -> str:
        payload = ChatCompletionChunk(
            id=completion_id, created=created, model=body.model, choices=[ChunkChoice(delta=delta, finish_reason=finish)]
        ).model_dump()
        # The final chunk's delta is `{}` as OpenAI sends it, not {"role": null, "content": null}.
        payload["choices"][0]["delta"] = delta.model_dump(exclude_none=True)
        if not include_usage:
            payload.pop("usage", None)
        return _sse(payload)

    # Per-token events are formatted by hand (same JSON shape as ChatCompletionChunk): they are the hot path.
    prefix = _event_prefix(completion_id, "chat.completion.chunk", created, body.model)
    suffix = ',"finish_reason":null,"logprobs":null}]' + (',"usage":null' if include_usage else "") + "}\n\n"

    def content_event(text: str) -> str:
        return f'{prefix},"choices":[{{"index":0,"delta":{{"content":{json.dumps(text)}}}{suffix}'

    calls = ToolCallDeltas()

    def events_for(piece: GenerationChunk) -> str:
        if not (piece.reasoning or piece.tool_calls):
            return content_event(piece.text) if piece.text else ""
        return "".join(chunk(ChunkDelta(**delta)) for delta in chunk_deltas(piece, calls))

    async def events() -> AsyncIterator[str]:
        yield chunk(ChunkDelta(role="assistant", content=""))
        last = first
        try:
            async for batch in _chunk_batches(iterator, first):
                last = batch[-1]
                text = "".join(events_for(piece) for piece in batch)
                if text:
                    yield text
        except Exception as exc:  # noqa: BLE001 - headers are sent: report in-band, then end the stream
            yield _stream_error(exc)
            yield "data: [DONE]\n\n"
            return
        yield chunk(ChunkDelta(), _finish(last) or "stop")
        if include_usage:
            usage_chunk = ChatCompletionChunk(
                id=completion_id, created=created, model=body.model, choices=[], usage=_usage(last)
            )
            yield _sse(usage_chunk.model_dump())
        yield "data: [DONE]\n\n"

    return _event_stream(events())


def _finish(last: GenerationChunk | None) -> str:
    """The OpenAI finish reason; one it does not document (a backend's own word) reads as "stop"."""
    reason = last.finish_reason if last is not None else None
    return reason if reason in FINISH_REASONS else "stop"


async def completions(request: Request) -> Response:
    """Legacy text completion on a raw prompt (no chat template)."""
    body = await parse_body(request, CompletionRequest)
    _refuse_unsupported(body)
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise InvalidRequest("prompt: only a single prompt is supported")
        prompt = prompt[0]
    internal = GenerationRequest(params=_params(body, body.max_tokens), prompt=prompt)
    iterator, first = await _start(request, body.model, internal)
    completion_id = f"cmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    prefix = prompt if body.echo else ""

    if not body.stream:
        text, last = await _collect(request, iterator, first)
        response = Completion(
            id=completion_id,
            created=created,
            model=body.model,
            choices=[CompletionChoice(text=prefix + text, finish_reason=_finish(last))],
            usage=_usage(last),
        )
        return JSONResponse(response.model_dump())

    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    # Per-token events by hand, the same JSON shape as Completion without usage: the hot path.
    event_prefix = _event_prefix(completion_id, "text_completion", created, body.model)

    def text_event(text: str) -> str:
        return f'{event_prefix},"choices":[{{"index":0,"text":{json.dumps(text)},"finish_reason":null,"logprobs":null}}]}}\n\n'

    async def events() -> AsyncIterator[str]:
        last = first
        if prefix:
            yield _sse(Completion(id=completion_id, created=created, model=body.model,
                                  choices=[CompletionChoice(text=prefix, finish_reason=None)]).model_dump(exclude={"usage"}))
        sent = bool(prefix)
        try:
            async for batch in _chunk_batches(iterator, first):
                last = batch[-1]
                events_text = []
                for piece in batch:
                    # The first token always makes an event (even while the detokenizer holds back partial
                    # UTF-8), so clients see generation start; later empty deltas are skipped.
                    if piece.text or not sent:
                        sent = True
                        events_text.append(text_event(piece.text))
                if events_text:
                    yield "".join(events_text)
        except Exception as exc:  # noqa: BLE001 - headers are sent: report in-band
            yield _stream_error(exc)
            yield "data: [DONE]\n\n"
            return
        yield _sse(Completion(id=completion_id, created=created, model=body.model,
                              choices=[CompletionChoice(text="", finish_reason=_finish(last))]).model_dump(exclude={"usage"}))
        if include_usage:
            yield _sse(Completion(id=completion_id, created=created, model=body.model, choices=[], usage=_usage(last)).model_dump())
        yield "data: [DONE]\n\n"

    return _event_stream(events())


async def speech(request: Request) -> Response:
    """Text to speech; answers WAV bytes."""
    body = await parse_body(request, SpeechRequest)
    audio = AudioDefaults(voice=body.voice, speed=body.speed)
    wav = await run_in_threadpool(_inference(request).speak, body.model, body.input, audio)
    return Response(wav, media_type="audio/wav")


async def transcriptions(request: Request) -> Response:
    """Speech to text from a multipart upload; `json`, `text` or `verbose_json`."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise HTTPException(400, "expected multipart/form-data with a `file` and a `model`")
    async with request.form(max_files=1, max_fields=20) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("file: an audio file upload is required")
        audio = await upload.read()
        fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
    parsed = validate_request(TranscriptionForm, {**fields, "file": audio})
    result = await run_in_threadpool(_inference(request).transcribe, parsed.model, audio, parsed.language)
    if parsed.response_format == "text":
        return PlainTextResponse(result.text)
    if parsed.response_format == "verbose_json":
        segments = [
            TranscriptionSegment(id=i, start=s.get("start"), end=s.get("end"), text=str(s.get("text", "")))
            for i, s in enumerate(result.segments)
        ]
        dto = VerboseTranscription(language=result.language, duration=result.duration, text=result.text, segments=segments)
        return JSONResponse(dto.model_dump())
    return JSONResponse(Transcription(text=result.text).model_dump())


async def embeddings(request: Request) -> JSONResponse:
    """Embeddings for one input or a list of inputs."""
    body = await parse_body(request, EmbeddingRequest)
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    if not texts or not all(texts):
        raise InvalidRequest("input: give one or more non-empty strings")
    vectors = await run_in_threadpool(_inference(request).embed, body.model, texts)
    data = []
    for index, vector in enumerate(vectors):
        if body.encoding_format == "base64":
            encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        else:
            encoded = [float(v) for v in vector]
        data.append(EmbeddingObject(index=index, embedding=encoded))
    tokens = sum(len(t.split()) for t in texts)
    dto = EmbeddingList(data=data, model=body.model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))
    return JSONResponse(dto.model_dump())


routes = [
    api_route("/v1/models", list_models, "GET", tags=TAGS, response=ModelList, error_statuses=()),
    api_route("/v1/models/{model:path}", retrieve_model, "GET", tags=TAGS, response=ModelObject, error_statuses=(404,)),
    api_route("/v1/chat/completions", chat_completions, "POST", tags=TAGS, body=ChatCompletionRequest,
              response=ChatCompletion, stream=ChatCompletionChunk),
    api_route("/v1/completions", completions, "POST", tags=TAGS, body=CompletionRequest, response=Completion,
              stream=Completion),
    api_route("/v1/audio/speech", speech, "POST", tags=TAGS, body=SpeechRequest, response_content_types=("audio/wav",)),
    api_route("/v1/audio/transcriptions", transcriptions, "POST", tags=TAGS, body=TranscriptionForm,
              body_content_type="multipart/form-data", response=VerboseTranscription,
              response_content_types=("application/json", "text/plain")),
    api_route("/v1/embeddings", embeddings, "POST", tags=TAGS, body=EmbeddingRequest, response=EmbeddingList,
              error_statuses=(400, 404, 413, 422, 501)),
]
