"""`POST /v1/messages`: the Anthropic Messages API, translated to the same internal request as `/v1/chat/...`.

So local models, profiles and cloud routes all work for Anthropic clients, with the same cascade,
fallback and audit log. Streaming sends the Messages event sequence: message_start,
content_block_start, content_block_delta..., content_block_stop, message_delta, message_stop.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, AsyncIterator, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from application.errors import InvalidRequest
from application.inference.ports import ChatMessage, GenerationChunk, GenerationRequest
from domain.profiles.params import InferenceParams
from entrypoints.errors import mapping_for
from entrypoints.http.openapi import api_route, parse_body
from entrypoints.http.inference.streaming import _chunks, _event_stream, _inference, _start

TAGS = ("anthropic",)
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


# -- DTOs -------------------------------------------------------------------------------
class TextBlock(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class AnthropicMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str | list[TextBlock]


class MessagesRequest(BaseModel):
    """The Messages API request (text content; tools and images are not supported)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    system: str | list[TextBlock] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    tools: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None


class ResponseTextBlock(BaseModel):
    type: Literal["text"] = "text"
    text: str


class MessagesUsage(BaseModel):
    input_tokens: int
    output_tokens: int


class MessageResponse(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[ResponseTextBlock]
    stop_reason: str | None
    stop_sequence: str | None = None
    usage: MessagesUsage


class MessageStreamEvent(BaseModel):
    """One server-sent event: `type` is its event name (message_start ... message_stop)."""

    model_config = ConfigDict(extra="allow")

    type: str


# -- translation ------------------------------------------------------------------------
def _text(content: str | list[TextBlock], where: str) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if block.type != "text" or block.text is None:
            raise InvalidRequest(f"{where}: content block type {block.type!r} is not supported; send text")
        parts.append(block.text)
    return "".join(parts)


def to_internal(body: MessagesRequest) -> GenerationRequest:
    """The protocol-neutral request: the system prompt becomes a leading system message."""
    if body.tools:
        raise InvalidRequest("tools are not supported on /v1/messages yet")
    messages = []
    if body.system:
        messages.append(ChatMessage("system", _text(body.system, "system")))
    messages.extend(ChatMessage(m.role, _text(m.content, f"messages.{i}.content")) for i, m in enumerate(body.messages))
    params = InferenceParams(
        temperature=body.temperature, max_tokens=body.max_tokens, top_p=body.top_p, top_k=body.top_k,
        stop=tuple(body.stop_sequences) if body.stop_sequences else None,
    )
    return GenerationRequest(params=params, messages=tuple(messages))


def _stop_reason(last: GenerationChunk | None) -> str:
    return _STOP_REASONS.get((last.finish_reason if last else None) or "stop", "end_turn")


def _event(kind: str, payload: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload}, separators=(',', ':'))}\n\n"


# -- endpoint ---------------------------------------------------------------------------
async def messages(request: Request) -> Response:
    """Anthropic-compatible Messages API, non-streaming or SSE (`stream: true`)."""
    body = await parse_body(request, MessagesRequest)
    internal = to_internal(body)
    message_id = f"msg_{uuid.uuid4().hex}"

    if not body.stream:
        # One call, non-streaming end to end: a cloud route makes a non-streaming upstream request too.
        result = await run_in_threadpool(_inference(request).chat, body.model, internal.messages, internal.params)
        dto = MessageResponse(
            id=message_id, model=body.model, content=[ResponseTextBlock(text=result.text)],
            stop_reason=_STOP_REASONS.get(result.finish_reason or "stop", "end_turn"),
            usage=MessagesUsage(input_tokens=result.prompt_tokens, output_tokens=result.completion_tokens),
        )
        return JSONResponse(dto.model_dump())

    iterator, first = await _start(request, body.model, internal)

    async def events() -> AsyncIterator[str]:
        yield _event("message_start", {"message": {
            "id": message_id, "type": "message", "role": "assistant", "model": body.model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": first.prompt_tokens if first else 0, "output_tokens": 0},
        }})
        yield _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        last = first
        try:
            async for chunk in _chunks(iterator, first):
                last = chunk
                if chunk.text:
                    yield _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": chunk.text}})
        except Exception as exc:  # noqa: BLE001 - headers are sent: report in-band, as Anthropic does
            mapping = mapping_for(exc)
            yield _event("error", {"error": {"type": mapping.type if mapping else "api_error",
                                             "message": str(exc) if mapping else "internal server error"}})
            return
        yield _event("content_block_stop", {"index": 0})
        yield _event("message_delta", {"delta": {"stop_reason": _stop_reason(last), "stop_sequence": None},
                                       # Final counts: a cloud stream reports its prompt tokens only at the end.
                                       "usage": {"input_tokens": last.prompt_tokens if last else 0,
                                                 "output_tokens": last.completion_tokens if last else 0}})
        yield _event("message_stop", {})

    return _event_stream(events())


routes = [
    api_route("/v1/messages", messages, "POST", tags=TAGS, body=MessagesRequest, response=MessageResponse,
              stream=MessageStreamEvent),
]
