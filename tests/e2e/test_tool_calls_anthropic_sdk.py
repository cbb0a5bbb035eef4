"""Anthropic tool use, thinking, count_tokens and error shape through the real `anthropic` SDK.

Against uvicorn, on the scripted tiny model (tests/support/scripted_models.py): `tool_use` blocks,
streamed `input_json_delta`, `stop_reason: "tool_use"`, a `tool_result` answered, `thinking` blocks.
"""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.support.scripted_models import build_scripted_model
from tests.support.served_models import anthropic_client, serving
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME_TOOL = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    scripted = build_scripted_model(root / "scripted")
    plain = cached_model("llama", tmp_path_factory.getbasetemp() / "tiny-models")
    with serving(tmp_path_factory.mktemp("mlxm-home"), {"scripted": scripted, "plain-llama": plain},
                 commands=[["profile", "create", "no-think", "scripted", "--no-thinking"]]) as (url, _):
        yield url


@pytest.fixture
def client(server):
    return anthropic_client(server)


def test_tool_use_non_streaming(client):
    message = client.messages.create(model="scripted", max_tokens=50, tools=[WEATHER_TOOL],
                                     messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "Paris"}
    assert block.id


def test_tool_use_streaming_sends_input_json_delta(client, server):
    body = {"model": "scripted", "max_tokens": 50, "tools": [WEATHER_TOOL], "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "weather in Paris"}]}
    with httpx.stream("POST", f"{server}/v1/messages", json=body, timeout=120) as response:
        lines = list(response.iter_lines())
    names = [line[7:] for line in lines if line.startswith("event: ")]
    assert names == ["message_start", "content_block_start", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    with client.messages.stream(model="scripted", max_tokens=50, tools=[WEATHER_TOOL],
                                messages=[{"role": "user", "content": "weather in Paris"}]) as stream:
        kinds = [(event.type, getattr(getattr(event, "delta", None), "type", None)) for event in stream]
        final = stream.get_final_message()
    assert ("content_block_delta", "input_json_delta") in kinds
    assert final.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in final.content] == [("tool_use", "get_weather", {"city": "Paris"})]


def test_parallel_tool_use_blocks(client):
    message = client.messages.create(model="scripted", max_tokens=80, tools=[WEATHER_TOOL, TIME_TOOL],
                                     messages=[{"role": "user", "content": "Paris and Tokyo in parallel"}])
    assert [(b.name, b.input) for b in message.content] == [("get_weather", {"city": "Paris"}),
                                                            ("get_time", {"city": "Tokyo"})]


def test_tool_result_is_answered(client):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.messages.create(model="scripted", max_tokens=50, tools=[WEATHER_TOOL],
                                   messages=messages)
    call = first.content[0]
    messages.append({"role": "assistant", "content": [block.model_dump() for block in first.content]})
    messages.append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": call.id, "content": [{"type": "text", "text": "22 C, sunny"}]}]})
    second = client.messages.create(model="scripted", max_tokens=50, tools=[WEATHER_TOOL],
                                    messages=messages)
    assert second.stop_reason == "end_turn"
    assert [(b.type, b.text) for b in second.content] == [("text", "It is sunny in Paris, 22 C.")]


def test_thinking_blocks(client):
    message = client.messages.create(model="scripted", max_tokens=50,
                                     thinking={"type": "enabled", "budget_tokens": 1024},
                                     messages=[{"role": "user", "content": "Why is the sky blue? think"}])
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "The sky scatters blue light."
    assert message.content[1].text == "Rayleigh scattering."
    # Without the `thinking` field the model's own default applies, and its thinking is still kept apart.
    default = client.messages.create(model="scripted", max_tokens=50,
                                     messages=[{"role": "user", "content": "think"}])
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in default.content] == [
        ("thinking", "The sky scatters blue light."), ("text", "Rayleigh scattering.")]
    with client.messages.stream(model="scripted", max_tokens=50,
                                messages=[{"role": "user", "content": "think"}]) as stream:
        deltas = [event.delta.type for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()
    assert "thinking_delta" in deltas and deltas.index("text_delta") > deltas.index("thinking_delta")
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "The sky scatters blue light."


def test_thinking_disabled_per_request_and_per_profile(client):
    disabled = client.messages.create(model="scripted", max_tokens=50, thinking={"type": "disabled"},
                                      messages=[{"role": "user", "content": "think"}])
    assert [(b.type, b.text) for b in disabled.content] == [("text", "Blue, because of Rayleigh.")]
    profile = client.messages.create(model="no-think", max_tokens=50,
                                     messages=[{"role": "user", "content": "think"}])
    assert [(b.type, b.text) for b in profile.content] == [("text", "Blue, because of Rayleigh.")]


def test_count_tokens_counts_the_templated_prompt(client):
    plain = client.messages.count_tokens(model="scripted", messages=[{"role": "user", "content": "weather"}])
    with_tools = client.messages.count_tokens(model="scripted", tools=[WEATHER_TOOL],
                                              messages=[{"role": "user", "content": "weather"}])
    # " <|user|> weather weather:" is three words; the tools add "<|system|> tools: get_weather".
    assert plain.input_tokens == 3
    assert with_tools.input_tokens == 6


def test_errors_have_anthropics_shape(server, client):
    response = httpx.post(f"{server}/v1/messages", json={"model": "scripted", "messages": []}, timeout=30)
    body = response.json()
    assert 400 <= response.status_code < 500
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error" and body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["type"] == "error" and caught.value.body["error"]["type"] == "not_found_error"
    # The rest of the API keeps mlxm's own shape.
    other = httpx.post(f"{server}/v1/chat/completions", json={"model": "no-such-model", "messages": []}, timeout=30)
    assert "type" not in other.json() and other.json()["error"]["message"]


def test_tools_for_a_model_without_a_tool_format_is_a_400_naming_it(client):
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="plain-llama", max_tokens=5, tools=[WEATHER_TOOL],
                               messages=[{"role": "user", "content": "hi"}])
    assert "plain-llama" in caught.value.body["error"]["message"]


@pytest.mark.parametrize("tools, tool_choice", [
    ([{"description": "no name", "input_schema": {}}], None),
    ([{"type": "web_search_20250305", "name": "web_search"}], None),
    ([WEATHER_TOOL], {"type": "tool", "name": "not_a_tool"}),
    ([WEATHER_TOOL], {"type": "sometimes"}),
])
def test_malformed_tools_are_a_4xx_in_anthropics_shape(server, tools, tool_choice):
    body = {"model": "scripted", "max_tokens": 5, "tools": tools, "messages": [{"role": "user", "content": "hi"}]}
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    response = httpx.post(f"{server}/v1/messages", json=body, timeout=30)
    assert 400 <= response.status_code < 500
    assert response.json()["type"] == "error" and response.json()["error"]["message"]

