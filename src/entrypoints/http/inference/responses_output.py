"""`/v1/responses` output: the Response object's items (reasoning, message, function_call), its `usage`,
and the streamed event sequence (`EventWriter`), shared by the streamed and the non-streamed answer."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from application.inference.ports import GenerationChunk, ToolCall

if TYPE_CHECKING:
    from entrypoints.http.inference.responses_routes import _Envelope


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _reasoning_item(item_id: str, text: str, status: str) -> dict:
    return {"type": "reasoning", "id": item_id, "summary": [], "content": [{"type": "reasoning_text", "text": text}],
            "status": status}


def _message_item(item_id: str, text: str | None, status: str) -> dict:
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def _call_item(item_id: str, call: ToolCall, arguments: str, status: str) -> dict:
    return {"type": "function_call", "id": item_id, "call_id": call.id, "name": call.name, "arguments": arguments,
            "status": status}


def usage(last: GenerationChunk | None) -> dict:
    """One choice (the Responses API has no `n`): its last chunk carries the counts, as for chat's usage."""
    prompt = last.prompt_tokens if last else 0
    completion = last.completion_tokens if last else 0
    cached = last.cached_tokens if last else 0  # prompt tokens read from the prompt cache, not prefilled
    reasoning = last.reasoning_tokens if last else 0  # of the output tokens, those inside the thinking block
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + completion}


def final_output(text: str, reasoning: str, calls: list[ToolCall]) -> list[dict]:
    output = []
    if reasoning:
        output.append(_reasoning_item(new_id("rs"), reasoning, "completed"))
    if text or not calls:
        output.append(_message_item(new_id("msg"), text, "completed"))
    output.extend(_call_item(new_id("fc"), call, call.arguments, "completed") for call in calls)
    return output


class EventWriter:
    """Numbers events (`sequence_number`) and tracks the output items as they open and close."""

    def __init__(self, envelope: _Envelope) -> None:
        self._envelope = envelope
        self._sequence = 0
        self.output: list[dict] = []
        self._open: dict | None = None  # the item whose deltas are streaming (reasoning or message)

    def event(self, kind: str, payload: dict) -> str:
        data = {"type": kind, "sequence_number": self._sequence, **payload}
        self._sequence += 1
        return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"

    def _add(self, item: dict) -> str:
        self.output.append(item)
        return self.event("response.output_item.added", {"output_index": len(self.output) - 1, "item": item})

    def close(self) -> str:
        item, self._open = self._open, None
        if item is None:
            return ""
        index = len(self.output) - 1
        if item["type"] == "reasoning":
            text = item["content"][0]["text"]
            done = self.event("response.reasoning_text.done",
                              {"item_id": item["id"], "output_index": index, "content_index": 0, "text": text})
        else:
            part = item["content"][0]
            done = (self.event("response.output_text.done", {"item_id": item["id"], "output_index": index,
                                                             "content_index": 0, "text": part["text"], "logprobs": []})
                    + self.event("response.content_part.done", {"item_id": item["id"], "output_index": index,
                                                                "content_index": 0, "part": part}))
        item["status"] = "completed"
        return done + self.event("response.output_item.done", {"output_index": index, "item": item})

    def reasoning(self, delta: str) -> str:
        out = ""
        if self._open is None or self._open["type"] != "reasoning":
            out += self.close()
            item = _reasoning_item(new_id("rs"), "", "in_progress")
            out += self._add(item)
            self._open = item
        self._open["content"][0]["text"] += delta
        return out + self.event("response.reasoning_text.delta", {
            "item_id": self._open["id"], "output_index": len(self.output) - 1, "content_index": 0, "delta": delta})

    def text(self, delta: str) -> str:
        out = ""
        if self._open is None or self._open["type"] != "message":
            out += self.close()
            item = _message_item(new_id("msg"), None, "in_progress")
            out += self._add(item)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            item["content"].append(part)
            out += self.event("response.content_part.added", {
                "item_id": item["id"], "output_index": len(self.output) - 1, "content_index": 0,
                "part": {**part}})
            self._open = item
        self._open["content"][0]["text"] += delta
        return out + self.event("response.output_text.delta", {
            "item_id": self._open["id"], "output_index": len(self.output) - 1, "content_index": 0, "delta": delta,
            "logprobs": []})

    def call(self, call: ToolCall) -> str:
        out = self.close()
        item = _call_item(new_id("fc"), call, "", "in_progress")
        out += self._add(item)
        index = len(self.output) - 1
        out += self.event("response.function_call_arguments.delta",
                          {"item_id": item["id"], "output_index": index, "delta": call.arguments})
        item["arguments"] = call.arguments
        out += self.event("response.function_call_arguments.done",
                          {"item_id": item["id"], "output_index": index, "name": call.name,
                           "arguments": call.arguments})
        item["status"] = "completed"
        return out + self.event("response.output_item.done", {"output_index": index, "item": item})
