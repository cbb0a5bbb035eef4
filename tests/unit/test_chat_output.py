"""The output splitter on a fake tokenizer: content, reasoning and tool calls out of scripted text.

The splitter runs mlx-lm's own text state machine and tool parsers; the fake tokenizer only names
the markers and the parser, as mlx-lm's `TokenizerWrapper` does for a real model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import pytest

from adapters.mlx.chat_output import ChatOutputSplitter, ChatOutputStream, template_messages
from application.inference.ports import ChatMessage, GenerationChunk, ToolCall


def _json_tools(text, tools=None):
    from mlx_lm.tool_parsers.json_tools import parse_tool_call

    return parse_tool_call(text, tools)


@dataclass
class FakeTokenizer:
    tool_parser: Callable | None = _json_tools
    tool_call_start: str | None = "<tool_call>"
    tool_call_end: str | None = "</tool_call>"
    think_start: str | None = "<think>"
    think_end: str | None = "</think>"
    response_transitions: dict = field(default_factory=dict)
    structural_markers: tuple = ()

    @property
    def has_thinking(self):
        return self.think_start is not None

    @property
    def has_tool_calling(self):
        return self.tool_call_start is not None


WEATHER = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


def run(text: str, pieces: int | None = None, tokenizer=None, parse_tools=True, start="normal", cut=None):
    """Feed `text` in pieces of `pieces` characters (default: one by one); return the totals."""
    splitter = ChatOutputSplitter(tokenizer or FakeTokenizer(), (), parse_tools, start)
    size = pieces or 1
    content, reasoning, calls = [], [], []
    for i in range(0, len(text), size):
        c, r, t = splitter.feed(text[i:i + size])
        content.append(c), reasoning.append(r), calls.extend(t)
    c, r, t = splitter.finish()
    content.append(c), reasoning.append(r), calls.extend(t)
    return "".join(content), "".join(reasoning), calls, splitter.made_calls


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_a_tool_call_is_parsed_whatever_the_chunking(size):
    content, reasoning, calls, made = run("Sure. " + WEATHER, size)
    assert content == "Sure. " and reasoning == "" and made
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert calls[0].id.startswith("call_")


def test_parallel_calls_come_out_in_order_with_distinct_ids():
    second = WEATHER.replace("get_weather", "get_time").replace("Paris", "Tokyo")
    _, _, calls, _ = run(WEATHER + "\n" + second, 5)
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert calls[0].id != calls[1].id


def test_reasoning_is_split_from_content():
    content, reasoning, calls, _ = run("<think>Rayleigh, probably.</think>Because of scattering.", 2)
    assert (content, reasoning, calls) == ("Because of scattering.", "Rayleigh, probably.", [])


def test_a_prompt_that_opened_the_thinking_block_starts_in_reasoning():
    content, reasoning, _, _ = run("hmm</think>Blue.", 4, start="reasoning")
    assert (content, reasoning) == ("Blue.", "hmm")


def test_reasoning_then_a_tool_call():
    content, reasoning, calls, _ = run("<think>need weather</think>" + WEATHER, 3)
    assert reasoning == "need weather" and content == "" and [c.name for c in calls] == ["get_weather"]


def test_malformed_call_comes_back_as_text_verbatim():
    text = 'Let me check.<tool_call>{"name": oops</tool_call> Done.'
    content, _, calls, made = run(text, 4)
    assert content == text and calls == [] and not made


def test_a_call_cut_off_by_max_tokens_comes_back_as_text():
    text = 'ok <tool_call>{"name": "get_weather", "argu'
    content, _, calls, _ = run(text, 6)
    assert content == text and calls == []


def test_a_partial_marker_at_the_end_is_released_as_text():
    content, _, calls, _ = run("almost <tool_ca", 3)
    assert content == "almost <tool_ca" and calls == []


def test_without_parsing_the_markup_is_content():
    content, _, calls, _ = run(WEATHER, 5, parse_tools=False)
    assert content == WEATHER and calls == []


def test_a_format_without_an_end_marker_is_parsed_at_the_end():
    from mlx_lm.tool_parsers import mistral

    tokenizer = FakeTokenizer(tool_parser=mistral.parse_tool_call, tool_call_start=mistral.tool_call_start,
                              tool_call_end=mistral.tool_call_end, think_start=None, think_end=None)
    _, _, calls, _ = run('[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}', 4, tokenizer=tokenizer)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]


def test_the_stream_wrapper_keeps_one_chunk_per_token_and_reports_tool_calls():
    pieces = ["<tool_", "call>", '{"name": "f", ', '"arguments": {}}', "</tool_call>"]
    chunks = [GenerationChunk(p, 3, i + 1, "stop" if i == len(pieces) - 1 else None) for i, p in enumerate(pieces)]
    out = list(ChatOutputStream(iter(chunks), ChatOutputSplitter(FakeTokenizer(), (), True)))
    assert len(out) == len(chunks)
    assert [c.completion_tokens for c in out] == [1, 2, 3, 4, 5]
    assert "".join(c.text for c in out) == ""
    assert [t.name for c in out for t in c.tool_calls] == ["f"]
    assert out[-1].finish_reason == "tool_calls"


def test_the_stream_wrapper_keeps_length_when_cut_off():
    chunks = [GenerationChunk("<tool_call>{", 3, 1), GenerationChunk('"na', 3, 2, "length")]
    out = list(ChatOutputStream(iter(chunks), ChatOutputSplitter(FakeTokenizer(), (), True)))
    assert out[-1].finish_reason == "length" and "".join(c.text for c in out) == '<tool_call>{"na'


def test_history_is_rendered_in_openais_shape_for_templates():
    messages = template_messages([
        ChatMessage("assistant", "", tool_calls=(ToolCall("c1", "get_weather", '{"city": "Paris"}'),),
                    reasoning="thought"),
        ChatMessage("tool", "22 C", tool_call_id="c1", name="get_weather"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("c2", "f", "not json"),)),
    ])
    assert messages[0]["tool_calls"] == [{"id": "c1", "type": "function",
                                          "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert messages[0]["reasoning_content"] == "thought"
    assert messages[1] == {"role": "tool", "content": "22 C", "tool_call_id": "c1", "name": "get_weather"}
    assert messages[2]["tool_calls"][0]["function"]["arguments"] == "not json"


def test_the_stream_wrapper_counts_each_choices_reasoning_tokens():
    thinking = ["<think>", "a ", "", "b ", "</think>", "c"]  # "": a token whose text is held back
    chunks = []
    for i, piece in enumerate(thinking):
        chunks.append(GenerationChunk(piece, 3, i + 1, index=0))
        if i < 2:  # the other choice answers plainly, interleaved
            chunks.append(GenerationChunk("x" if i == 0 else "y", 3, i + 1, "length" if i == 1 else None, index=1))
    chunks.append(GenerationChunk("", 3, len(thinking), "stop", index=0))  # end of sequence: no new token
    splitter = lambda: ChatOutputSplitter(FakeTokenizer(), (), False)  # noqa: E731
    out = list(ChatOutputStream(iter(chunks), splitter(), make_splitter=splitter))
    last = {c.index: c for c in out}
    assert last[0].reasoning_tokens == 5 and last[0].completion_tokens == 6  # <think> through </think>
    assert last[1].reasoning_tokens == 0
    assert "".join(c.reasoning for c in out if c.index == 0) == "a b "


def test_a_prompt_that_opened_the_thinking_block_counts_from_the_first_token():
    chunks = [GenerationChunk(p, 3, i + 1, "stop" if i == 2 else None) for i, p in enumerate(["a", "</think>", "b"])]
    out = list(ChatOutputStream(iter(chunks), ChatOutputSplitter(FakeTokenizer(), (), False, "reasoning")))
    assert [c.reasoning_tokens for c in out] == [1, 2, 2]
