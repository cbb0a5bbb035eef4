"""InferenceService on fakes: resolution, the cascade reaching the runtime, type checks, leases."""

from __future__ import annotations

import io
import wave

import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from adapters.memory.runtime import FakeModelRuntime
from application.errors import InvalidRequest, NotFound, NotInstalled
from application.inference.service import InferenceService
from application.inference.pool import ModelPool, PoolLimits
from application.inference.ports import ChatMessage
from domain.library.capabilities import AudioCapabilities
from domain.enums import DownloadStatus, EvictionPolicy, ModelType
from domain.library.models import Model
from domain.profiles.params import AudioDefaults, InferenceContext, InferenceParams
from domain.profiles.model import make_profile

SYSTEM = InferenceParams(temperature=0.9, max_tokens=64, top_p=1.0)


@pytest.fixture
def env():
    uow = InMemoryUnitOfWork()
    clock = FakeClock()
    runtime = FakeModelRuntime()
    pool = ModelPool(runtime, clock, PoolLimits(max_models=2, policy=EvictionPolicy.TTL, idle_ttl_seconds=60))
    with uow:
        uow.models.add(Model("tiny-chat", model_type=ModelType.TEXT_GEN, local_path="/m/tiny-chat", size_bytes=10))
        uow.models.add(
            Model(
                "qwen3-0.6b-4bit-v1",
                repo_id="mlx-community/Qwen3-0.6B-4bit",
                canonical_id="qwen3-0.6b-4bit-v1",
                model_type=ModelType.TEXT_GEN,
                local_path="/m/qwen",
            )
        )
        uow.models.add(
            Model(
                "voice",
                model_type=ModelType.AUDIO,
                local_path="/m/voice",
                capabilities=AudioCapabilities(supports_tts=True, supports_stt=False),
            )
        )
        uow.models.add(Model("ears", model_type=ModelType.AUDIO, local_path="/m/ears"))
        uow.models.add(Model("vectors", model_type=ModelType.EMBEDDINGS, local_path="/m/vectors"))
        uow.models.add(
            Model("half", model_type=ModelType.TEXT_GEN, local_path=None, status=DownloadStatus.DOWNLOADING)
        )
        uow.profiles.add(
            make_profile(
                "creative",
                ModelType.TEXT_GEN,
                model_id="tiny-chat",
                inference=InferenceParams(temperature=0.7, max_tokens=5, top_k=40),
                context=InferenceContext(system_prompt="You are terse."),
            )
        )
        uow.profiles.add(
            make_profile("narrator", ModelType.AUDIO, model_id="voice", audio=AudioDefaults(voice="af_sky", speed=1.5))
        )
        uow.commit()
    service = InferenceService(
        lambda: uow, EmbeddedCatalogProvider(), pool, runtime, clock, system_params=SYSTEM,
        system_audio=AudioDefaults(speed=1.0),
    )
    return service, runtime, pool, uow, clock


def test_request_temperature_zero_beats_the_profiles_0_7(env):
    service, runtime, *_ = env
    result = service.chat("creative", [{"role": "user", "content": "hello there"}], InferenceParams(temperature=0.0))
    sent = runtime.requests[-1].params
    assert sent.temperature == 0.0  # not 0.7, not the system's 0.9
    assert sent.max_tokens == 5 and sent.top_k == 40  # profile fills what the request left unset
    assert sent.top_p == 1.0  # system default fills the rest
    assert result.completion_tokens == 5 and result.finish_reason == "length"
    assert result.model == "creative"


def test_profile_over_system_when_request_is_silent(env):
    service, runtime, *_ = env
    service.chat("creative", [ChatMessage("user", "hi")])
    assert runtime.requests[-1].params.temperature == 0.7


def test_system_defaults_apply_when_addressed_by_model_name(env):
    service, runtime, *_ = env
    service.complete("tiny-chat", "one two three", InferenceParams(max_tokens=2))
    sent = runtime.requests[-1].params
    assert (sent.temperature, sent.max_tokens, sent.top_p, sent.top_k) == (0.9, 2, 1.0, None)


def test_profile_system_prompt_is_added_only_when_the_request_has_none(env):
    service, runtime, *_ = env
    service.chat("creative", [ChatMessage("user", "hi")])
    assert runtime.requests[-1].messages[0] == ChatMessage("system", "You are terse.")
    service.chat("creative", [ChatMessage("system", "Be verbose."), ChatMessage("user", "hi")])
    assert [m.content for m in runtime.requests[-1].messages] == ["Be verbose.", "hi"]


def test_names_resolve_by_alias_canonical_id_and_repo_id(env):
    service, *_ = env
    catalog = EmbeddedCatalogProvider().load_catalog()
    aliases = catalog.get("qwen3-0.6b-4bit-v1").aliases
    for name in ("qwen3-0.6b-4bit-v1", "mlx-community/Qwen3-0.6B-4bit", *aliases):
        assert service.resolve(name).model.model_id == "qwen3-0.6b-4bit-v1"


def test_catalog_model_that_is_not_installed(env):
    service, *_ = env
    with pytest.raises(NotInstalled, match="mlxm pull qwen3-4b-4bit-v1"):
        service.chat("qwen3-4b-4bit-v1", [ChatMessage("user", "hi")])


def test_downloading_model_is_not_installed(env):
    service, *_ = env
    with pytest.raises(NotInstalled, match="downloading"):
        service.complete("half", "x")


def test_unknown_name_suggests_close_matches(env):
    service, *_ = env
    with pytest.raises(NotFound) as caught:
        service.complete("tiny-chta", "x")
    assert "tiny-chat" in caught.value.suggestions


def test_wrong_model_type_for_the_call(env):
    service, runtime, *_ = env
    with pytest.raises(InvalidRequest, match="audio model; text generation"):
        service.chat("voice", [ChatMessage("user", "hi")])
    with pytest.raises(InvalidRequest, match="text-gen model; speech synthesis"):
        service.speak("tiny-chat", "hello")
    with pytest.raises(InvalidRequest, match="does not support transcription"):
        service.transcribe("voice", b"RIFF....")
    with pytest.raises(InvalidRequest, match="embeddings"):
        service.embed("tiny-chat", ["a"])
    assert runtime.loads == []  # refused before anything was loaded


def test_speech_uses_profile_voice_and_speed_with_request_overrides(env):
    service, runtime, *_ = env
    wav = service.speak("narrator", "hello", AudioDefaults(speed=2.0))
    text, audio = runtime.speech_requests[-1]
    assert (audio.voice, audio.speed) == ("af_sky", 2.0)
    with wave.open(io.BytesIO(wav)) as parsed:
        assert parsed.getnframes() > 0


def test_transcription_and_embeddings_reach_the_runtime(env):
    service, *_ = env
    wav = service.speak("voice", "hello world")
    result = service.transcribe("ears", wav, language="en")
    assert result.language == "en" and result.text.endswith("seconds of audio")
    result = service.embed("vectors", ["a b", "c"])
    assert len(result.vectors) == 2 and result.vectors[0] != result.vectors[1]
    assert result.prompt_tokens == 3  # the fake counts words
    assert len(service.embed("vectors", [[1, 2], [3]], dimensions=4).vectors[1]) == 4


def test_last_used_at_is_recorded(env):
    service, runtime, pool, uow, clock = env
    clock.advance(5)
    service.complete("tiny-chat", "hello")
    with uow:
        assert uow.models.get("tiny-chat").last_used_at == clock.now()


def test_a_stream_holds_its_lease_until_closed(env):
    service, runtime, pool, uow, clock = env
    stream = service.stream_chat("tiny-chat", [ChatMessage("user", "a b c d e f")], InferenceParams(max_tokens=50))
    first = next(stream)
    assert first.text == "a"
    clock.advance(3600)
    assert pool.sweep() == []  # in use
    stream.close()
    assert runtime.cancelled_streams == 1  # the close reached the runtime's stream
    assert runtime.generated_tokens == 1  # nothing was computed past the chunk that was read
    clock.advance(61)
    assert pool.sweep() == ["tiny-chat"]


def test_a_load_while_an_unload_waits_for_a_stream_keeps_the_model(env):
    # POST /api/pool/load answered loaded: true, then the stream's end unloaded the model anyway.
    service, runtime, pool, uow, clock = env
    stream = service.stream_chat("tiny-chat", [ChatMessage("user", "a b c d e f")], InferenceParams(max_tokens=50))
    next(stream)
    assert service.unload("tiny-chat") == ("tiny-chat", False)  # deferred: the stream holds a lease
    assert pool.loaded()[0].unload_pending
    assert service.load("tiny-chat") == "tiny-chat"  # the user's last request wins
    assert not pool.loaded()[0].unload_pending
    stream.close()
    assert pool.is_loaded("tiny-chat") and runtime.unloads == []
    # A plain request during a pending unload does not cancel it.
    stream = service.stream_chat("tiny-chat", [ChatMessage("user", "a b c")], InferenceParams(max_tokens=50))
    next(stream)
    service.unload("tiny-chat")
    service.complete("tiny-chat", "hello")
    stream.close()
    assert not pool.is_loaded("tiny-chat") and runtime.unloads == ["tiny-chat"]


def test_stop_strings_reach_the_runtime_and_end_the_text(env):
    service, *_ = env
    result = service.complete("tiny-chat", "alpha beta gamma delta", InferenceParams(stop=("gamma",)))
    assert result.text == "alpha beta " and result.finish_reason == "stop"


def test_preload_pins_auto_start_profiles(env):
    service, runtime, pool, uow, clock = env
    with uow:
        uow.profiles.add(make_profile("always", ModelType.TEXT_GEN, model_id="qwen3-0.6b-4bit-v1", auto_start=True))
        uow.commit()
    assert service.preload_auto_start() == ["qwen3-0.6b-4bit-v1"]
    clock.advance(10_000)
    assert pool.sweep() == []
    assert [i.model_id for i in pool.loaded() if i.pinned] == ["qwen3-0.6b-4bit-v1"]


def test_invalid_requests(env):
    service, *_ = env
    with pytest.raises(InvalidRequest):
        service.chat("tiny-chat", [])
    with pytest.raises(InvalidRequest):
        service.chat("tiny-chat", [{"role": "user"}])
    with pytest.raises(InvalidRequest):
        service.complete("", "x")
    with pytest.raises(InvalidRequest):
        service.speak("voice", "   ")


def test_last_used_at_writes_are_throttled(env):
    service, runtime, pool, uow, clock = env
    service.complete("tiny-chat", "hello")
    first = uow.committed
    clock.advance(1)
    service.complete("tiny-chat", "hello")
    assert uow.committed == first  # within the interval: no second write
    clock.advance(10)
    service.complete("tiny-chat", "hello")
    assert uow.committed == first + 1
    with uow:
        assert uow.models.get("tiny-chat").last_used_at == clock.now()
