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
from entrypoints.http.inference.anthropic_tools import (
    BlockStream,
    chat_messages,
    request_thinking,
    request_tools,
    response_blocks,
    stop_reason,
)
from entrypoints.http.inference.streaming import _chunks, _collect, _event_stream, _inference, _start

TAGS = ("anthropic",)


# -- DTOs -------------------------------------------------------------------------------
class TextBlock(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class AnthropicMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str | list[TextBlock] = Field(description="Text, or blocks: text, tool_use, tool_result, thinking")


class MessagesRequest(BaseModel):
    """The Messages API request (text, images, tools and thinking)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(default="default", min_length=1)  # `default`: the selected model (`mlxm select`)
    messages: list[AnthropicMessage] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    system: str | list[TextBlock] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class CountTokensRequest(BaseModel):
    """`/v1/messages/count_tokens`: a Messages request without `max_tokens`."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(default="default", min_length=1)  # `default`: the selected model (`mlxm select`)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None


class TokenCount(BaseModel):
    input_tokens: int


class ResponseTextBlock(BaseModel):
    model_config = ConfigDict(extra="allow")  # thinking / tool_use blocks carry their own fields

    type: str = "text"
    text: str | None = None


class MessagesUsage(BaseModel):
    # As Anthropic counts: input_tokens excludes the prompt tokens read from the (prompt) cache.
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


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


def to_internal(body: MessagesRequest | CountTokensRequest) -> GenerationRequest:
    """The protocol-neutral request: the system prompt becomes a leading system message, tool_result
    blocks `tool` messages, tool_use blocks the assistant's tool calls."""
    tools, tool_choice = request_tools(body.tools, body.tool_choice)
    messages = []
    if body.system:
        messages.append(ChatMessage("system", _text(body.system, "system")))
    for i, m in enumerate(body.messages):
        messages.extend(chat_messages(m.role, m.content, f"messages.{i}.content"))
    if isinstance(body, MessagesRequest):
        params = InferenceParams(
            temperature=body.temperature, max_tokens=body.max_tokens, top_p=body.top_p, top_k=body.top_k,
            stop=tuple(body.stop_sequences) if body.stop_sequences else None,
        )
    else:
        params = InferenceParams()
    parallel = not (body.tool_choice or {}).get("disable_parallel_tool_use", False)
    return GenerationRequest(params=params, messages=tuple(messages), tools=tools, tool_choice=tool_choice,
                             parallel_tool_calls=parallel,
                             enable_thinking=request_thinking(body.thinking))


def _stop_reason(last: GenerationChunk | None) -> str:
    return stop_reason(last.finish_reason if last else None)


def _usage(chunk: GenerationChunk | None, output: bool = True) -> dict[str, int]:
    prompt = chunk.prompt_tokens if chunk else 0
    cached = chunk.cached_tokens if chunk else 0
    return {"input_tokens": prompt - cached, "output_tokens": chunk.completion_tokens if chunk and output else 0,
            "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}


def _event(kind: str, payload: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload}, separators=(',', ':'))}\n\n"


# -- endpoint ---------------------------------------------------------------------------
async def messages(request: Request) -> Response:
    """Anthropic-compatible Messages API, non-streaming or SSE (`stream: true`)."""
    body = await parse_body(request, MessagesRequest)
    internal = to_internal(body)
    message_id = f"msg_{uuid.uuid4().hex}"

    if not body.stream and not (internal.tools or body.thinking):
        # One call, non-streaming end to end: a cloud route makes a non-streaming upstream request too.
        result = await run_in_threadpool(_inference(request).chat, body.model, internal.messages, internal.params)
        dto = MessageResponse(
            id=message_id, model=body.model, content=[],
            stop_reason=stop_reason(result.finish_reason),
            usage=MessagesUsage(input_tokens=result.prompt_tokens - result.cached_tokens,
                                output_tokens=result.completion_tokens, cache_read_input_tokens=result.cached_tokens),
        ).model_dump()
        dto["content"] = response_blocks(result.text, getattr(result, "reasoning", ""), [])
        return JSONResponse(dto)

    iterator, first = await _start(request, body.model, internal)
    if not body.stream:
        # Tools or thinking: the full request (tools, the thinking switch) goes through the stream.
        reasoning: list[str] = []
        calls: list = []

        def sink(chunk: GenerationChunk) -> None:
            reasoning.append(chunk.reasoning)
            calls.extend(chunk.tool_calls)

        text, last = await _collect(request, iterator, first, sink)
        dto = MessageResponse(
            id=message_id, model=body.model, content=[], stop_reason=_stop_reason(last),
            usage=MessagesUsage(**_usage(last)),
        ).model_dump()
        dto["content"] = response_blocks(text, "".join(reasoning), calls)
        return JSONResponse(dto)

    async def events() -> AsyncIterator[str]:
        yield _event("message_start", {"message": {
            "id": message_id, "type": "message", "role": "assistant", "model": body.model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": _usage(first, output=False),
        }})
        blocks = BlockStream(_event)
        last = first
        try:
            async for chunk in _chunks(iterator, first):
                last = chunk
                events = blocks.chunk(chunk)
                if events:
                    yield events
        except Exception as exc:  # noqa: BLE001 - headers are sent: report in-band, as Anthropic does
            mapping = mapping_for(exc)
            yield _event("error", {"error": {"type": mapping.type if mapping else "api_error",
                                             "message": str(exc) if mapping else "internal server error"}})
            return
        yield blocks.finish()
        yield _event("message_delta", {"delta": {"stop_reason": _stop_reason(last), "stop_sequence": None},
                                       # Final counts: a cloud stream reports its prompt tokens only at the end.
                                       "usage": _usage(last)})
        yield _event("message_stop", {})

    return _event_stream(events())


async def count_tokens(request: Request) -> Response:
    """The prompt's token count as the model sees it (chat template, tools and all), without generating."""
    body = await parse_body(request, CountTokensRequest)
    internal = to_internal(body)
    count = await run_in_threadpool(_inference(request).count_tokens, body.model, internal)
    return JSONResponse(TokenCount(input_tokens=count).model_dump())


routes = [
    api_route("/v1/messages", messages, "POST", tags=TAGS, body=MessagesRequest, response=MessageResponse,
              stream=MessageStreamEvent),
    api_route("/v1/messages/count_tokens", count_tokens, "POST", tags=TAGS, body=CountTokensRequest,
              response=TokenCount),
]
