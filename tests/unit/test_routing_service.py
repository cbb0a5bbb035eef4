"""InferenceRouter on fakes: matching, fallback rules, streaming, auditing; mappings and credentials."""

import os
import stat
from pathlib import Path

import pytest

from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from adapters.fernet.secrets import FernetSecretCipher
from application.audit.service import AuditService, ImmediateAuditSink
from application.routing.backend_mappings import BackendMappingService
from application.routing.credentials import CredentialService
from application.errors import (
    BackendError, BackendNotConfigured, BackendTimeout, InvalidRequest, NotFound, SecretUnreadable,
)
from application.inference.ports import ChatMessage, GenerationChunk, GenerationRequest, LoadedModel
from application.routing.service import InferenceRouter
from domain.audit.model import AuditQuery, AuditStatus
from domain.enums import ApiType, BackendType
from domain.errors import InvalidPattern
from domain.profiles.params import InferenceParams

REQUEST = GenerationRequest(params=InferenceParams(max_tokens=8), messages=(ChatMessage("user", "hi there"),))


class FakeLocal:
    def __init__(self):
        self.calls = []

    def generate(self, model, request):
        self.calls.append(model)
        yield GenerationChunk("local ")
        yield GenerationChunk("answer", prompt_tokens=2, completion_tokens=2, finish_reason="stop")


class FakeCloudRuntime:
    """Scripted: `failure` is raised before any output, or after the first chunk with `mid_stream`."""

    def __init__(self, endpoint, failure=None, mid_stream=False):
        self.endpoint, self.failure, self.mid_stream = endpoint, failure, mid_stream

    def load(self, model_id, path, model_type):
        return LoadedModel(model_id, model_type, path, 0)

    def generate(self, model, request):
        if self.failure and not self.mid_stream:
            raise self.failure
        yield GenerationChunk(f"cloud:{model.model_id}")
        if self.failure:
            raise self.failure
        yield GenerationChunk("", prompt_tokens=4, completion_tokens=1, finish_reason="stop")


@pytest.fixture
def world(tmp_path):
    uow, clock = InMemoryUnitOfWork(), FakeClock()
    factory = lambda: uow  # noqa: E731
    audit = AuditService(factory, clock)
    mappings = BackendMappingService(factory)
    credentials = CredentialService(factory, FernetSecretCipher(home=tmp_path), clock)
    local = FakeLocal()
    script = {"failure": None, "mid_stream": False, "endpoints": []}

    def cloud(endpoint):
        script["endpoints"].append(endpoint)
        return FakeCloudRuntime(endpoint, script["failure"], script["mid_stream"])

    router = InferenceRouter(mappings, credentials, cloud, local, ImmediateAuditSink(audit), clock)
    credentials.set("openai", "sk-test-abcdefgh1234")
    return router, mappings, credentials, audit, local, script


def test_unmapped_models_run_locally_and_are_audited(world):
    router, _, _, audit, local, _ = world
    stream = router.generate("tiny-llama", REQUEST, endpoint="/v1/chat/completions", request_id="req-1")
    assert "".join(c.text for c in stream) == "local answer"
    assert stream.backend == "local" and local.calls == ["tiny-llama"]
    (row,) = audit.query(AuditQuery()).items
    assert (row.request_id, row.model, row.backend, row.status) == ("req-1", "tiny-llama", "local", AuditStatus.SUCCESS)
    assert (row.prompt_tokens, row.completion_tokens) == (2, 2)


def test_highest_priority_enabled_mapping_wins(world):
    router, mappings, _, _, local, script = world
    mappings.add("gpt-", "openai", pattern_type="prefix", priority=1)
    exact = mappings.add("gpt-4o", "local", priority=5, enabled=False)
    mappings.add(r"gpt-4o(-mini)?", "openai", pattern_type="regex", backend_model="upstream-4o", priority=3)
    cloud = router.complete("gpt-4o", REQUEST)
    assert (cloud.text, cloud.model, cloud.backend) == ("cloud:upstream-4o", "gpt-4o", "openai")
    mappings.update(exact.id, enabled=True)
    local_answer = router.complete("gpt-4o", REQUEST)
    assert (local_answer.model, local_answer.backend) == ("gpt-4o", "local")
    endpoint = script["endpoints"][0]
    assert endpoint.api_type is ApiType.OPENAI and endpoint.api_key == "sk-test-abcdefgh1234"
    assert "sk-test" not in repr(endpoint)


@pytest.mark.parametrize("failure", [BackendError("boom", backend="openai"), BackendTimeout("slow", backend="openai")])
def test_retryable_failure_before_output_goes_to_fallback(world, failure):
    router, mappings, _, audit, local, script = world
    mappings.add("gpt-4o", "openai", fallback_backend="local")
    script["failure"] = failure
    stream = router.generate("gpt-4o", REQUEST)
    assert "".join(c.text for c in stream) == "local answer" and stream.backend == "local"
    assert local.calls == ["gpt-4o"]
    (row,) = audit.query(AuditQuery()).items
    assert row.backend == "local" and row.status is AuditStatus.SUCCESS


def test_without_fallback_the_backend_error_surfaces_and_is_audited(world):
    router, mappings, _, audit, local, script = world
    mappings.add("gpt-4o", "openai")
    script["failure"] = BackendTimeout("openai backend timed out", backend="openai")
    with pytest.raises(BackendTimeout):
        router.complete("gpt-4o", REQUEST)
    assert local.calls == []
    (row,) = audit.query(AuditQuery()).items
    assert row.status is AuditStatus.ERROR and row.error_type == "BackendTimeout" and row.backend == "openai"


def test_non_retryable_failure_and_failure_after_output_do_not_fall_back(world):
    router, mappings, _, _, local, script = world
    mappings.add("gpt-4o", "openai", fallback_backend="local")
    script["failure"] = BackendError("400 bad request", backend="openai", retryable=False)
    with pytest.raises(BackendError):
        router.complete("gpt-4o", REQUEST)
    script["failure"], script["mid_stream"] = BackendError("connection dropped"), True
    stream = router.generate("gpt-4o", REQUEST)
    assert next(stream).text == "cloud:gpt-4o"
    with pytest.raises(BackendError):
        next(stream)
    assert local.calls == []


def test_closing_a_stream_records_a_cancelled_row(world):
    router, _, _, audit, _, _ = world
    stream = router.generate("tiny", REQUEST)
    next(stream)
    stream.close()
    (row,) = audit.query(AuditQuery()).items
    assert row.status is AuditStatus.CANCELLED


def test_missing_credential_is_a_clear_backend_error(world):
    router, mappings, _, audit, _, _ = world
    mappings.add("claude-x", "anthropic")
    with pytest.raises(BackendNotConfigured, match="mlxm credentials set anthropic") as caught:
        router.complete("claude-x", REQUEST)
    # A backend error (502), not a 404 that tells the API client its model does not exist.
    from entrypoints.errors import mapping_for

    assert mapping_for(caught.value).status == 502
    (row,) = audit.query(AuditQuery()).items
    assert (row.backend, row.status, row.error_type) == ("anthropic", AuditStatus.ERROR, "BackendNotConfigured")


def test_missing_credential_falls_back_like_any_backend_failure(world):
    router, mappings, _, audit, local, _ = world
    mappings.add("claude-x", "anthropic", fallback_backend="local")
    answer = router.complete("claude-x", REQUEST)
    assert (answer.text, answer.backend) == ("local answer", "local") and local.calls == ["claude-x"]
    (row,) = audit.query(AuditQuery()).items
    assert (row.backend, row.status) == ("local", AuditStatus.SUCCESS)


def test_mapping_crud_validates_patterns(world):
    _, mappings, _, _, _, _ = world
    with pytest.raises(InvalidPattern):
        mappings.add("(a+)+$", "openai", pattern_type="regex")
    with pytest.raises(InvalidPattern):
        mappings.add("x" * 500, "openai")
    m = mappings.add("a", "openai", priority=2)
    with pytest.raises(InvalidPattern):
        mappings.update(m.id, pattern_type="regex", model_pattern="(x*)*")
    assert mappings.get(m.id).model_pattern == "a"
    mappings.remove(m.id)
    with pytest.raises(NotFound):
        mappings.remove(m.id)


def test_credentials_are_encrypted_at_rest_and_listed_masked(world, tmp_path):
    _, _, credentials, _, _, _ = world
    uow = credentials._uow()
    stored = uow.credentials.get(BackendType.OPENAI)
    assert "sk-test-abcdefgh1234" not in stored.encrypted_api_key
    (listed,) = credentials.list()
    assert listed.masked_key == "sk-...1234" and "abcdefgh" not in repr(listed)
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    # A different key cannot read the stored secret: a clear error, not garbage.
    other = CredentialService(credentials._uow, FernetSecretCipher(key="another passphrase"), FakeClock())
    with pytest.raises(SecretUnreadable):
        other.endpoint_for(BackendType.OPENAI)


def test_env_key_wins_over_key_file(tmp_path):
    cipher = FernetSecretCipher(key="my passphrase", home=tmp_path)
    token = cipher.encrypt("sk-secret-value-1")
    assert FernetSecretCipher(key="my passphrase").decrypt(token) == "sk-secret-value-1"
    assert not (tmp_path / "secret.key").exists()


class FakeLocalService:
    """The local InferenceService's non-generation calls, scripted."""

    def speak(self, name, text, audio=None):
        return b"RIFF" + text.encode()

    def transcribe(self, name, audio, language=None):
        return f"heard {len(audio)} bytes in {language}"

    def embed(self, name, texts):
        if texts == ["boom"]:
            raise InvalidRequest("cannot embed that")
        return [[0.5, 0.25] for _ in texts]

    def resolve(self, name):
        return f"target:{name}"


def test_speech_transcription_and_embeddings_each_leave_one_audit_row(world):
    from application.routing.service import RequestContext, RoutedInferenceService

    router, _, _, audit, _, _ = world
    contexts = iter([RequestContext("/v1/audio/speech", "r-speech"), RequestContext("/v1/audio/transcriptions", "r-stt"),
                     RequestContext("/v1/embeddings", "r-emb"), RequestContext("/v1/embeddings", "r-bad")])
    service = RoutedInferenceService(FakeLocalService(), router, lambda: next(contexts))
    assert service.speak("tiny-tts", "hello") == b"RIFFhello"
    assert service.transcribe("tiny-whisper", b"abc", "en") == "heard 3 bytes in en"
    assert service.embed("tiny-embed", ["a", "b"]) == [[0.5, 0.25], [0.5, 0.25]]
    with pytest.raises(InvalidRequest):
        service.embed("tiny-embed", ["boom"])
    assert service.resolve("x") == "target:x"  # other calls pass through, unaudited
    rows = {row.request_id: row for row in audit.query(AuditQuery()).items}
    assert set(rows) == {"r-speech", "r-stt", "r-emb", "r-bad"}
    assert {(r.model, r.backend, r.endpoint, r.status) for r in rows.values()} == {
        ("tiny-tts", "local", "/v1/audio/speech", AuditStatus.SUCCESS),
        ("tiny-whisper", "local", "/v1/audio/transcriptions", AuditStatus.SUCCESS),
        ("tiny-embed", "local", "/v1/embeddings", AuditStatus.SUCCESS),
        ("tiny-embed", "local", "/v1/embeddings", AuditStatus.ERROR),
    }
    assert rows["r-bad"].error_type == "InvalidRequest"


@pytest.mark.parametrize("key", ["sk-caf\u00e9-1234", "sk-\u4e2d\u6587-1234", "sk-a\r\nX-Injected: 1", "sk-a\x00b", "sk a b"])
def test_a_key_that_cannot_travel_in_an_http_header_is_refused_when_set(world, key):
    # Stored, it made every routed request a 500 (httpx cannot encode the header) until replaced.
    _, _, credentials, _, _, _ = world
    with pytest.raises(InvalidRequest, match="printable ASCII") as caught:
        credentials.set("anthropic", key)
    assert caught.value.field == "api_key"
    assert [c.backend_type for c in credentials.list()] == [BackendType.OPENAI]  # nothing stored


def test_a_stored_key_that_cannot_travel_in_a_header_is_a_backend_error_with_fallback(world):
    router, mappings, credentials, _, local, _ = world
    uow = credentials._uow()
    with uow:  # as a database written before `set` checked keys holds it
        stored = uow.credentials.get(BackendType.OPENAI)
        stored.encrypted_api_key = credentials._cipher.encrypt("sk-caf\u00e9-1234")
        uow.credentials.add(stored)
        uow.commit()
    with pytest.raises(BackendNotConfigured, match="mlxm credentials set openai"):
        credentials.endpoint_for(BackendType.OPENAI)
    mappings.add("gpt-x", "openai", fallback_backend="local")
    answer = router.complete("gpt-x", REQUEST)
    assert (answer.text, answer.backend) == ("local answer", "local")
