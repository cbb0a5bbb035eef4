"""The OpenAI-compatible API (`/v1/...`), translated to the protocol-neutral internal request.

`model` may be a profile name, canonical id, alias or repo id; the inference service resolves
it and applies the cascade request > profile > system. Blocking model calls run in the
threadpool so concurrent requests are served together (the runtime batches them).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from application.errors import InvalidRequest
from domain.profiles.params import AudioDefaults
from entrypoints.http.inference.openai_generation import chat_completions, completions
from entrypoints.http.inference.streaming import _inference
from entrypoints.http.openapi import api_route, parse_body, validate_request
from entrypoints.http.inference.openai_schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    ModelList,
    ModelObject,
    SpeechRequest,
    Transcription,
    TranscriptionForm,
    TranscriptionSegment,
    VerboseTranscription,
)


TAGS = ("openai",)


# -- translation ----------------------------------------------------------------------
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
]
