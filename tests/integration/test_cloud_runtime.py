"""The httpx cloud runtimes against the loopback fake provider (OpenAI-style and Anthropic-style)."""

import logging

import pytest

from adapters.cloud.http_runtime import HttpCloudRuntimeFactory
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from adapters.fernet.secrets import FernetSecretCipher
from application.audit.service import AuditService, ImmediateAuditSink
from application.routing.backend_mappings import BackendMappingService
from application.routing.credentials import CredentialService
from application.errors import BackendError, BackendTimeout
from application.routing.ports import CloudEndpoint
from application.inference.ports import ChatMessage, GenerationChunk, GenerationRequest
from application.routing.service import InferenceRouter
from domain.audit.model import AuditQuery
from domain.enums import ApiType, ModelType
from domain.profiles.params import InferenceParams
from pathlib import Path
from tests.support.fake_providers import FakeProvider

SECRET = "sk-fake-0123456789abcdef"
REQUEST = GenerationRequest(
    params=InferenceParams(temperature=0.0, max_tokens=16, stop=("END",)),
    messages=(ChatMessage("system", "be brief"), ChatMessage("user", "say hello please")),
)


@pytest.fixture(scope="module")
def provider():
    with FakeProvider(reply="Hello from the fake cloud", api_key=SECRET) as p:
        yield p


@pytest.fixture
def factory():
    f = HttpCloudRuntimeFactory(timeout=0.5)
    yield f
    f.close()


def runtime_for(factory, provider, api_type):
    base = provider.openai_base_url if api_type is ApiType.OPENAI else provider.anthropic_base_url
    return factory(CloudEndpoint(api_type, base, SECRET))


@pytest.mark.parametrize("api_type", [ApiType.OPENAI, ApiType.ANTHROPIC])
def test_streaming_passes_deltas_through_with_usage(provider, factory, api_type):
    provider.clear()
    runtime = runtime_for(factory, provider, api_type)
    chunks = list(runtime.generate(runtime.load("up-model", Path("."), ModelType.TEXT_GEN), REQUEST))
    texts = [c.text for c in chunks if c.text]
    assert texts == provider.deltas  # one delta per upstream event, in order
    last = chunks[-1]
    assert last.finish_reason == "stop" and last.completion_tokens == 5 and last.prompt_tokens == 5
    sent = provider.requests[-1]
    assert sent.body["model"] == "up-model" and sent.body["stream"] is True
    if api_type is ApiType.ANTHROPIC:
        assert sent.headers["x-api-key"] == SECRET and sent.body["system"] == "be brief"
        assert sent.body["stop_sequences"] == ["END"] and sent.body["max_tokens"] == 16
        assert [m["role"] for m in sent.body["messages"]] == ["user"]
    else:
        assert sent.headers["authorization"] == f"Bearer {SECRET}" and sent.body["temperature"] == 0.0
        assert sent.body["stop"] == ["END"] and sent.body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("api_type", [ApiType.OPENAI, ApiType.ANTHROPIC])
def test_non_streaming_call(provider, factory, api_type):
    provider.clear()
    runtime = runtime_for(factory, provider, api_type)
    chunk = runtime.complete(runtime.load("m", Path("."), ModelType.TEXT_GEN), REQUEST)
    assert chunk.text == provider.reply and chunk.completion_tokens == 5
    assert provider.requests[-1].body["stream"] is False


@pytest.mark.parametrize("fault, error, retryable", [
    ("status_500", BackendError, True),
    ("drop", BackendError, True),
    ("slow", BackendTimeout, True),
    ("status_400", BackendError, False),
])
def test_faults_become_backend_errors(provider, factory, fault, error, retryable):
    runtime = runtime_for(factory, provider, ApiType.OPENAI)
    provider.inject(fault, times=1)
    with pytest.raises(error) as info:
        list(runtime.generate(runtime.load("m", Path("."), ModelType.TEXT_GEN), REQUEST))
    assert info.value.retryable is retryable
    assert SECRET not in str(info.value)


def test_wrong_cloud_key_is_a_non_retryable_502_without_the_key(provider, factory):
    provider.clear()
    runtime = factory(CloudEndpoint(ApiType.ANTHROPIC, provider.anthropic_base_url, "sk-wrong-key-000000"))
    with pytest.raises(BackendError) as info:
        runtime.complete(runtime.load("m", Path("."), ModelType.TEXT_GEN), REQUEST)
    assert "401" in str(info.value) and not info.value.retryable and "sk-wrong" not in str(info.value)


class LocalFake:
    def generate(self, model, request):
        yield GenerationChunk("local fallback", prompt_tokens=3, completion_tokens=2, finish_reason="stop")


@pytest.fixture
def router(provider, factory, tmp_path):
    uow, clock = InMemoryUnitOfWork(), FakeClock()
    audit = AuditService(lambda: uow, clock)
    mappings = BackendMappingService(lambda: uow)
    credentials = CredentialService(lambda: uow, FernetSecretCipher(home=tmp_path), clock)
    credentials.set("openai_compatible", SECRET, base_url=provider.openai_base_url)
    credentials.set("anthropic_compatible", SECRET, base_url=provider.anthropic_base_url)
    return InferenceRouter(mappings, credentials, factory, LocalFake(), ImmediateAuditSink(audit), clock), mappings, audit


@pytest.mark.parametrize("fault", ["status_500", "drop", "slow"])
def test_routing_falls_back_to_local_on_connection_error_5xx_and_timeout(provider, router, fault):
    router, mappings, audit = router
    mappings.add("cloud-", "anthropic_compatible", pattern_type="prefix", backend_model="claude-fake",
                 fallback_backend="local")
    provider.inject(fault, times=1)
    stream = router.generate("cloud-chat", REQUEST)
    assert "".join(c.text for c in stream) == "local fallback" and stream.backend == "local"
    provider.clear()
    stream = router.generate("cloud-chat", REQUEST)
    assert "".join(c.text for c in stream) == provider.reply and stream.backend == "anthropic_compatible"
    assert provider.requests[-1].body["model"] == "claude-fake"
    rows = audit.query(AuditQuery()).items
    assert [r.backend for r in rows] == ["anthropic_compatible", "local"]
    assert rows[0].completion_tokens == 5


def test_routing_without_fallback_gives_timeout_and_mid_stream_drop_errors(provider, router):
    router, mappings, audit = router
    mappings.add("gpt-fake", "openai_compatible")
    provider.inject("slow", times=1)
    with pytest.raises(BackendTimeout):
        router.complete("gpt-fake", REQUEST)
    provider.inject("drop_mid_stream", times=1)
    stream = router.generate("gpt-fake", REQUEST)
    assert next(stream).text == "Hello"
    with pytest.raises(BackendError):
        list(stream)
    statuses = [(r.status.value, r.error_type) for r in audit.query(AuditQuery()).items]
    assert statuses == [("error", "BackendError"), ("error", "BackendTimeout")]


def test_secrets_never_reach_the_logs(provider, router, caplog, tmp_path):
    router, mappings, _ = router
    caplog.set_level(logging.DEBUG)
    mappings.add("gpt-fake", "openai_compatible", fallback_backend="local")
    for fault in ("status_500", None):
        if fault:
            provider.inject(fault, times=1)
        router.complete("gpt-fake", REQUEST)
    assert caplog.records  # httpx/httpcore did log at debug level...
    assert SECRET not in caplog.text  # ...but never the key


def test_factory_works_again_after_close(provider):
    factory = HttpCloudRuntimeFactory(timeout=5)
    factory.close()
    runtime = factory(CloudEndpoint(ApiType.OPENAI, provider.openai_base_url, SECRET))
    provider.clear()
    assert runtime.complete(runtime.load("m", Path("."), ModelType.TEXT_GEN), REQUEST).text == provider.reply
    factory.close()


def test_a_container_serves_cloud_routes_again_after_an_app_shutdown(provider, tmp_path):
    """Server shutdown closes the cloud connections and flushes audit rows; a new app still routes."""
    from starlette.testclient import TestClient

    from entrypoints.http.app import create_app
    from tests.support.auth_server import sqlite_container

    container = sqlite_container(tmp_path)
    container.credential_service().set("openai_compatible", SECRET, base_url=provider.openai_base_url)
    container.backend_mapping_service().add("cloud-x", "openai_compatible")
    provider.clear()
    body = {"model": "cloud-x", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        with TestClient(create_app(container)) as client:
            answer = client.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == provider.reply
    assert container.audit_service().query(AuditQuery(model="cloud-x")).total == 2  # flushed at each shutdown


@pytest.mark.parametrize("api_type", [ApiType.OPENAI, ApiType.ANTHROPIC])
def test_a_stored_base_url_httpx_cannot_use_is_a_backend_error(factory, api_type):
    # Saved before base_url was bounded: httpx raised InvalidURL ("URL too long") and every routed
    # request was a 500; a BackendError is a 502 the mapping's fallback may answer.
    runtime = factory(CloudEndpoint(api_type, "http://" + "x" * 70_000, SECRET))
    model = runtime.load("m", Path("."), ModelType.TEXT_GEN)
    with pytest.raises(BackendError, match="URL is not usable"):
        list(runtime.generate(model, REQUEST))
    with pytest.raises(BackendError, match="URL is not usable"):
        runtime.complete(model, REQUEST)
