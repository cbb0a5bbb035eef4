"""Cloud routes through the live server with the real openai SDK: pass-through, fallback, 502/504,
and credential masking in API answers, CLI output, logs and the database."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest
from click.testing import CliRunner

from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from tests.support.auth_server import sqlite_container
from tests.support.fake_providers import FakeProvider
from tests.support.frontends import serve_in_thread

SECRET = "sk-route-test-abcdef0123456789"
MESSAGES = [{"role": "user", "content": "echo these words"}]


@pytest.fixture(scope="module")
def provider():
    with FakeProvider(reply="The cloud says hi", api_key=SECRET) as p:
        yield p


@pytest.fixture(scope="module")
def server(tmp_path_factory, provider):
    home = tmp_path_factory.mktemp("mlxm-home")
    container = sqlite_container(home, request_timeout_seconds=1.0)
    with serve_in_thread(create_app(container)) as url:
        # Auth is off on loopback, but credentials and routes are changed with an admin key (issue 12).
        admin = {"Authorization": f"Bearer {container.api_key_service().create('owner').secret}"}
        for backend, base in (("openai_compatible", provider.openai_base_url),
                              ("anthropic_compatible", provider.anthropic_base_url)):
            response = httpx.put(f"{url}/api/credentials/{backend}", json={"api_key": SECRET, "base_url": base},
                                 headers=admin)
            assert response.status_code == 200 and SECRET not in response.text
            assert response.json()["api_key"] == "sk-...6789"
        for mapping in (
            {"model_pattern": "gpt-fake", "backend_type": "openai_compatible", "backend_model": "up-gpt"},
            {"model_pattern": "claude-", "pattern_type": "prefix", "backend_type": "anthropic_compatible"},
            {"model_pattern": "tiny-fallback", "backend_type": "openai_compatible", "fallback_backend": "local",
             "priority": 5},
        ):
            assert httpx.post(f"{url}/api/mappings", json=mapping, headers=admin).status_code == 201
        yield url, container, home


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key="x", max_retries=0, timeout=30)


@pytest.mark.parametrize("model, upstream_path", [("gpt-fake", "/v1/chat/completions"),
                                                  ("claude-3-fake", "/v1/messages")])
def test_routes_pass_through_streaming_and_not(client, provider, model, upstream_path):
    provider.clear()
    answer = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=50)
    assert answer.choices[0].message.content == provider.reply and answer.model == model
    assert answer.usage.completion_tokens == len(provider.deltas)
    assert provider.requests[-1].path == upstream_path
    stream = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=50, stream=True,
                                            stream_options={"include_usage": True})
    deltas = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert deltas == provider.deltas
    if model == "gpt-fake":
        assert provider.requests[-1].body["model"] == "up-gpt"


@pytest.mark.parametrize("fault", ["status_500", "drop", "slow"])
def test_fallback_to_the_local_model(client, provider, fault):
    provider.inject(fault, times=1)
    answer = client.chat.completions.create(model="tiny-fallback", messages=MESSAGES, max_tokens=3)
    assert answer.choices[0].message.content == "echo these words"  # the local fake runtime's answer
    provider.clear()
    answer = client.chat.completions.create(model="tiny-fallback", messages=MESSAGES, max_tokens=3)
    assert answer.choices[0].message.content == "".join(provider.deltas[:3])  # the cloud's, max_tokens passed on


def test_without_fallback_a_timeout_is_504_and_a_5xx_is_502(client, provider):
    provider.inject("slow", times=1)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
    assert info.value.status_code == 504 and info.value.body["type"] == "backend_timeout"
    provider.inject("status_500", times=1)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
    assert info.value.status_code == 502 and "500" in info.value.message


def test_a_stream_cut_mid_way_reports_an_error_in_band(server, provider):
    provider.inject("drop_mid_stream", times=1)
    body = {"model": "gpt-fake", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{server[0]}/v1/chat/completions", json=body, timeout=30) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert response.status_code == 200
    assert any('"content":"The"' in line for line in lines)
    assert any('"backend_error"' in line for line in lines) and lines[-1] == "data: [DONE]"


def test_credentials_are_masked_everywhere(server, provider, client, caplog, capsys):
    url, container, home = server
    caplog.set_level(logging.DEBUG)
    listed = httpx.get(f"{url}/api/credentials")
    assert listed.status_code == 200 and SECRET not in listed.text
    assert {c["api_key"] for c in listed.json()} == {"sk-...6789"}
    result = CliRunner().invoke(cli, ["credentials", "list", "--json"], obj=container)
    assert result.exit_code == 0 and "sk-...6789" in result.output and SECRET not in result.output
    provider.inject("status_400", times=1)
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
    client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
    captured = capsys.readouterr()
    assert SECRET not in caplog.text and SECRET not in captured.out + captured.err
    for path in home.glob("mlxm.db*"):
        assert SECRET.encode() not in path.read_bytes()
    # The key set from the CLI is read from a prompt, never from argv, and echoed masked.
    result = CliRunner().invoke(cli, ["credentials", "set", "openai"], input="sk-from-prompt-000011112222\n",
                                obj=container)
    assert result.exit_code == 0 and "sk-...2222" in result.output
    assert "sk-from-prompt-000011112222" not in result.output


@pytest.mark.parametrize("model", ["gpt-fake", "claude-3-fake"])
def test_tools_on_a_cloud_route_are_a_400_not_silently_dropped(client, provider, model):
    before = len(provider.requests)
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=MESSAGES, tools=[tool])
    assert "tool calling is not forwarded" in str(caught.value)
    assert len(provider.requests) == before  # refused before any upstream call


@pytest.mark.parametrize("extra, name", [
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
])
def test_local_engine_options_on_a_cloud_route_are_a_400_not_silently_dropped(client, provider, extra, name):
    before = len(provider.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-fake", messages=MESSAGES, **extra)
    assert f"{name} is not forwarded" in str(caught.value)
    assert len(provider.requests) == before
