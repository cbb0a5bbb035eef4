"""The tool-call grammar builder on a fake tokenizer: what the Lark text admits, per format."""

from __future__ import annotations

import json

import pytest

from adapters.mlx.tool_grammar import parser_id, tool_call_grammar
from application.errors import InvalidRequest

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
         {"type": "function", "function": {"name": "get_time"}}]


class FakeTokenizer:
    tool_call_start, tool_call_end = "<tool_call>", "</tool_call>"
    think_end = "</think>"
    has_thinking = True

    def __init__(self, single_token_markers: bool):
        self.tool_call_start_tokens = (151657,) if single_token_markers else (27, 14, 99)
        self.tool_call_end_tokens = (151658,) if single_token_markers else (27, 15, 99)
        self.think_end_tokens = (151668,)

    def encode(self, text, add_special_tokens=False):
        return [5] if text == "[ARGS]" else [1, 2]


def _schema(grammar: str) -> dict:
    line = next(line for line in grammar.splitlines() if line.startswith("body: %json "))
    return json.loads(line[len("body: %json "):])


def test_single_token_markers_are_referenced_by_id():
    grammar = tool_call_grammar(FakeTokenizer(True), "json_tools", TOOLS, None, "m")
    assert "call: <[151657]> ws body ws <[151658]>" in grammar
    assert tool_call_grammar(FakeTokenizer(False), "json_tools", TOOLS, None, "m").count('"<tool_call>"') == 1


def test_json_tools_admits_each_offered_function_or_only_the_named_one():
    both = _schema(tool_call_grammar(FakeTokenizer(True), "json_tools", TOOLS, None, "m"))
    assert [v["properties"]["name"]["const"] for v in both["anyOf"]] == ["get_weather", "get_time"]
    assert both["anyOf"][1]["properties"]["arguments"] == {"type": "object"}  # no parameters: any object
    named = _schema(tool_call_grammar(FakeTokenizer(True), "json_tools", TOOLS, "get_time", "m"))
    assert named["properties"]["name"] == {"const": "get_time"} and "anyOf" not in named


def test_parallel_off_admits_exactly_one_call_and_thinking_may_come_first():
    grammar = tool_call_grammar(FakeTokenizer(True), "json_tools", TOOLS, None, "m", parallel=False)
    assert "calls: call\n" in grammar
    thinking = tool_call_grammar(FakeTokenizer(True), "json_tools", TOOLS, None, "m", thinking_first=True)
    assert thinking.startswith("start: thought ws calls\nthought: /(?s:.*)/ <[151668]>")


def test_mistral_format():
    grammar = tool_call_grammar(FakeTokenizer(True), "mistral", TOOLS, None, "m")
    assert "calls: <[151657]> call (ws call)*" in grammar
    assert 'call0: "get_weather" <[5]> args0' in grammar and "call: call0 | call1" in grammar


def test_a_format_without_a_grammar_is_a_400_naming_it():
    with pytest.raises(InvalidRequest, match="glm47"):
        tool_call_grammar(FakeTokenizer(True), "glm47", TOOLS, None, "some-model")


def test_qwen3_coder_format_lists_required_then_optional_parameters():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "required": ["b"],
        "properties": {"a": {"type": "integer"}, "b": {"type": "string", "enum": ["x", "y"]}}}}}]
    grammar = tool_call_grammar(FakeTokenizer(True), "qwen3_coder", tools, None, "m")
    assert 'v0_0: "x" | "y"' in grammar and "v0_1: /-?[0-9]{1,12}/" in grammar
    assert ('call0: "<function=f>\\n" "<parameter=b>\\n" v0_0 "\\n</parameter>\\n" '
            '("<parameter=a>\\n" v0_1 "\\n</parameter>\\n")? "</function>\\n"') in grammar


def test_parser_id_reads_mlx_lms_module():
    from mlx_lm.tool_parsers import json_tools

    class Wrapped:
        tool_parser = staticmethod(json_tools.parse_tool_call)

    assert parser_id(Wrapped()) == "json_tools"
