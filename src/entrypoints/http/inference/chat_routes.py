"""`/api/chat`: chat through a profile (`profile_id`) or a model, with `overrides`."""

from __future__ import annotations

import json
from typing import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from application.errors import InvalidRequest
from application.inference.ports import ChatMessage, GenerationRequest
from domain.profiles.params import InferenceParams, params_from_mapping
from entrypoints.http.inference.openai_generation import constraint_from
from entrypoints.http.inference.images import api_chat_image
from entrypoints.http.openapi import api_route, parse_body
from entrypoints.http.inference.streaming import _chunks, _collect, _event_stream, _start, _stream_error
from entrypoints.http.inference.chat_schemas import (
    ChatMessageDTO,
    ChatRequest,
    ChatResponse,
    ChatStreamEvent,
    ChatUsageDTO,
)

TAGS = ("chat",)


def _usage(last) -> ChatUsageDTO:
    prompt = last.prompt_tokens if last else 0
    completion = last.completion_tokens if last else 0
    return ChatUsageDTO(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                        cached_tokens=last.cached_tokens if last else 0,
                        reasoning_tokens=last.reasoning_tokens if last else 0)


async def chat(request: Request) -> Response:
    """One chat turn; `stream: true` answers server-sent ChatStreamEvents."""
    body = await parse_body(request, ChatRequest)
    container = request.app.state.container
    profile_name = None
    if body.profile_id is not None:
        profile = await run_in_threadpool(container.profile_service().get, body.profile_id)
        profile_name = profile.name
        target = profile.name
    else:
        target = body.model or "default"  # neither: the selected model (`mlxm select`)
    overrides = body.overrides.model_dump(exclude_none=True) if body.overrides else {}
    if "stop" in overrides:
        overrides["stop"] = tuple(overrides["stop"])
    params = params_from_mapping(InferenceParams, overrides)
    internal = GenerationRequest(
        params=params, messages=tuple(
            ChatMessage(role=m.role, content=m.content,
                        images=tuple(api_chat_image(v, f"messages.{i}.images") for v in m.images or ()))
            for i, m in enumerate(body.messages)),
        enable_thinking=body.enable_thinking,
        constraint=constraint_from(body.response_format),
    )
    iterator, first = await _start(request, target, internal)

    if not body.stream:
        reasoning: list[str] = []
        text, last = await _collect(request, iterator, first, lambda chunk: reasoning.append(chunk.reasoning))
        dto = ChatResponse(
            model=target,
            profile=profile_name,
            message=ChatMessageDTO(role="assistant", content=text, reasoning="".join(reasoning) or None),
            finish_reason=(last.finish_reason if last else None) or "stop",
            usage=_usage(last),
        )
        return JSONResponse(dto.model_dump())

    async def events() -> AsyncIterator[str]:
        last = first
        try:
            async for chunk in _chunks(iterator, first):
                last = chunk
                if chunk.text or chunk.reasoning:
                    event = ChatStreamEvent(delta=chunk.text, reasoning_delta=chunk.reasoning)
                    yield f"data: {event.model_dump_json()}\n\n"
        except Exception as exc:  # noqa: BLE001 - in-band error once streaming started
            yield _stream_error(exc)
            return
        final = ChatStreamEvent(finish_reason=(last.finish_reason if last else None) or "stop", usage=_usage(last))
        yield f"data: {final.model_dump_json()}\n\n"
        yield "data: [DONE]\n\n"

    return _event_stream(events())


routes = [
    api_route("/api/chat", chat, "POST", tags=TAGS, body=ChatRequest, response=ChatResponse, stream=ChatStreamEvent),
]
