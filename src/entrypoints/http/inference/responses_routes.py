"""`POST /v1/responses`: the OpenAI Responses API (what Codex and the Agents SDK speak), stateless.

In: `input` as text or items (messages, `function_call`, `function_call_output`), `instructions`,
function `tools` and `tool_choice`, `reasoning.effort` ("none" switches thinking off). Out: output
items in order, `reasoning` (the model's thinking as `reasoning_text` content), `message`
(`output_text`) and `function_call`; streamed as the Responses event sequence: response.created,
response.in_progress, then per item response.output_item.added, its deltas
(response.reasoning_text.delta, response.output_text.delta, response.function_call_arguments.delta),
their .done events and response.output_item.done; then response.completed (or response.incomplete
at max_output_tokens). Nothing is stored: `previous_response_id` is refused, so clients send the
whole conversation, as Codex does with `store: false`.
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from application.errors import InvalidRequest
from application.inference.ports import ChatMessage, GenerationChunk, GenerationRequest, ToolCall
from domain.profiles.params import InferenceParams
from entrypoints.http.openapi import api_route, parse_body
from entrypoints.http.inference.streaming import _chunks, _collect, _event_stream, _start
from entrypoints.http.inference.openai_generation import constraint_from
from entrypoints.http.inference.openai_schemas import FunctionDefinition
from entrypoints.http.inference.responses_output import EventWriter, final_output, new_id, usage

TAGS = ("openai",)


# -- DTOs -------------------------------------------------------------------------------------
class ResponsesRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] = Field(description="Text, or items: message, function_call, function_call_output")
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    reasoning: dict[str, Any] | None = None
    text: dict[str, Any] | None = Field(default=None, description='{"format": {"type": "text" | "json_object" | '
                                                                  '"json_schema", "schema": {...}}}')
    stream: bool = False
    store: bool | None = None
    previous_response_id: str | None = None
    metadata: dict[str, Any] | None = None


class ResponseObject(BaseModel):
    """The Response object (`object: "response"`); `output` holds message, reasoning and function_call items."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: str
    model: str
    output: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class ResponseStreamEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    sequence_number: int


# -- request translation ------------------------------------------------------------------------
def _error(field: str, message: str) -> InvalidRequest:
    error = InvalidRequest(f"{field}: {message}")
    error.field = field  # type: ignore[attr-defined]
    return error


def _tools(body: ResponsesRequest) -> tuple[tuple[dict, ...], str | dict | None]:
    tools = []
    for index, tool in enumerate(body.tools or ()):
        if tool.get("type") != "function":
            raise _error(f"tools.{index}.type", f"{tool.get('type')!r} is not supported; only function tools")
        try:
            function = FunctionDefinition.model_validate({k: v for k, v in tool.items() if k != "type"})
        except ValueError as exc:
            raise _error(f"tools.{index}", f"not a valid function tool: {exc.errors()[0]['msg']}") from None  # type: ignore[attr-defined]
        tools.append({"type": "function", "function": function.model_dump(exclude_none=True)})
    names = [t["function"]["name"] for t in tools]
    if len(set(names)) != len(names):
        raise _error("tools", "two tools have the same name")
    choice = body.tool_choice
    if isinstance(choice, dict):
        if choice.get("type") != "function" or choice.get("name") not in names:
            raise _error("tool_choice", f"names the function {choice.get('name')!r}, which is not among the tools")
        choice = {"type": "function", "function": {"name": choice["name"]}}
    elif choice == "required" and not tools:
        raise _error("tool_choice", '"required" needs at least one tool')
    return tuple(tools), (choice if tools else None)


def _text_of(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: must be text or a list of text parts")
    parts = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("input_text", "output_text", "text") or not isinstance(part.get("text"), str):
            raise InvalidRequest(f"{where}.{index}: content type {kind!r} is not supported; send text")
        parts.append(part["text"])
    return "".join(parts)


def to_messages(body: ResponsesRequest) -> list[ChatMessage]:
    """Input items as chat messages; consecutive function_call items are one assistant turn's calls."""
    messages: list[ChatMessage] = []
    if body.instructions:
        messages.append(ChatMessage("system", body.instructions))
    if isinstance(body.input, str):
        messages.append(ChatMessage("user", body.input))
        return messages
    for index, item in enumerate(body.input):
        where = f"input.{index}"
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise InvalidRequest(f"{where}.role: {role!r} is not a message role")
            messages.append(ChatMessage("system" if role == "developer" else role,
                                        _text_of(item.get("content"), f"{where}.content")))
        elif kind == "function_call":
            if not isinstance(item.get("name"), str) or not isinstance(item.get("call_id"), str):
                raise InvalidRequest(f"{where}: a function_call needs a name and a call_id")
            call = ToolCall(item["call_id"], item["name"], item.get("arguments") or "{}")
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant" and last.tool_calls and not last.content:
                messages[-1] = ChatMessage("assistant", "", tool_calls=(*last.tool_calls, call))
            else:
                messages.append(ChatMessage("assistant", "", tool_calls=(call,)))
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise InvalidRequest(f"{where}: a function_call_output needs the call_id it answers")
            output = item.get("output")
            text = output if isinstance(output, str) else _text_of(output, f"{where}.output")
            messages.append(ChatMessage("tool", text, tool_call_id=item["call_id"]))
        elif kind == "reasoning":
            continue  # earlier turns' thinking: chat templates drop it, and a local model has no encrypted form
        else:
            raise InvalidRequest(f"{where}.type: {kind!r} is not supported; send message, function_call "
                                 "or function_call_output items")
    if not messages:
        raise InvalidRequest("input: give at least one message")
    return _one_leading_system(messages)


def _one_leading_system(messages: list[ChatMessage]) -> list[ChatMessage]:
    """`instructions` plus leading developer/system items as ONE system message (Codex sends both): many chat
    templates accept a system message only first, and only one."""
    count = 0
    while count < len(messages) and messages[count].role == "system":
        count += 1
    if count < 2:
        return messages
    merged = ChatMessage("system", "\n\n".join(m.content for m in messages[:count] if m.content))
    return [merged, *messages[count:]]


def to_internal(body: ResponsesRequest) -> GenerationRequest:
    if body.previous_response_id:
        raise _error("previous_response_id", "responses are not stored here; send the whole conversation as input")
    tools, choice = _tools(body)
    fmt = (body.text or {}).get("format") or {"type": "text"}
    if not isinstance(fmt, dict):
        raise _error("text.format", "must be an object")
    # The Responses API's flat json_schema format, read by the same code as chat's response_format.
    response_format = fmt if fmt.get("type") != "json_schema" else {"type": "json_schema", "json_schema": fmt}
    constraint = constraint_from(response_format)
    effort = (body.reasoning or {}).get("effort")
    params = InferenceParams(temperature=body.temperature, top_p=body.top_p, max_tokens=body.max_output_tokens)
    return GenerationRequest(params=params, messages=tuple(to_messages(body)), tools=tools, tool_choice=choice,
                             parallel_tool_calls=body.parallel_tool_calls is not False, constraint=constraint,
                             enable_thinking=None if effort is None else effort != "none")


# -- output ---------------------------------------------------------------------------------------
class _Envelope:
    """The Response object's fixed fields, shared by every lifecycle event and the final answer."""

    def __init__(self, body: ResponsesRequest, internal: GenerationRequest) -> None:
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self._body = body
        self._internal = internal

    def response(self, status: str, output: list[dict], last: GenerationChunk | None = None,
                 incomplete: bool = False) -> dict:
        body = self._body
        return {
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "model": body.model, "output": output, "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": body.instructions, "max_output_tokens": body.max_output_tokens,
            "parallel_tool_calls": body.parallel_tool_calls if body.parallel_tool_calls is not None else True,
            "previous_response_id": None, "reasoning": body.reasoning or {"effort": None, "summary": None},
            "store": False, "temperature": body.temperature, "top_p": body.top_p,
            "text": body.text or {"format": {"type": "text"}}, "tool_choice": body.tool_choice or "auto",
            "tools": body.tools or [], "truncation": "disabled", "metadata": body.metadata or {},
            "usage": usage(last) if status != "in_progress" else None,
        }


# -- endpoint -------------------------------------------------------------------------------------
async def responses(request: Request) -> Response:
    """Create a model response, non-streaming or as the Responses event stream (`stream: true`)."""
    body = await parse_body(request, ResponsesRequest)
    internal = to_internal(body)
    envelope = _Envelope(body, internal)
    iterator, first = await _start(request, body.model, internal)

    if not body.stream:
        reasoning: list[str] = []
        calls: list[ToolCall] = []

        def sink(chunk: GenerationChunk) -> None:
            reasoning.append(chunk.reasoning)
            calls.extend(chunk.tool_calls)

        text, last = await _collect(request, iterator, first, sink)
        incomplete = last is not None and last.finish_reason == "length"
        output = final_output(text, "".join(reasoning), calls)
        return JSONResponse(envelope.response("incomplete" if incomplete else "completed", output, last, incomplete))

    writer = EventWriter(envelope)

    async def events() -> AsyncIterator[str]:
        yield writer.event("response.created", {"response": envelope.response("in_progress", [])})
        yield writer.event("response.in_progress", {"response": envelope.response("in_progress", [])})
        last = first
        try:
            async for chunk in _chunks(iterator, first):
                last = chunk
                out = ""
                if chunk.reasoning:
                    out += writer.reasoning(chunk.reasoning)
                if chunk.text:
                    out += writer.text(chunk.text)
                for call in chunk.tool_calls:
                    out += writer.call(call)
                if out:
                    yield out
        except Exception as exc:  # noqa: BLE001 - headers are sent: report in-band, as OpenAI does
            from entrypoints.errors import mapping_for

            mapping = mapping_for(exc)
            message = str(exc) if mapping else "internal server error"
            failed = envelope.response("failed", writer.output, last)
            failed["error"] = {"code": mapping.type if mapping else "server_error", "message": message}
            yield writer.event("response.failed", {"response": failed})
            return
        closing = writer.close()
        if not writer.output:  # no output at all: still one (empty) message, as the non-streamed answer has
            closing += writer.text("") + writer.close()
        if closing:
            yield closing
        incomplete = last is not None and last.finish_reason == "length"
        final = envelope.response("incomplete" if incomplete else "completed", writer.output, last, incomplete)
        yield writer.event("response.incomplete" if incomplete else "response.completed", {"response": final})

    return _event_stream(events())


routes = [
    api_route("/v1/responses", responses, "POST", tags=TAGS, body=ResponsesRequest, response=ResponseObject,
              stream=ResponseStreamEvent),
]
