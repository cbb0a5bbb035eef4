"""OpenAI chat completions: tools, tool calls and reasoning, both ways.

In: `tools` / `tool_choice`, assistant `tool_calls` and `tool` messages in the history, the thinking
switch (`chat_template_kwargs.enable_thinking`, or `reasoning_effort: "none"`). Out: the message's
`tool_calls` and `reasoning_content` (also as `reasoning`), and the streamed deltas in OpenAI's shape:
a tool call's first delta carries its index, id, type and name with empty arguments, the next one
its arguments; reasoning streams as `reasoning_content` deltas before the content.
"""

from __future__ import annotations

import json
from typing import Any

from application.errors import InvalidRequest
from application.inference.ports import ChatMessage, GenerationChunk, ToolCall
from entrypoints.http.inference.images import openai_images
from entrypoints.http.inference.openai_schemas import (
    ChatCompletionMessage,
    ChatCompletionRequest,
    ToolCallDTO,
)


def field_error(field: str, message: str) -> InvalidRequest:
    error = InvalidRequest(f"{field}: {message}")
    error.field = field  # type: ignore[attr-defined] - becomes the error's `param`
    return error


def request_tools(body: ChatCompletionRequest) -> tuple[tuple[dict, ...], str | dict | None]:
    """(tools in OpenAI's shape, tool_choice) after checking that they fit together."""
    if body.functions or body.function_call not in (None, "none", "auto"):
        field = "functions" if body.functions else "function_call"
        raise field_error(field, "the deprecated functions API is not supported; send `tools` and `tool_choice`")
    tools = tuple(tool.model_dump(exclude_none=True) for tool in body.tools or ())
    names = [tool["function"]["name"] for tool in tools]
    if len(set(names)) != len(names):
        raise field_error("tools", "two tools have the same function name")
    choice = body.tool_choice
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if choice.get("type") != "function" or not isinstance(name, str):
            raise field_error("tool_choice", 'a named choice is {"type": "function", "function": {"name": ...}}')
        if name not in names:
            raise field_error("tool_choice", f"names the function {name!r}, which is not among the tools")
    elif choice == "required" and not tools:
        raise field_error("tool_choice", '"required" needs at least one tool')
    if not tools:
        return (), None
    return tools, choice


def request_thinking(body: ChatCompletionRequest) -> bool | None:
    """The per-request thinking switch: `chat_template_kwargs.enable_thinking` (vLLM, mlx_lm.server)
    or `reasoning_effort: "none"`; None leaves it to the profile and the model."""
    kwargs = body.chat_template_kwargs or {}
    value = kwargs.get("enable_thinking", kwargs.get("thinking"))
    if value is not None:
        if not isinstance(value, bool):
            raise field_error("chat_template_kwargs", "enable_thinking must be true or false")
        return value
    if body.reasoning_effort is not None:
        return body.reasoning_effort != "none"
    return None


def _arguments_text(arguments: str | dict) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part.type == "image_url":  # taken by `openai_images` (vision models)
            continue
        if part.type != "text" or part.text is None:
            raise InvalidRequest(f"messages: content part type {part.type!r} is not supported; send text or image_url")
        parts.append(part.text)
    return "".join(parts)


def chat_message(message: ChatCompletionMessage) -> ChatMessage:
    """One OpenAI message as the protocol-neutral `ChatMessage` (tool calls and results included)."""
    text = _content_text(message.content)
    role = "system" if message.role == "developer" else message.role
    if role == "tool":
        if not message.tool_call_id:
            raise field_error("messages", "a tool message needs the `tool_call_id` it answers")
        return ChatMessage(role="tool", content=text, tool_call_id=message.tool_call_id, name=message.name)
    calls = tuple(
        ToolCall(id=call.id or f"call_{index}", name=call.function.name, arguments=_arguments_text(call.function.arguments))
        for index, call in enumerate(message.tool_calls or ())
    )
    if calls and role != "assistant":
        raise field_error("messages", "only assistant messages carry tool_calls")
    reasoning = message.reasoning_content if message.reasoning_content is not None else message.reasoning
    return ChatMessage(role=role, content=text, tool_calls=calls, name=message.name if role != "assistant" else None,
                       reasoning=reasoning or None, images=openai_images(message.content))


def tool_call_dict(call: ToolCall) -> dict:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def response_message(text: str, reasoning: str, calls: list[ToolCall]) -> dict:
    """The non-streamed assistant message: content is null when the model only called tools (as OpenAI)."""
    message: dict[str, Any] = {"role": "assistant", "content": text if (text or not calls) else None}
    if reasoning:
        message["reasoning_content"] = reasoning
        message["reasoning"] = reasoning
    if calls:
        message["tool_calls"] = [tool_call_dict(call) for call in calls]
    return message


class ToolCallDeltas:
    """Streamed `tool_calls` deltas, numbering the calls of one answer 0, 1, ..."""

    def __init__(self) -> None:
        self.count = 0

    def deltas(self, calls: tuple[ToolCall, ...]) -> list[dict]:
        out = []
        for call in calls:
            index = self.count
            self.count += 1
            out.append({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                        "function": {"name": call.name, "arguments": ""}}]})
            out.append({"tool_calls": [{"index": index, "function": {"arguments": call.arguments}}]})
        return out


def chunk_deltas(chunk: GenerationChunk, calls: ToolCallDeltas) -> list[dict]:
    """The deltas one chunk makes, other than plain content (the routes' fast path)."""
    deltas: list[dict] = []
    if chunk.reasoning:
        deltas.append({"reasoning_content": chunk.reasoning, "reasoning": chunk.reasoning})
    if chunk.text:
        deltas.append({"content": chunk.text})
    deltas.extend(calls.deltas(chunk.tool_calls))
    return deltas


__all__ = ["ToolCallDTO", "ToolCallDeltas", "chat_message", "chunk_deltas", "request_thinking", "request_tools",
           "response_message"]
