"""Tool calls and reasoning through the real `openai` SDK, against uvicorn, on a scripted tiny model.

The scripted model (tests/support/scripted_models.py) is real mlx-lm llama weights whose greedy
output is a script: a `<tool_call>` block in the JSON (Hermes/Qwen) format, two blocks, a malformed
block, a `<think>` block, or an answer after a tool result. mlx-lm infers its tool parser from the
chat template, as for a real Qwen model.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.support.scripted_models import TOOL_SCRIPTS, build_scripted_model
from tests.support.served_models import openai_client, serving
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    scripted = build_scripted_model(root / "scripted")
    plain = cached_model("llama", tmp_path_factory.getbasetemp() / "tiny-models")  # no tool format
    with serving(tmp_path_factory.mktemp("mlxm-home"), {"scripted": scripted, "plain-llama": plain}) as (url, _):
        yield url


@pytest.fixture
def client(server):
    return openai_client(server)


def test_tool_call_non_streaming(client):
    completion = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL], temperature=0,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_tool_call_streaming_deltas_have_openais_shape(client, server):
    body = {"model": "scripted", "messages": [{"role": "user", "content": "weather in Paris?"}],
            "tools": [WEATHER_TOOL], "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=120) as response:
        assert response.status_code == 200
        events = [json.loads(line[6:]) for line in response.iter_lines()
                  if line.startswith("data: ") and line != "data: [DONE]"]
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    tool_deltas = [d["tool_calls"] for d in deltas if "tool_calls" in d]
    # First the call's index, id, type and name with empty arguments, then its arguments (as OpenAI streams).
    assert tool_deltas[0] == [{"index": 0, "id": tool_deltas[0][0]["id"], "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]
    assert tool_deltas[1] == [{"index": 0, "function": {"arguments": tool_deltas[1][0]["function"]["arguments"]}}]
    assert json.loads(tool_deltas[1][0]["function"]["arguments"]) == {"city": "Paris"}
    assert not any(d.get("content") for d in deltas)  # the markup is not leaked as content
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_call_streaming_through_the_sdk_accumulates(client):
    with client.beta.chat.completions.stream(
        model="scripted", messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER_TOOL],
        temperature=0,
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls] == [
        ("get_weather", {"city": "Paris"})]


def test_parallel_tool_calls(client):
    messages = [{"role": "user", "content": "Paris and Tokyo, in parallel"}]
    completion = client.chat.completions.create(model="scripted", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL],
                                                temperature=0)
    calls = completion.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {"city": "Tokyo"})]
    assert len({c.id for c in calls}) == 2
    stream = client.chat.completions.create(model="scripted", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL],
                                            temperature=0, stream=True)
    indexes = [tc.index for event in stream for tc in (event.choices[0].delta.tool_calls or []) if tc.id]
    assert indexes == [0, 1]


def test_tool_result_is_sent_back_and_answered(client):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model="scripted", messages=messages, tools=[WEATHER_TOOL], temperature=0)
    call = first.choices[0].message.tool_calls[0]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature_c": 22})})
    second = client.chat.completions.create(model="scripted", messages=messages, tools=[WEATHER_TOOL], temperature=0)
    assert second.choices[0].message.content == "It is sunny in Paris, 22 C."
    assert second.choices[0].finish_reason == "stop"
    assert not second.choices[0].message.tool_calls


def test_malformed_tool_call_comes_back_as_text(client):
    completion = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "broken"}], tools=[WEATHER_TOOL], temperature=0)
    choice = completion.choices[0]
    assert choice.message.content == 'Let me check.<tool_call>{"name": oops</tool_call>'
    assert not choice.message.tool_calls and choice.finish_reason == "stop"


def test_tool_choice_none_does_not_parse_calls(client):
    completion = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "weather"}], tools=[WEATHER_TOOL],
        tool_choice="none", temperature=0)
    choice = completion.choices[0]
    assert not choice.message.tool_calls and choice.finish_reason == "stop"
    assert choice.message.content.startswith("<tool_call>")


def test_reasoning_is_separated(client):
    completion = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "Why is the sky blue? think"}], temperature=0)
    message = completion.choices[0].message
    assert message.content == "Rayleigh scattering."
    extra = message.model_extra
    assert extra["reasoning_content"] == "The sky scatters blue light."
    assert extra["reasoning"] == "The sky scatters blue light."


def test_reasoning_tokens_are_counted_in_usage(client):
    thinking = TOOL_SCRIPTS["think"].index("</think>") + 1  # `<think>` through `</think>`, markers included
    completion = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "think"}], temperature=0)
    assert completion.usage.completion_tokens == len(TOOL_SCRIPTS["think"])
    assert completion.usage.completion_tokens_details.reasoning_tokens == thinking
    stream = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "think"}], temperature=0, stream=True,
        stream_options={"include_usage": True})
    usage = [event.usage for event in stream if event.usage is not None][-1]
    assert usage.completion_tokens_details.reasoning_tokens == thinking
    plain = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "hello"}], temperature=0)
    assert plain.usage.completion_tokens > 0 and plain.usage.completion_tokens_details.reasoning_tokens == 0


def test_reasoning_streams_as_its_own_deltas(client):
    stream = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "think"}], temperature=0, stream=True)
    reasoning, content, order = [], [], []
    for event in stream:
        delta = event.choices[0].delta
        extra = delta.model_extra or {}
        if extra.get("reasoning_content"):
            reasoning.append(extra["reasoning_content"])
            order.append("reasoning")
        if delta.content:
            content.append(delta.content)
            order.append("content")
    assert "".join(reasoning) == "The sky scatters blue light."
    assert "".join(content) == "Rayleigh scattering."
    assert order.index("content") > max(i for i, kind in enumerate(order) if kind == "reasoning")


def test_thinking_switched_off_per_request(client):
    completion = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "think"}], temperature=0,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    message = completion.choices[0].message
    assert message.content == "Blue, because of Rayleigh."
    assert "reasoning_content" not in (message.model_extra or {})


def test_tools_for_a_model_without_a_tool_format_is_a_400_naming_it(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="plain-llama", messages=[{"role": "user", "content": "hi"}],
                                       tools=[WEATHER_TOOL])
    assert "plain-llama" in str(caught.value) and "tool-call format" in str(caught.value)


@pytest.mark.parametrize("tools, tool_choice", [
    ([{"type": "function", "function": {"description": "no name"}}], None),
    ([{"type": "function", "function": {"name": "has spaces"}}], None),
    ([{"type": "retrieval"}], None),
    ([WEATHER_TOOL, WEATHER_TOOL], None),
    ([WEATHER_TOOL], {"type": "function", "function": {"name": "not_a_tool"}}),
    ([WEATHER_TOOL], "sometimes"),
])
def test_malformed_tools_are_a_4xx_json_error(server, tools, tool_choice):
    body = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "tools": tools}
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert 400 <= response.status_code < 500
    error = response.json()["error"]
    assert error["type"] and error["message"]


def test_tool_message_without_call_id_is_a_400(server):
    body = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "22"}]}
    response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400 and "tool_call_id" in response.json()["error"]["message"]


def test_api_chat_keeps_reasoning_apart_and_can_switch_it_off(server):
    body = {"model": "scripted", "messages": [{"role": "user", "content": "think"}], "overrides": {"temperature": 0}}
    answer = httpx.post(f"{server}/api/chat", json=body, timeout=60).json()
    assert answer["message"]["content"] == "Rayleigh scattering."
    assert answer["message"]["reasoning"] == "The sky scatters blue light."
    assert answer["usage"]["reasoning_tokens"] == TOOL_SCRIPTS["think"].index("</think>") + 1
    off = httpx.post(f"{server}/api/chat", json={**body, "enable_thinking": False}, timeout=60).json()
    assert off["usage"]["completion_tokens"] > 0 and off["usage"]["reasoning_tokens"] == 0
    assert off["message"] == {"role": "assistant", "content": "Blue, because of Rayleigh.", "reasoning": None}
    with httpx.stream("POST", f"{server}/api/chat", json={**body, "stream": True}, timeout=60) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines()
                  if line.startswith("data: ") and line != "data: [DONE]"]
    assert "".join(e.get("reasoning_delta", "") for e in events) == "The sky scatters blue light."
    assert "".join(e.get("delta", "") for e in events) == "Rayleigh scattering."



def test_the_deprecated_functions_api_is_a_400_naming_it(server):
    body = {"model": "scripted", "messages": [{"role": "user", "content": "weather"}],
            "functions": [{"name": "get_weather", "parameters": {"type": "object"}}]}
    response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400 and response.json()["error"]["param"] == "functions"
