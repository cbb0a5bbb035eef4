"""The real `anthropic` SDK against the mlxm server: local models and a cloud route, streaming and not,
with auth on (the SDK's `x-api-key`), and the audit rows those requests leave behind."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from entrypoints.http.app import create_app
from tests.support.auth_server import sqlite_container
from tests.support.fake_providers import FakeProvider
from tests.support.frontends import serve_in_thread

CLOUD_SECRET = "sk-cloud-e2e-0123456789"
PROMPT = "zebra quokka narwhal"  # distinctive words: the database must never contain them


@pytest.fixture(scope="module")
def provider():
    with FakeProvider(reply="Greetings from the fake cloud", api_key=CLOUD_SECRET) as p:
        yield p


@pytest.fixture(scope="module")
def server(tmp_path_factory, provider):
    home = tmp_path_factory.mktemp("mlxm-home")
    container = sqlite_container(home, auth="on")
    admin = container.api_key_service().create("e2e-admin").secret
    container.credential_service().set("openai_compatible", CLOUD_SECRET, base_url=provider.openai_base_url)
    container.backend_mapping_service().add("cloud-", "openai_compatible", pattern_type="prefix",
                                            backend_model="upstream-model")
    with serve_in_thread(create_app(container)) as url:
        yield url, container, admin, home


@pytest.fixture
def client(server):
    url, _, admin, _ = server
    return anthropic.Anthropic(base_url=url, api_key=admin, max_retries=0, timeout=60)


def test_local_model_non_streaming(client):
    message = client.messages.create(
        model="tiny-local", max_tokens=5, system="be terse",
        messages=[{"role": "user", "content": PROMPT}],
    )
    assert [b.type for b in message.content] == ["text"]
    # The fake runtime cycles through the last message's words, one token each.
    assert message.content[0].text == "zebra quokka narwhal zebra quokka"
    assert message.stop_reason == "max_tokens" and message.model == "tiny-local"
    # "system: be terse" + "user: zebra quokka narwhal": the system prompt reached the model.
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 5)


def test_local_model_streaming_matches_non_streaming(client):
    with client.messages.stream(model="tiny-local", max_tokens=4,
                                messages=[{"role": "user", "content": [{"type": "text", "text": PROMPT}]}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "zebra quokka narwhal zebra" == final.content[0].text
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 4


def test_cloud_route_non_streaming_and_streaming(client, provider):
    message = client.messages.create(model="cloud-gpt", max_tokens=20, messages=[{"role": "user", "content": PROMPT}])
    assert message.content[0].text == provider.reply and message.stop_reason == "end_turn"
    upstream = provider.requests[-1]
    assert upstream.body["model"] == "upstream-model" and upstream.headers["authorization"] == f"Bearer {CLOUD_SECRET}"
    assert upstream.body["max_tokens"] == 20 and upstream.body["stream"] is False
    with client.messages.stream(model="cloud-gpt", max_tokens=20,
                                messages=[{"role": "user", "content": PROMPT}]) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert deltas == provider.deltas  # passed through delta by delta
    assert final.usage.output_tokens == len(provider.deltas) and provider.requests[-1].body["stream"] is True
    assert final.usage.input_tokens == 3  # the provider's count of "zebra quokka narwhal", reported at the end


def test_stream_event_sequence(server):
    url, _, admin, _ = server
    body = {"model": "tiny-local", "max_tokens": 3, "stream": True, "messages": [{"role": "user", "content": "a b"}]}
    with httpx.stream("POST", f"{url}/v1/messages", json=body, headers={"x-api-key": admin}, timeout=60) as response:
        assert response.status_code == 200
        events = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert events == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                      "content_block_delta", "content_block_stop", "message_delta", "message_stop"]


def test_auth_and_client_errors_through_the_sdk(server, client):
    url, _, _, _ = server
    bad = anthropic.Anthropic(base_url=url, api_key="mlxm-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="tiny-local", max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="no-such-model", max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="tiny-local", max_tokens=2, messages=[
            {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "http://x"}}]}])
    response = httpx.post(f"{url}/v1/messages", json={"model": "tiny-local", "messages": []},
                          headers={"x-api-key": client.api_key})
    assert response.status_code == 422 and response.json()["error"]["type"] == "invalid_request_error"


def test_audit_rows_have_counts_and_tokens_but_never_text(server, client):
    url, container, admin, home = server
    client.messages.create(model="tiny-local", max_tokens=3, messages=[{"role": "user", "content": PROMPT}])
    container.audit_sink().flush()  # rows are written in batches off the request path
    page = httpx.get(f"{url}/api/audit", params={"model": "tiny-local", "limit": 100},
                     headers={"Authorization": f"Bearer {admin}"}).json()
    rows = page["items"]
    assert page["total"] == len(rows) >= 4
    latest = rows[0]
    assert latest["endpoint"] == "/v1/messages" and latest["backend"] == "local" and latest["status"] == "success"
    assert (latest["prompt_tokens"], latest["completion_tokens"]) == (4, 3) and latest["duration_ms"] >= 0
    assert len(latest["request_id"]) >= 16
    cloud = httpx.get(f"{url}/api/audit", params={"model": "cloud-gpt"},
                      headers={"Authorization": f"Bearer {admin}"}).json()["items"]
    assert {r["backend"] for r in cloud} == {"openai_compatible"} and len(cloud) == 2
    missing = httpx.get(f"{url}/api/audit", params={"status": "error"},
                        headers={"Authorization": f"Bearer {admin}"}).json()["items"]
    assert any(r["model"] == "no-such-model" for r in missing)
    summary = httpx.get(f"{url}/api/audit/summary", headers={"Authorization": f"Bearer {admin}"}).json()
    per_model = {m["model"]: m for m in summary["models"]}
    assert per_model["cloud-gpt"]["requests"] == 2 and per_model["cloud-gpt"]["error_rate"] == 0.0
    # No prompt or completion text anywhere in the database files (WAL included).
    for path in home.glob("mlxm.db*"):
        data = path.read_bytes()
        for word in (b"zebra", b"quokka", b"narwhal", b"Greetings"):
            assert word not in data, (path.name, word)
    assert json.dumps(page).find("zebra") == -1
