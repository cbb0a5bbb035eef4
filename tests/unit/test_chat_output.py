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


# ------------------------------------------------- reasoning tokens through the real TextStream, on a fake engine

class _Detokenizer:
    """mlx-lm's streaming detokenizer interface over a table of token texts."""

    def __init__(self, texts: list[str]) -> None:
        self._texts, self._text, self._read = texts, "", 0

    def add_token(self, token: int) -> None:
        self._text += self._texts[token]

    def finalize(self) -> None:
        pass

    @property
    def last_segment(self) -> str:
        segment, self._read = self._text[self._read:], len(self._text)
        return segment


class _Tokenizer:
    def __init__(self, texts: list[str]) -> None:
        self._texts = texts

    @property
    def detokenizer(self) -> _Detokenizer:  # a fresh one each time, as mlx-lm's TokenizerWrapper gives
        return _Detokenizer(self._texts)


class _Engine:
    """Answers each choice with its script, the choices' tokens interleaved, then end of sequence."""

    def __init__(self, scripts: list[list[int]], eos: int) -> None:
        self._scripts, self._eos = scripts, eos

    def submit_all(self, requests) -> None:
        events = requests[0].events
        for step in range(max(len(s) for s in self._scripts) + 1):
            for index, script in enumerate(self._scripts):
                if step < len(script):
                    events.put((index, script[step], None, None, None))
                elif step == len(script):
                    events.put((index, self._eos, "stop", None, None))

    def cancel(self, request) -> None:
        request.finished.set()


def through_text_stream(scripts: list[list[str]], stop: tuple[str, ...] = ()) -> list[GenerationChunk]:
    """Each choice's script of token texts, through `TextStream` (stop strings, held-back text) and the splitter."""
    from types import SimpleNamespace

    from adapters.mlx.engine import EngineRequest
    from adapters.mlx.text_stream import TextStream

    texts = sorted({piece for script in scripts for piece in script}) + [""]
    ids = [[texts.index(piece) for piece in script] for script in scripts]
    handle = SimpleNamespace(engine=_Engine(ids, len(texts) - 1), tokenizer=_Tokenizer(texts), token_texts={})
    requests = [EngineRequest(prompt=[0], max_tokens=100, index=i) for i in range(len(scripts))]
    for request in requests[1:]:
        request.events = requests[0].events
    splitter = lambda: ChatOutputSplitter(FakeTokenizer(), (), False)  # noqa: E731
    return list(ChatOutputStream(TextStream(handle, requests, stop), splitter(), make_splitter=splitter))


def _last(chunks: list[GenerationChunk]) -> dict[int, GenerationChunk]:
    return {c.index: c for c in chunks}


@pytest.mark.parametrize("script", [
    ["<th", "ink>", "a ", "b ", "</th", "in", "k>", "c"],
    ["<", "thi", "nk>", "a ", "</think", ">", "c ", "d"],
])
def test_every_token_of_a_marker_split_over_tokens_counts_as_reasoning(script):
    last = _last(through_text_stream([script]))[0]
    closing = max(i for i, piece in enumerate(script) if piece.endswith(">"))  # completes `</think>`
    assert last.completion_tokens == len(script)
    assert last.reasoning_tokens == closing + 1  # the opening marker's tokens through the closing one's


THOUGHT = ["<think>", "Sky ", "is ", "blue.", "</think>", "Rayleigh ", "scattering."]


def test_a_stop_string_inside_the_thinking_block_counts_every_token_up_to_it_as_reasoning():
    out = through_text_stream([THOUGHT], stop=("blue",))
    last = _last(out)[0]
    assert last.finish_reason == "stop" and last.completion_tokens == THOUGHT.index("blue.") + 1
    assert "".join(c.reasoning for c in out) == "Sky is " and "".join(c.text for c in out) == ""
    assert last.reasoning_tokens == last.completion_tokens


def test_a_stop_string_right_after_the_thinking_block_counts_its_token_as_content():
    # The stop string is longer than the markers: the stream holds back all of `</think>` until it is decided.
    out = through_text_stream([THOUGHT], stop=("Rayleigh",))
    last = _last(out)[0]
    assert last.completion_tokens == THOUGHT.index("Rayleigh ") + 1 and "".join(c.text for c in out) == ""
    assert last.reasoning_tokens == THOUGHT.index("</think>") + 1  # "Rayleigh" is after the block: content


def test_each_choice_counts_its_own_tokens_with_held_back_text_and_a_stop_string():
    cut_thinking = ["<th", "ink>", "a ", "STOP", "</think>", "x"]
    cut_after = ["<think>", "b ", "</th", "ink>", "STO", "P", "y"]
    plain = ["no ", "thinking ", "here"]
    last = _last(through_text_stream([cut_thinking, cut_after, plain], stop=("STOP",)))
    assert [last[i].completion_tokens for i in range(3)] == [4, 6, 3]
    assert last[0].reasoning_tokens == 4  # cut inside the block: all of it
    assert last[1].reasoning_tokens == cut_after.index("ink>") + 1  # the stop string's tokens are content
    assert last[2].reasoning_tokens == 0


class _VisionEngine:
    """The vision engine's side of `VisionStream`: each job's script as `VisionToken`s, then end of sequence."""

    def __init__(self, script: list[str]) -> None:
        self._script = script

    def submit(self, job) -> None:
        from adapters.mlx.vision_engine import VisionToken

        for i, text in enumerate(self._script):
            job.events.put((job.index, VisionToken(text, 5, i + 1, None, token=i)))
        job.events.put((job.index, VisionToken("", 5, len(self._script), "stop")))

    def cancel(self, job) -> None:
        job.finished.set()


def test_the_vision_stream_tells_where_each_tokens_text_ends_too():
    from adapters.mlx.vision_engine import VisionJob, VisionStream

    stream = VisionStream(_VisionEngine(THOUGHT), VisionJob(inputs={}, max_tokens=100), ("Rayleigh",))
    out = list(ChatOutputStream(stream, ChatOutputSplitter(FakeTokenizer(), (), False)))
    assert out[-1].completion_tokens == THOUGHT.index("Rayleigh ") + 1 and "".join(c.text for c in out) == ""
    assert out[-1].reasoning_tokens == THOUGHT.index("</think>") + 1
