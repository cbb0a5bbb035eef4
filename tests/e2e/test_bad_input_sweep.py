"""Findings of the adversarial bad-input sweep of the HTTP API, as the real SDKs meet them on a real server:
each was a 500 (which also dropped the keep-alive connection) or took the server down; each is a 4xx now."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from domain.enums import ModelType
from domain.library.models import Model
from entrypoints.http.app import create_app
MAX_SPEECH_INPUT_CHARS = 4096  # OpenAI documents this bound for `input`
from tests.support.auth_server import sqlite_container
from tests.support.frontends import serve_in_thread

# Nested values that are not text where text is expected: each used to reach a Python loop or a
# `.get` on a non-dict and end as a 500.
NOT_TEXT = [5, 1.5, True, {"type": "text"}, [5], ["x"], [None], [[]]]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("sweep-home")
    container = sqlite_container(home)
    with container.uow_factory() as uow:
        folder = home / "models" / "tiny-voice"
        folder.mkdir(parents=True)
        uow.models.add(Model("tiny-voice", model_type=ModelType.AUDIO, local_path=str(folder), size_bytes=10))
        uow.commit()
    with serve_in_thread(create_app(container)) as url:
        yield url, container


@pytest.fixture
def claude(server):
    return anthropic.Anthropic(base_url=server[0], api_key="local", max_retries=0, timeout=60)


@pytest.fixture
def gpt(server):
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key="local", max_retries=0, timeout=60)


@pytest.mark.parametrize("content", NOT_TEXT, ids=repr)
def test_anthropic_tool_result_content_that_is_not_text_is_a_400(claude, content):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="tiny-local", max_tokens=3, messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": content}]},
        ])
    assert caught.value.body["error"]["type"] == "invalid_request_error" and "tool_result content" in caught.value.message


@pytest.mark.parametrize("content", [5, 1.5, True], ids=repr)
def test_responses_message_content_that_is_not_text_is_a_400(gpt, content):
    with pytest.raises(openai.BadRequestError) as caught:
        gpt.responses.create(model="tiny-local", max_output_tokens=3, input=[{"role": "user", "content": content}])
    assert "input.0.content" in caught.value.message


@pytest.mark.parametrize("output", [5, -1, 1.5, True], ids=repr)
def test_responses_function_call_output_that_is_not_text_is_a_400(gpt, output):
    with pytest.raises(openai.BadRequestError) as caught:
        gpt.responses.create(model="tiny-local", max_output_tokens=3, input=[
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": output},
        ])
    assert "input.2.output" in caught.value.message


def test_the_connection_survives_a_refused_request(server):
    # A 500 used to end the keep-alive connection under the next request (a reset, not an answer).
    with httpx.Client(base_url=server[0], timeout=60) as client:
        bad = client.post("/v1/messages", json={"model": "tiny-local", "max_tokens": 3, "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": 5}]}]})
        assert bad.status_code == 400
        good = client.post("/v1/messages", json={"model": "tiny-local", "max_tokens": 3,
                                                 "messages": [{"role": "user", "content": "hello"}]})
        assert good.status_code == 200 and good.json()["type"] == "message"


def test_speech_input_longer_than_openai_allows_is_refused_before_synthesis(server, gpt):
    _, container = server
    runtime = container.runtime()
    before = len(runtime.speech_requests)
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        gpt.audio.speech.create(model="tiny-voice", voice="alloy", input="hi " * (MAX_SPEECH_INPUT_CHARS // 3 + 1))
    assert caught.value.body["param"] == "input" and str(MAX_SPEECH_INPUT_CHARS) in caught.value.message
    assert len(runtime.speech_requests) == before  # the model never saw it
    # The bound itself is allowed.
    audio = gpt.audio.speech.create(model="tiny-voice", voice="alloy", input="x" * MAX_SPEECH_INPUT_CHARS)
    assert audio.content[:4] == b"RIFF" and runtime.speech_requests[-1][0] == "x" * MAX_SPEECH_INPUT_CHARS


def test_a_cloud_key_that_cannot_be_an_http_header_is_refused_when_saved(server):
    url, container = server
    admin = container.api_key_service().create("sweep-owner").secret  # credential writes need an admin
    with httpx.Client(base_url=url, timeout=60, headers={"authorization": f"Bearer {admin}"}) as client:
        saved = client.put("/api/credentials/openai_compatible",
                           json={"api_key": "sk-caf\u00e9-1234", "base_url": "http://127.0.0.1:9/v1"})
        assert saved.status_code == 400 and saved.json()["error"]["param"] == "api_key"
        assert client.get("/api/credentials").json() == []


@pytest.mark.parametrize("body", [b'{"key": "\\ud800"}', b'{"key": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                                  b'{"key": NaN}'], ids=["lone surrogate", "5000 levels", "NaN"])
def test_the_ui_login_refuses_hostile_json_like_the_api(server, body):
    # /ui/login parsed its body with bare json.loads: a lone surrogate or deep nesting was a 500.
    response = httpx.post(f"{server[0]}/ui/login", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["message"]


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_a_transcription_temperature_that_is_not_a_number_is_a_422(server, value):
    # A JSON body refuses NaN / Infinity; the multipart form took them as floats.
    wav = b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80>\x00\x00\x00}\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00"
    response = httpx.post(f"{server[0]}/v1/audio/transcriptions", files={"file": ("a.wav", wav)},
                          data={"model": "tiny-voice", "temperature": value}, timeout=60)
    assert response.status_code == 422 and response.json()["error"]["param"] == "temperature"


# Schemas llguidance cannot compile for any tokenizer: a dangling $ref, a contradiction, a bad regex.
UNCOMPILABLE_SCHEMAS = [
    {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}},
    {"type": "integer", "minimum": 5, "maximum": 1},
    {"type": "string", "pattern": "(["},
]


@pytest.mark.parametrize("schema", UNCOMPILABLE_SCHEMAS, ids=["dangling $ref", "min > max", "bad pattern"])
def test_a_profile_response_format_that_cannot_be_compiled_is_refused_when_saved(server, schema):
    # It was saved (201), and then every request of the profile was a 400 from the same compiler.
    url, container = server
    with container.uow_factory() as uow:
        if uow.models.find("tiny-text") is None:
            folder = container.settings().manager.models_dir / "tiny-text"
            folder.mkdir(parents=True, exist_ok=True)
            uow.models.add(Model("tiny-text", model_type=ModelType.TEXT_GEN, local_path=str(folder), size_bytes=10))
            uow.commit()
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    good = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    with httpx.Client(base_url=url, timeout=60) as client:
        refused = client.post("/api/profiles", json={"name": "structured", "model": "tiny-text",
                                                     "context": {"response_format": bad}})
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["type"] and "cannot be compiled" in error["message"]
        assert all(p["name"] != "structured" for p in client.get("/api/profiles").json()["data"])
        saved = client.post("/api/profiles", json={"name": "structured", "model": "tiny-text",
                                                   "context": {"response_format": good}})
        assert saved.status_code == 201, saved.text
        try:
            edited = client.patch("/api/profiles/structured", json={"context": {"response_format": bad}})
            assert edited.status_code == 422 and "cannot be compiled" in edited.json()["error"]["message"]
            kept = client.get("/api/profiles/structured").json()
            assert kept["context"]["response_format"]["json_schema"]["schema"] == {"type": "object"}
        finally:
            client.delete("/api/profiles/structured")
