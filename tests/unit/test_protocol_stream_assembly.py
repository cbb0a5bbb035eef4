"""Stream assembly on fake chunks: OpenAI tool_calls deltas, Anthropic content blocks, Responses events.

The chunks are what the runtime hands the routes (content, reasoning, completed tool calls); each
protocol must turn them into its own, consistent event sequence.
"""

from __future__ import annotations

import json

from application.inference.ports import GenerationChunk, ToolCall
from entrypoints.http.inference.anthropic_tools import BlockStream, chat_messages, request_tools
from entrypoints.http.inference.openai_tools import ToolCallDeltas, chunk_deltas, response_message
from entrypoints.http.inference.responses_output import EventWriter
from entrypoints.http.inference.responses_routes import ResponsesRequest, _Envelope, to_internal

WEATHER = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
TIME = ToolCall("call_2", "get_time", "{}")


def _anthropic_events(chunks):
    sent = []

    def event(kind, payload):
        sent.append((kind, payload))
        return kind

    blocks = BlockStream(event)
    for chunk in chunks:
        blocks.chunk(chunk)
    blocks.finish()
    return sent


def test_openai_deltas_number_calls_across_chunks_and_keep_reasoning_first():
    calls = ToolCallDeltas()
    first = chunk_deltas(GenerationChunk("", reasoning="hmm", tool_calls=(WEATHER,)), calls)
    second = chunk_deltas(GenerationChunk("", tool_calls=(TIME,)), calls)
    assert first[0] == {"reasoning_content": "hmm", "reasoning": "hmm"}
    assert first[1] == {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                        "function": {"name": "get_weather", "arguments": ""}}]}
    assert first[2] == {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]}
    assert second[0]["tool_calls"][0]["index"] == 1 and second[0]["tool_calls"][0]["id"] == "call_2"


def test_openai_message_has_null_content_when_only_calls():
    assert response_message("", "", [WEATHER])["content"] is None
    assert response_message("", "", [])["content"] == ""
    assert "tool_calls" not in response_message("hi", "", [])


def test_anthropic_blocks_open_and_close_in_order():
    events = _anthropic_events([
        GenerationChunk("", reasoning="think "), GenerationChunk("", reasoning="more"),
        GenerationChunk("Let me look."), GenerationChunk("", tool_calls=(WEATHER, TIME)),
    ])
    starts = [(p["index"], p["content_block"]["type"]) for k, p in events if k == "content_block_start"]
    stops = [p["index"] for k, p in events if k == "content_block_stop"]
    assert starts == [(0, "thinking"), (1, "text"), (2, "tool_use"), (3, "tool_use")]
    assert stops == [0, 1, 2, 3]
    deltas = [p["delta"] for k, p in events if k == "content_block_delta"]
    assert [d["type"] for d in deltas] == ["thinking_delta", "thinking_delta", "text_delta", "input_json_delta",
                                           "input_json_delta"]
    assert json.loads(deltas[3]["partial_json"]) == {"city": "Paris"}
    # Every block stops before the next one starts.
    order = [(k, p["index"]) for k, p in events if k in ("content_block_start", "content_block_stop")]
    assert order == [("content_block_start", 0), ("content_block_stop", 0), ("content_block_start", 1),
                     ("content_block_stop", 1), ("content_block_start", 2), ("content_block_stop", 2),
                     ("content_block_start", 3), ("content_block_stop", 3)]


def test_anthropic_empty_answer_still_has_one_text_block():
    events = _anthropic_events([GenerationChunk("", finish_reason="stop")])
    assert [k for k, _ in events] == ["content_block_start", "content_block_stop"]


def test_anthropic_tool_results_become_tool_messages_before_the_text():
    messages = chat_messages("user", [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "22 C"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "noon"}],
         "is_error": True},
        {"type": "text", "text": "and now?"},
    ], "messages.1.content")
    assert [(m.role, m.content, m.tool_call_id) for m in messages] == [
        ("tool", "22 C", "toolu_1"), ("tool", "Error: noon", "toolu_2"), ("user", "and now?", None)]
    assistant = chat_messages("assistant", [{"type": "thinking", "thinking": "hm", "signature": ""},
                                            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}],
                              "messages.0.content")
    assert assistant[0].tool_calls == (ToolCall("toolu_1", "f", '{"a": 1}'),) and assistant[0].reasoning == "hm"


def test_anthropic_tool_choice_maps_to_the_internal_one():
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    assert request_tools(tools, {"type": "any"})[1] == "required"
    assert request_tools(tools, {"type": "tool", "name": "f"})[1] == {"type": "function", "function": {"name": "f"}}
    assert request_tools(tools, None) == ((
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},), None)


def test_responses_events_are_numbered_and_items_consistent():
    body = ResponsesRequest(model="m", input="hi")
    writer = EventWriter(_Envelope(body, to_internal(body)))
    raw = writer.reasoning("a") + writer.reasoning("b") + writer.text("x") + writer.call(WEATHER) + writer.close()
    events = [json.loads(block.split("data: ", 1)[1]) for block in raw.strip().split("\n\n")]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.output_item.added", "response.reasoning_text.delta", "response.reasoning_text.delta",
        "response.reasoning_text.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
    ]
    added = [e for e in events if e["type"] == "response.output_item.added"]
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert [e["item"]["id"] for e in added] == [e["item"]["id"] for e in done]
    assert [e["output_index"] for e in done] == [0, 1, 2]
    assert done[0]["item"]["content"][0]["text"] == "ab" and done[1]["item"]["content"][0]["text"] == "x"
    assert done[2]["item"]["call_id"] == "call_1" and done[2]["item"]["arguments"] == '{"city": "Paris"}'
    assert [item["type"] for item in writer.output] == ["reasoning", "message", "function_call"]


def test_responses_instructions_and_developer_items_become_one_system_message():
    from entrypoints.http.inference.responses_routes import to_messages

    body = ResponsesRequest(model="m", instructions="Be brief.", input=[
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Use tools."}]},
        {"role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": "two"},
    ])
    messages = to_messages(body)
    assert [(m.role, m.content) for m in messages[:2]] == [("system", "Be brief.\n\nUse tools."), ("user", "hi")]
    assert [c.id for c in messages[2].tool_calls] == ["c1", "c2"]  # consecutive calls: one assistant turn
    assert [(m.role, m.tool_call_id) for m in messages[3:]] == [("tool", "c1"), ("tool", "c2")]
