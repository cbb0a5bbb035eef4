"""The OpenAI-compatible routes over the real inference service, pool and an in-memory runtime."""

import base64
import io
import json
import struct
import wave

import pytest
from starlette.testclient import TestClient

from domain.enums import ModelType
from entrypoints.http.app import create_app
from tests.support.frontends import add_models, fake_container


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN), ("tiny-whisper", ModelType.AUDIO),
               ("tiny-embed", ModelType.EMBEDDINGS))
    with TestClient(create_app(container)) as client:
        yield client, container


def _error(response, status):
    assert response.status_code == status, response.text
    return response.json()["error"]


def _events(response):
    lines = [line for line in response.text.split("\n\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines[:-1]]


def test_models_lists_installed_models_and_profiles(env):
    client, container = env
    container.profile_service().create("chatty", "tiny-llama", inference={"temperature": 0.7})
    data = client.get("/v1/models").json()
    assert data["object"] == "list"
    ids = {m["id"]: m for m in data["data"]}
    assert set(ids) == {"tiny-llama", "tiny-whisper", "tiny-embed", "chatty"}
    assert ids["chatty"]["owned_by"] == "mlxm-profile:tiny-llama" and ids["tiny-llama"]["object"] == "model"


def test_chat_non_streaming_applies_the_cascade_and_reports_usage(env):
    client, container = env
    container.profile_service().create("chatty", "tiny-llama", inference={"temperature": 0.7, "max_tokens": 3})
    body = client.post("/v1/chat/completions", json={
        "model": "chatty", "temperature": 0, "messages": [{"role": "user", "content": "alpha beta gamma delta"}],
    }).json()
    assert body["object"] == "chat.completion" and body["model"] == "chatty"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "alpha beta gamma"}
    assert choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 3
    seen = container.runtime().requests[-1].params
    assert seen.temperature == 0 and seen.max_tokens == 3  # request 0 beats profile 0.7; profile max_tokens applies


def test_chat_stream_sends_role_deltas_finish_usage_and_done(env):
    client, _ = env
    response = client.post("/v1/chat/completions", json={
        "model": "tiny-llama", "max_completion_tokens": 4, "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": [{"type": "text", "text": "one two"}]}],
    })
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert text == "one two one two"
    finals = [e for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == "length"
    assert finals[0]["choices"][0]["delta"] == {}  # as OpenAI sends it, not {"role": null, "content": null}
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 4
    assert all(e["object"] == "chat.completion.chunk" and e["id"] == events[0]["id"] for e in events)
    # Hand-formatted per-token events keep the DTO's shape (and "usage": null when usage was asked for).
    from entrypoints.http.inference.openai_schemas import ChatCompletionChunk, Completion

    for event in events:
        assert ChatCompletionChunk.model_validate(event).id == events[0]["id"]
        assert "usage" in event
    plain = _events(client.post("/v1/chat/completions", json={
        "model": "tiny-llama", "max_tokens": 2, "stream": True, "messages": [{"role": "user", "content": "a b"}]}))
    assert all("usage" not in e for e in plain)
    completion_events = _events(client.post("/v1/completions", json={
        "model": "tiny-llama", "prompt": "p q", "max_tokens": 2, "stream": True}))
    assert [Completion.model_validate(e).choices[0].text for e in completion_events] == ["p", " q", ""]


def test_stop_strings_and_completions(env):
    client, _ = env
    chat = client.post("/v1/chat/completions", json={
        "model": "tiny-llama", "stop": "gamma", "messages": [{"role": "user", "content": "alpha beta gamma delta"}],
    }).json()
    assert chat["choices"][0]["message"]["content"] == "alpha beta " and chat["choices"][0]["finish_reason"] == "stop"
    completion = client.post("/v1/completions", json={"model": "tiny-llama", "prompt": "x y", "max_tokens": 3}).json()
    assert completion["object"] == "text_completion" and completion["choices"][0]["text"] == "x y x"
    streamed = _events(client.post("/v1/completions", json={"model": "tiny-llama", "prompt": "x y", "max_tokens": 3, "stream": True}))
    assert "".join(e["choices"][0]["text"] for e in streamed) == "x y x"


@pytest.mark.parametrize(
    "payload, status, param",
    [
        ({"n": 0}, 400, "n"),
        ({"n": 17}, 400, "n"),
        ({"top_logprobs": 3}, 400, "top_logprobs"),  # without logprobs: true
        ({"response_format": {"type": "xml"}}, 400, "response_format"),
        ({"response_format": {"type": "json_schema"}}, 400, "response_format"),
        ({"presence_penalty": 3}, 422, "presence_penalty"),
        ({"logprobs": True, "top_logprobs": 21}, 422, "top_logprobs"),
        ({"temperature": 5}, 422, "temperature"),
        ({"top_p": -1}, 422, "top_p"),
        ({"max_tokens": 0}, 422, "max_tokens"),
        ({"temperature": "warm"}, 422, "temperature"),
        ({"messages": []}, 422, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, 422, None),
    ],
)
def test_chat_parameter_mistakes_are_4xx(env, payload, status, param):
    client, _ = env
    body = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], **payload}
    error = _error(client.post("/v1/chat/completions", json=body), status)
    if param:
        assert error["param"].startswith(param)


def test_unknown_models_and_wrong_model_types(env):
    client, _ = env
    messages = [{"role": "user", "content": "hi"}]
    missing = _error(client.post("/v1/chat/completions", json={"model": "tiny-lama", "messages": messages}), 404)
    assert "tiny-llama" in missing["suggestions"]
    not_installed = _error(client.post("/v1/chat/completions", json={"model": "qwen3-4b", "messages": messages}), 404)
    assert not_installed["type"] == "model_not_installed"
    assert "text generation" in _error(client.post("/v1/chat/completions", json={"model": "tiny-whisper", "messages": messages}), 400)["message"]
    _error(client.post("/v1/audio/speech", json={"model": "tiny-llama", "input": "hello"}), 400)
    _error(client.post("/v1/embeddings", json={"model": "tiny-llama", "input": "hello"}), 400)


def test_speech_returns_wav_and_transcription_formats(env):
    client, container = env
    speech = client.post("/v1/audio/speech", json={"model": "tiny-whisper", "input": "hello there", "speed": 2.0})
    assert speech.status_code == 200 and speech.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(speech.content)) as wav:
        assert wav.getnframes() > 0
    assert container.runtime().speech_requests[-1][1].speed == 2.0
    files = {"file": ("speech.wav", speech.content, "audio/wav")}
    as_json = client.post("/v1/audio/transcriptions", data={"model": "tiny-whisper"}, files=files).json()
    assert as_json["text"].endswith("seconds of audio")
    text = client.post("/v1/audio/transcriptions", data={"model": "tiny-whisper", "response_format": "text"}, files=files)
    assert text.headers["content-type"].startswith("text/plain") and text.text == as_json["text"]
    verbose = client.post("/v1/audio/transcriptions", data={"model": "tiny-whisper", "response_format": "verbose_json"},
                          files=files).json()
    assert verbose["language"] == "en" and verbose["segments"][0]["text"] == as_json["text"]
    _error(client.post("/v1/audio/transcriptions", data={"model": "tiny-whisper", "response_format": "srt"}, files=files), 422)
    # The upload route takes multipart only: a form-urlencoded or JSON body is refused at the edge (415).
    assert _error(client.post("/v1/audio/transcriptions", data={"model": "tiny-whisper"}), 415)["type"] == "unsupported_media_type"
    assert _error(client.post("/v1/audio/transcriptions", json={"model": "tiny-whisper"}), 415)["type"] == "unsupported_media_type"
    _error(client.post("/v1/audio/speech", json={"model": "tiny-whisper", "input": "x", "speed": 9}), 422)


def test_embeddings_float_and_base64(env):
    client, _ = env
    floats = client.post("/v1/embeddings", json={"model": "tiny-embed", "input": ["a", "b"]}).json()
    assert [d["index"] for d in floats["data"]] == [0, 1]
    vector = floats["data"][0]["embedding"]
    encoded = client.post("/v1/embeddings", json={"model": "tiny-embed", "input": "a", "encoding_format": "base64"}).json()
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert decoded == pytest.approx(vector, rel=1e-6)


def test_management_chat_with_profile_and_overrides(env):
    client, container = env
    profile = container.profile_service().create("chatty", "tiny-llama", inference={"max_tokens": 2, "temperature": 0.9})
    body = client.post("/api/chat", json={
        "profile_id": profile.id, "overrides": {"temperature": 0}, "messages": [{"role": "user", "content": "p q r"}],
    }).json()
    assert body["message"]["content"] == "p q" and body["profile"] == "chatty" and body["usage"]["completion_tokens"] == 2
    assert container.runtime().requests[-1].params.temperature == 0
    # Neither a profile nor a model: the selected model answers (issue 15); none is installed here, so the
    # error says how to get it.
    assert "mlxm pull" in _error(client.post("/api/chat", json={"messages": [{"role": "user", "content": "x"}]}),
                                 404)["message"]
    _error(client.post("/api/chat", json={"profile_id": 999, "messages": [{"role": "user", "content": "x"}]}), 404)
    _error(client.post("/api/chat", json={"model": "tiny-llama", "overrides": {"top_p": 3},
                                          "messages": [{"role": "user", "content": "x"}]}), 422)


def test_pool_load_list_unload(env):
    client, container = env
    container.profile_service().create("chatty", "tiny-llama")
    assert client.get("/api/pool").json()["loaded"] == []
    assert client.post("/api/pool/load", json={"model": "chatty"}).json() == {"model_id": "tiny-llama", "loaded": True}
    pool = client.get("/api/pool").json()
    assert [m["model_id"] for m in pool["loaded"]] == ["tiny-llama"] and pool["max_models"] == 2
    assert client.post("/api/pool/unload", json={"model": "tiny-llama"}).json() == {"model_id": "tiny-llama", "loaded": False}
    assert container.runtime().unloads == ["tiny-llama"]
    _error(client.post("/api/pool/unload", json={"model": "tiny-llama"}), 404)
    _error(client.post("/api/pool/load", json={"model": "nope"}), 404)


def test_pool_shows_each_models_prompt_cache_and_counts_it_in_used_bytes(env):
    from adapters.memory.runtime import FAKE_CACHE_BYTES_PER_TOKEN

    client, container = env
    chat = {"model": "tiny-llama", "max_tokens": 2, "messages": [{"role": "user", "content": "alpha beta gamma"}]}
    assert client.post("/v1/chat/completions", json=chat).status_code == 200
    assert client.post("/v1/audio/speech", json={"model": "tiny-whisper", "input": "hi"}).status_code == 200
    pool = client.get("/api/pool").json()
    loaded = {m["model_id"]: m for m in pool["loaded"]}
    assert loaded["tiny-llama"]["prompt_cache"] == {  # "user: alpha beta gamma": 4 words of 100 bytes
        "bytes": 4 * FAKE_CACHE_BYTES_PER_TOKEN, "entries": 1, "max_entries": 10, "max_bytes": 2 << 30}
    assert loaded["tiny-whisper"]["prompt_cache"] is None  # audio models have none
    assert pool["used_bytes"] == container.model_pool().total_bytes == (
        loaded["tiny-llama"]["size_bytes"] + loaded["tiny-whisper"]["size_bytes"] + 4 * FAKE_CACHE_BYTES_PER_TOKEN)
    assert client.post("/api/pool/unload", json={"model": "tiny-llama"}).status_code == 200
    assert [m["model_id"] for m in client.get("/api/pool").json()["loaded"]] == ["tiny-whisper"]


def _finishing_with(container, reason):
    """The runtime ends generation with `reason`, as a cloud backend passing OpenAI's own value through would."""
    from application.inference.ports import GenerationChunk

    runtime = container.runtime()
    runtime.generate = lambda model, request: iter([GenerationChunk("Hi", 3, 1, None), GenerationChunk("", 3, 2, reason)])


@pytest.mark.parametrize("reason, expected", [
    ("content_filter", "content_filter"), ("tool_calls", "tool_calls"), ("length", "length"),
    ("end_turn", "stop"),  # a reason OpenAI does not document reads as "stop"
])
def test_any_finish_reason_reaches_the_client_as_an_openai_value(env, reason, expected):
    client, container = env
    _finishing_with(container, reason)
    chat = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}]}
    answer = client.post("/v1/chat/completions", json=chat)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["finish_reason"] == expected
    streamed = _events(client.post("/v1/chat/completions", json={**chat, "stream": True}))
    assert "error" not in streamed[-1] and streamed[-1]["choices"][0]["finish_reason"] == expected
    text = client.post("/v1/completions", json={"model": "tiny-llama", "prompt": "hi"})
    assert text.status_code == 200 and text.json()["choices"][0]["finish_reason"] == expected


def test_a_response_dto_that_fails_validation_is_a_500_not_the_clients_fault():
    from pydantic import BaseModel
    from starlette.applications import Starlette
    from starlette.routing import Route

    from entrypoints.http.errors import EXCEPTION_HANDLERS
    from entrypoints.http.openapi import parse_body

    class Strict(BaseModel):
        count: int

    async def bad_response(request):
        Strict(count="not a number")  # the server's own bug

    async def bad_request(request):
        await parse_body(request, Strict)

    app = Starlette(routes=[Route("/response", bad_response, methods=["POST"]),
                            Route("/request", bad_request, methods=["POST"])],
                    exception_handlers=EXCEPTION_HANDLERS)
    with TestClient(app, raise_server_exceptions=False) as client:
        server_bug = client.post("/response", json={"count": "x"})
        assert server_bug.status_code == 500 and server_bug.json()["error"]["type"] == "server_error"
        client_mistake = client.post("/request", json={"count": "x"})
        assert client_mistake.status_code == 422 and client_mistake.json()["error"]["param"] == "count"


@pytest.mark.parametrize("extra, field", [
    ({"tool_choice": "required"}, "tool_choice"),
])
def test_openai_features_local_models_cannot_honour_are_a_400_naming_the_field(env, extra, field):
    client, container = env
    before = len(container.runtime().requests)
    error = _error(client.post("/v1/chat/completions", json={
        "model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], **extra}), 400)
    assert error["type"] == "invalid_request_error" and error["param"] == field and field in error["message"]
    assert len(container.runtime().requests) == before  # refused before any generation


def test_harmless_defaults_of_those_fields_are_accepted(env):
    client, _ = env
    chat = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    for extra in ({"tools": []}, {"tool_choice": "none"}, {"tool_choice": "auto"}, {"response_format": {"type": "text"}},
                  {"logprobs": False}, {"top_logprobs": 0}):
        assert client.post("/v1/chat/completions", json={**chat, **extra}).status_code == 200, extra
    legacy = {"model": "tiny-llama", "prompt": "hi", "max_tokens": 1}
    assert client.post("/v1/completions", json={**legacy, "logprobs": 0}).status_code == 200


def test_pool_load_and_model_retrieval_resolve_names_as_inference_does(env):
    client, container = env
    container.profile_service().create("chatty", "tiny-llama")
    # A catalog name that is not installed: the same "not installed" answer (with the pull hint) as a chat.
    for call in (lambda: client.post("/api/pool/load", json={"model": "qwen3-4b"}),
                 lambda: client.get("/v1/models/qwen3-4b"),
                 lambda: client.post("/v1/chat/completions",
                                     json={"model": "qwen3-4b", "messages": [{"role": "user", "content": "x"}]})):
        error = _error(call(), 404)
        assert error["type"] == "model_not_installed" and "mlxm pull" in error["message"]
    assert client.get("/v1/models/chatty").json()["owned_by"] == "mlxm-profile:tiny-llama"
    assert "tiny-llama" in _error(client.get("/v1/models/tiny-lama"), 404)["suggestions"]
    # Unloading a model that is gone from the library still reaches the pool by its id.
    assert client.post("/api/pool/load", json={"model": "chatty"}).json()["model_id"] == "tiny-llama"
    with container.uow_factory() as uow:
        uow.models.remove("tiny-llama")
        uow.commit()
    assert client.post("/api/pool/unload", json={"model": "tiny-llama"}).json() == {"model_id": "tiny-llama",
                                                                                      "loaded": False}
