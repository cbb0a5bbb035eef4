"""`/v1/responses` through the real `openai` SDK (`client.responses.create` / `.stream`), over uvicorn,
on the scripted tiny model: text, function calls, function_call_output answered, reasoning, streaming."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.scripted_models import TOOL_SCRIPTS, build_scripted_model
from tests.support.served_models import openai_client, serving

pytestmark = pytest.mark.slow

WEATHER_TOOL = {
    "type": "function", "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    scripted = build_scripted_model(tmp_path_factory.mktemp("models") / "scripted")
    with serving(tmp_path_factory.mktemp("mlxm-home"), {"scripted": scripted}) as (url, _):
        yield url


@pytest.fixture
def client(server):
    return openai_client(server)


def test_text_response(client):
    response = client.responses.create(model="scripted", input="hi", temperature=0)
    assert response.status == "completed"
    assert response.output_text == "Hello from a script."
    assert [item.type for item in response.output] == ["message"]
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0


def test_function_call_then_output_is_answered(client):
    first = client.responses.create(model="scripted", input="What is the weather in Paris?", tools=[WEATHER_TOOL],
                                    temperature=0, store=False)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"} and call.call_id
    second = client.responses.create(
        model="scripted", tools=[WEATHER_TOOL], temperature=0, store=False,
        input=[{"role": "user", "content": "What is the weather in Paris?"},
               {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
               {"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature_c": 22}'}])
    assert second.output_text == "It is sunny in Paris, 22 C."


def test_parallel_function_calls(client):
    response = client.responses.create(model="scripted", input="Paris and Tokyo in parallel", temperature=0,
                                       tools=[WEATHER_TOOL, {**WEATHER_TOOL, "name": "get_time"}])
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"}),
                                                                 ("get_time", {"city": "Tokyo"})]


def test_reasoning_item(client):
    response = client.responses.create(model="scripted", input="think", temperature=0)
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output[0].content[0].text == "The sky scatters blue light."
    assert response.output_text == "Rayleigh scattering."
    off = client.responses.create(model="scripted", input="think", temperature=0, reasoning={"effort": "none"})
    assert [item.type for item in off.output] == ["message"] and off.output_text == "Blue, because of Rayleigh."


# The script's tokens from `<think>` through `</think>`: the markers are part of the thinking.
THINKING_TOKENS = TOOL_SCRIPTS["think"].index("</think>") + 1


def test_reasoning_tokens_are_counted_in_usage(client):
    response = client.responses.create(model="scripted", input="think", temperature=0)
    assert response.usage.output_tokens == len(TOOL_SCRIPTS["think"])
    assert response.usage.output_tokens_details.reasoning_tokens == THINKING_TOKENS
    off = client.responses.create(model="scripted", input="think", temperature=0, reasoning={"effort": "none"})
    assert off.usage.output_tokens > 0 and off.usage.output_tokens_details.reasoning_tokens == 0


def test_reasoning_tokens_are_counted_when_streamed(client):
    stream = client.responses.create(model="scripted", input="think", temperature=0, stream=True)
    final = [event for event in stream if event.type == "response.completed"][-1].response
    assert final.usage.output_tokens_details.reasoning_tokens == THINKING_TOKENS


def test_streaming_text_with_the_sdks_stream_helper(client):
    with client.responses.stream(model="scripted", input="hi", temperature=0) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Hello from a script." and final.output_text == "Hello from a script."


def test_streaming_function_call_events(client):
    stream = client.responses.create(model="scripted", input="weather in Paris", tools=[WEATHER_TOOL],
                                     temperature=0, stream=True)
    events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_item.added" in kinds and "response.function_call_arguments.delta" in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [(i.type, i.name, json.loads(i.arguments)) for i in done] == [("function_call", "get_weather",
                                                                          {"city": "Paris"})]
    with client.responses.stream(model="scripted", input="weather in Paris", tools=[WEATHER_TOOL],
                                 temperature=0) as helper:
        final = helper.get_final_response()
    assert [(i.type, i.name) for i in final.output] == [("function_call", "get_weather")]


def test_streaming_reasoning_then_text(client):
    stream = client.responses.create(model="scripted", input="think", temperature=0, stream=True)
    events = list(stream)
    reasoning = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert (reasoning, text) == ("The sky scatters blue light.", "Rayleigh scattering.")
    final = events[-1].response
    assert [item.type for item in final.output] == ["reasoning", "message"]


def test_max_output_tokens_makes_an_incomplete_response(client):
    response = client.responses.create(model="scripted", input="hi", temperature=0, max_output_tokens=1)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize("extra", [
    {"previous_response_id": "resp_123"},
    {"tools": [{"type": "web_search"}]},
    {"tools": [{"type": "function", "name": "has spaces"}]},
    {"tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "name": "nope"}},
    {"input": [{"type": "mystery"}]},
])
def test_bad_requests_are_a_4xx_json_error(server, extra):
    body = {"model": "scripted", "input": "hi", **extra}
    response = httpx.post(f"{server}/v1/responses", json=body, timeout=60)
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["message"]

