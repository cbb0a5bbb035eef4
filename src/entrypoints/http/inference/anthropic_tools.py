"""Anthropic Messages: tools, `tool_use` / `tool_result` blocks and `thinking`, both ways.

In: `tools` ({name, description, input_schema}), `tool_choice` (auto | any | tool | none),
`thinking` ({"type": "enabled" | "disabled"}), and content blocks: `text`, `tool_use` (assistant),
`tool_result` (user), `thinking` (assistant; given back to templates that render it). Out: the
answer's blocks in order, `thinking`, `text`, `tool_use`, and the stream's block events:
`thinking_delta`, `text_delta`, and a tool's `input_json_delta`.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from application.errors import InvalidRequest
from application.inference.ports import ChatMessage, GenerationChunk, ToolCall
from entrypoints.http.inference.images import anthropic_image

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def field_error(field: str, message: str) -> InvalidRequest:
    error = InvalidRequest(f"{field}: {message}")
    error.field = field  # type: ignore[attr-defined]
    return error


def stop_reason(finish: str | None) -> str:
    return STOP_REASONS.get(finish or "stop", "end_turn")


# ------------------------------------------------------------------------------------- request

def request_tools(tools: list[dict] | None, tool_choice: dict | None) -> tuple[tuple[dict, ...], str | dict | None]:
    """Anthropic tools and tool_choice in the internal (OpenAI) shape."""
    converted = []
    for index, tool in enumerate(tools or ()):
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise field_error(f"tools.{index}", f"server tool type {kind!r} is not supported; define custom tools")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise field_error(f"tools.{index}.name", "a tool needs a name")
        schema = tool.get("input_schema")
        if schema is not None and not isinstance(schema, dict):
            raise field_error(f"tools.{index}.input_schema", "must be a JSON Schema object")
        function: dict[str, Any] = {"name": name, "parameters": schema or {"type": "object", "properties": {}}}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        converted.append({"type": "function", "function": function})
    names = [t["function"]["name"] for t in converted]
    if len(set(names)) != len(names):
        raise field_error("tools", "two tools have the same name")
    if tool_choice is None or not converted:
        if tool_choice is not None and tool_choice.get("type") in ("any", "tool"):
            raise field_error("tool_choice", f"{tool_choice.get('type')!r} needs at least one tool")
        return tuple(converted), None
    kind = tool_choice.get("type")
    if kind == "auto":
        return tuple(converted), "auto"
    if kind == "none":
        return tuple(converted), "none"
    if kind == "any":
        return tuple(converted), "required"
    if kind == "tool":
        name = tool_choice.get("name")
        if name not in names:
            raise field_error("tool_choice.name", f"{name!r} is not among the tools")
        return tuple(converted), {"type": "function", "function": {"name": name}}
    raise field_error("tool_choice.type", "must be auto, any, tool or none")


def request_thinking(thinking: dict | None) -> bool | None:
    if thinking is None:
        return None
    kind = thinking.get("type")
    if kind not in ("enabled", "disabled", "adaptive"):
        raise field_error("thinking.type", "must be enabled or disabled")
    return kind != "disabled"


def _block(block: Any) -> dict:
    return block if isinstance(block, dict) else block.model_dump()


def _result_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: tool_result content must be a string or a list of text blocks")
    parts = []
    for item in content:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind != "text" or not isinstance(item.get("text"), str):
            raise InvalidRequest(f"{where}: tool_result content block type {kind!r} is not supported; send text")
        parts.append(item["text"])
    return "".join(parts)


def chat_messages(role: str, content: str | Iterable[Any], where: str) -> list[ChatMessage]:
    """One Anthropic message as internal messages: a user turn's `tool_result` blocks become `tool`
    messages (in order, before its text), an assistant's `tool_use` blocks its tool calls."""
    if isinstance(content, str):
        return [ChatMessage(role, content)]
    texts: list[str] = []
    calls: list[ToolCall] = []
    results: list[ChatMessage] = []
    thinking: list[str] = []
    images: list = []
    for index, raw in enumerate(content):
        block = _block(raw)
        kind = block.get("type")
        at = f"{where}.{index}"
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise InvalidRequest(f"{at}: a text block needs text")
            texts.append(block["text"])
        elif kind == "tool_use" and role == "assistant":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise InvalidRequest(f"{at}: a tool_use block needs an id and a name")
            calls.append(ToolCall(block["id"], block["name"], json.dumps(block.get("input") or {}, ensure_ascii=False)))
        elif kind == "tool_result" and role == "user":
            if not isinstance(block.get("tool_use_id"), str):
                raise InvalidRequest(f"{at}: a tool_result block needs the tool_use_id it answers")
            text = _result_text(block.get("content"), at)
            if block.get("is_error"):
                text = f"Error: {text}"
            results.append(ChatMessage("tool", text, tool_call_id=block["tool_use_id"]))
        elif kind == "thinking" and role == "assistant":
            thinking.append(str(block.get("thinking") or ""))
        elif kind == "redacted_thinking" and role == "assistant":
            continue  # opaque to a local model
        elif kind == "image" and role == "user":  # base64 or url source; the turn's images, in order
            images.append(anthropic_image(block, at))
        else:
            raise InvalidRequest(f"{at}: content block type {kind!r} is not supported in a {role} message")
    messages = list(results)
    text = "".join(texts)
    if role == "assistant":
        messages.append(ChatMessage("assistant", text, tool_calls=tuple(calls), reasoning="".join(thinking) or None))
    elif text or images or not results:
        messages.append(ChatMessage(role, text, images=tuple(images)))
    return messages


# ------------------------------------------------------------------------------------ response

def _tool_input(arguments: str) -> dict:
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def response_blocks(text: str, reasoning: str, calls: list[ToolCall]) -> list[dict]:
    blocks: list[dict] = []
    if reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if text or not (reasoning or calls):
        blocks.append({"type": "text", "text": text})
    blocks.extend({"type": "tool_use", "id": call.id, "name": call.name, "input": _tool_input(call.arguments)}
                  for call in calls)
    return blocks


class BlockStream:
    """Content-block events for streamed chunks: opens a block when its kind starts, closes it when
    another kind follows (thinking, then text, then each tool_use), numbering blocks from 0."""

    def __init__(self, event) -> None:
        self._event = event  # (name, payload) -> SSE text
        self._open: str | None = None
        self._index = -1

    def _start(self, kind: str, block: dict) -> str:
        out = self.close()
        self._index += 1
        self._open = kind
        return out + self._event("content_block_start", {"index": self._index, "content_block": block})

    def close(self) -> str:
        if self._open is None:
            return ""
        self._open = None
        return self._event("content_block_stop", {"index": self._index})

    def chunk(self, chunk: GenerationChunk) -> str:
        out = []
        if chunk.reasoning:
            if self._open != "thinking":
                out.append(self._start("thinking", {"type": "thinking", "thinking": "", "signature": ""}))
            out.append(self._event("content_block_delta", {"index": self._index,
                                                           "delta": {"type": "thinking_delta", "thinking": chunk.reasoning}}))
        if chunk.text:
            if self._open != "text":
                out.append(self._start("text", {"type": "text", "text": ""}))
            out.append(self._event("content_block_delta", {"index": self._index,
                                                           "delta": {"type": "text_delta", "text": chunk.text}}))
        for call in chunk.tool_calls:
            out.append(self._start("tool_use", {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}))
            partial = json.dumps(_tool_input(call.arguments), ensure_ascii=False)
            out.append(self._event("content_block_delta", {"index": self._index,
                                                           "delta": {"type": "input_json_delta", "partial_json": partial}}))
        return "".join(out)

    def finish(self) -> str:
        """Close the last block; an answer with no output at all still has one (empty) text block."""
        if self._index < 0:
            return self._start("text", {"type": "text", "text": ""}) + self.close()
        return self.close()
