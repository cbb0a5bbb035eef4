"""OpenAI / Anthropic / /api/chat generation options over the real service and pool with the fake runtime:
n choices, logprobs shapes (streamed too), a list of prompts, response_format reaching the runtime,
and prompt-cache reuse reported in usage."""

import json

import pytest
from starlette.testclient import TestClient

from domain.profiles.constraints import OutputConstraint
from domain.enums import ModelType
from entrypoints.http.app import create_app
from tests.support.frontends import add_models, fake_container


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN))
    with TestClient(create_app(container)) as client:
        yield client, container


def _events(response):
    assert response.status_code == 200, response.text
    lines = [line for line in response.text.split("\n\n") if line]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines[:-1]]


CHAT = {"model": "tiny-llama", "messages": [{"role": "user", "content": "alpha beta gamma"}], "max_tokens": 3}


def test_n_choices_each_with_an_index_and_summed_usage(env):
    client, container = env
    data = client.post("/v1/chat/completions", json={**CHAT, "n": 2}).json()
    assert [c["index"] for c in data["choices"]] == [0, 1]
    assert data["choices"][0]["message"]["content"] == "alpha beta gamma"
    assert data["choices"][1]["message"]["content"] == "beta gamma alpha"  # the fake starts choice i i words on
    assert data["usage"]["completion_tokens"] == 6
    assert container.runtime().requests[-1].n == 2
    events = _events(client.post("/v1/chat/completions", json={**CHAT, "n": 2, "stream": True}))
    by_index = {0: "", 1: ""}
    finishes = {}
    for event in events:
        for choice in event["choices"]:
            by_index[choice["index"]] += choice["delta"].get("content") or ""
            if choice["finish_reason"]:
                finishes[choice["index"]] = choice["finish_reason"]
    assert by_index == {0: "alpha beta gamma", 1: "beta gamma alpha"}
    assert finishes == {0: "length", 1: "length"}


def test_chat_logprobs_in_openais_shape_streamed_too(env):
    client, container = env
    data = client.post("/v1/chat/completions", json={**CHAT, "logprobs": True, "top_logprobs": 2}).json()
    content = data["choices"][0]["logprobs"]["content"]
    assert [e["token"] for e in content] == ["alpha", " beta", " gamma"]
    assert all(set(e) == {"token", "logprob", "bytes", "top_logprobs"} for e in content)
    assert content[1]["bytes"] == list(b" beta")
    assert [t["token"] for t in content[0]["top_logprobs"]] == ["alpha", "beta"]
    params = container.runtime().requests[-1].params
    assert params.logprobs is True and params.top_logprobs == 2
    events = _events(client.post("/v1/chat/completions", json={**CHAT, "logprobs": True, "stream": True}))
    streamed = [e for ev in events for c in ev["choices"] if c.get("logprobs") for e in c["logprobs"]["content"]]
    assert [e["token"] for e in streamed] == ["alpha", " beta", " gamma"]
    plain = client.post("/v1/chat/completions", json=CHAT).json()
    assert plain["choices"][0]["logprobs"] is None


def test_completion_logprobs_in_the_legacy_shape(env):
    client, _ = env
    body = {"model": "tiny-llama", "prompt": "x y", "max_tokens": 2, "logprobs": 1, "echo": True}
    choice = client.post("/v1/completions", json=body).json()["choices"][0]
    assert choice["text"] == "x yx y"
    assert choice["logprobs"]["tokens"] == ["x", " y"]
    assert choice["logprobs"]["token_logprobs"] == [-0.5, -0.5]
    assert choice["logprobs"]["top_logprobs"] == [{"x": -1.0}, {"x": -1.0}]
    assert choice["logprobs"]["text_offset"] == [3, 4]  # after the echoed prompt
    events = _events(client.post("/v1/completions", json={**body, "echo": False, "stream": True}))
    tokens = [t for e in events for c in e["choices"] if c.get("logprobs") for t in c["logprobs"]["tokens"]]
    assert tokens == ["x", " y"]


def test_a_list_of_prompts_is_answered_together_with_prompt_major_indexes(env):
    client, container = env
    body = {"model": "tiny-llama", "prompt": ["one two", "three four"], "max_tokens": 2, "n": 2}
    data = client.post("/v1/completions", json=body).json()
    texts = {c["index"]: c["text"] for c in data["choices"]}
    assert texts == {0: "one two", 1: "two one", 2: "three four", 3: "four three"}
    assert data["usage"]["prompt_tokens"] == 4 and data["usage"]["completion_tokens"] == 8
    events = _events(client.post("/v1/completions", json={**body, "stream": True,
                                                          "stream_options": {"include_usage": True}}))
    streamed: dict[int, str] = {}
    for event in events:
        for choice in event["choices"]:
            streamed[choice["index"]] = streamed.get(choice["index"], "") + choice["text"]
    assert streamed == texts
    assert events[-1]["usage"]["completion_tokens"] == 8
    too_many = client.post("/v1/completions", json={**body, "prompt": ["p"] * 33})
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "prompt"


def test_response_format_reaches_the_runtime_as_an_output_constraint(env):
    client, container = env
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {**CHAT, "response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": schema,
                                                                               "strict": True}}}
    assert client.post("/v1/chat/completions", json=body).status_code == 200
    assert container.runtime().requests[-1].constraint == OutputConstraint("json_schema", json.dumps(schema))
    assert client.post("/v1/chat/completions", json={**CHAT, "response_format": {"type": "json_object"},
                                                     "stream": True}).status_code == 200
    assert container.runtime().requests[-1].constraint == OutputConstraint("json_object")
    api_chat = client.post("/api/chat", json={"model": "tiny-llama", "messages": CHAT["messages"],
                                              "response_format": {"type": "json_object"}})
    assert api_chat.status_code == 200
    assert container.runtime().requests[-1].constraint == OutputConstraint("json_object")


def test_penalties_reach_the_runtime(env):
    client, container = env
    client.post("/v1/chat/completions", json={**CHAT, "presence_penalty": 0.5, "frequency_penalty": -0.25})
    params = container.runtime().requests[-1].params
    assert (params.presence_penalty, params.frequency_penalty) == (0.5, -0.25)


def test_cached_prompt_tokens_are_reported_by_every_protocol(env):
    client, _ = env
    first = client.post("/v1/chat/completions", json=CHAT).json()
    assert first["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    again = client.post("/v1/chat/completions", json=CHAT).json()
    cached = again["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert 0 < cached < again["usage"]["prompt_tokens"]
    events = _events(client.post("/v1/chat/completions", json={**CHAT, "stream": True,
                                                               "stream_options": {"include_usage": True}}))
    assert events[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == cached
    anthropic = {"model": "tiny-llama", "max_tokens": 3, "messages": CHAT["messages"]}
    message = client.post("/v1/messages", json=anthropic).json()
    assert message["usage"]["cache_read_input_tokens"] == cached
    assert message["usage"]["input_tokens"] == again["usage"]["prompt_tokens"] - cached
    streamed = client.post("/v1/messages", json={**anthropic, "stream": True}).text
    assert f'"cache_read_input_tokens":{cached}' in streamed
    api_chat = client.post("/api/chat", json={"model": "tiny-llama", "messages": CHAT["messages"]}).json()
    assert api_chat["usage"]["cached_tokens"] == cached


def test_a_profiles_response_format_applies_unless_the_request_brings_its_own(env):
    client, container = env
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    created = client.post("/api/profiles", json={
        "name": "structured", "model": "tiny-llama",
        "context": {"response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}}})
    assert created.status_code == 201, created.text
    shown = client.get("/api/profiles/structured").json()
    assert shown["context"]["response_format"]["json_schema"]["schema"] == schema
    messages = [{"role": "user", "content": "hi"}]
    client.post("/v1/chat/completions", json={"model": "structured", "messages": messages, "max_tokens": 2})
    assert container.runtime().requests[-1].constraint == OutputConstraint("json_schema", json.dumps(schema))
    client.post("/v1/chat/completions", json={"model": "structured", "messages": messages, "max_tokens": 2,
                                              "response_format": {"type": "json_object"}})
    assert container.runtime().requests[-1].constraint == OutputConstraint("json_object")
    client.post("/api/chat", json={"model": "structured", "messages": messages})
    assert container.runtime().requests[-1].constraint == OutputConstraint("json_schema", json.dumps(schema))
    bad = client.post("/api/profiles", json={"name": "bad", "model": "tiny-llama",
                                             "context": {"response_format": {"type": "xml"}}})
    assert bad.status_code in (400, 422) and "response_format" in bad.text


def test_a_list_of_prompts_where_one_is_refused_is_a_400_while_another_still_runs(env, monkeypatch):
    """One prompt's generation fails (a 400) while another prompt's generation is still inside the model:
    that one cannot be closed from here ("generator already executing") and must not turn the 400 into a 500."""
    import time

    from application.errors import InvalidRequest

    client, container = env
    runtime = container.runtime()
    generate = runtime.generate

    def slow_or_refused(model, request):
        if request.prompt == "refused":
            raise InvalidRequest("logprobs: refused for this test")
        chunks = generate(model, request)

        def slow():
            time.sleep(1.0)  # still generating when the other prompt fails
            yield from chunks

        return slow()

    monkeypatch.setattr(runtime, "generate", slow_or_refused)
    response = client.post("/v1/completions", json={"model": "tiny-llama", "prompt": ["slow words", "refused"],
                                                     "max_tokens": 2})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"] == "logprobs: refused for this test"
