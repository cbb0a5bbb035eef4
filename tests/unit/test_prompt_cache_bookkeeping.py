"""Prompt-cache bookkeeping on the fake runtime: the pool counts caches, frees them before evicting,
unload drops them; the service warms a profile's system prompt and passes the profile's context."""

from __future__ import annotations

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from adapters.memory.runtime import FAKE_CACHE_BYTES_PER_TOKEN, FakeModelRuntime
from application.inference.service import InferenceService
from application.inference.pool import ModelPool, PoolLimits
from application.inference.ports import ChatMessage, GenerationRequest, PromptCacheStats
from domain.profiles.constraints import OutputConstraint
from domain.enums import ModelType
from domain.library.models import Model
from domain.profiles.params import InferenceContext, InferenceParams
from domain.profiles.model import make_profile


def generate(runtime, model, prompt):
    return list(runtime.generate(model, GenerationRequest(InferenceParams(max_tokens=2), prompt=prompt)))


def test_the_pool_counts_prompt_cache_bytes_with_the_weights():
    runtime = FakeModelRuntime(default_size=1000)
    pool = ModelPool(runtime, FakeClock(), PoolLimits(max_models=4))
    with pool.acquire("a", "/m/a", ModelType.TEXT_GEN) as lease:
        generate(runtime, lease.model, "one two three four five")
    assert runtime.cache_bytes(lease.model) == 5 * FAKE_CACHE_BYTES_PER_TOKEN
    assert pool.total_bytes == 1000 + 5 * FAKE_CACHE_BYTES_PER_TOKEN
    assert pool.loaded()[0].cache_bytes == 5 * FAKE_CACHE_BYTES_PER_TOKEN
    assert pool.loaded()[0].cache == PromptCacheStats(5 * FAKE_CACHE_BYTES_PER_TOKEN, 1, 10, 2 << 30)


def test_the_fake_prompt_cache_keeps_its_byte_bound_and_reports_it():
    runtime = FakeModelRuntime()
    runtime.prompt_cache_entries, runtime.prompt_cache_bytes = 5, 5 * FAKE_CACHE_BYTES_PER_TOKEN
    model = runtime.load("a", "/m/a", ModelType.TEXT_GEN)
    generate(runtime, model, "one two three")
    generate(runtime, model, "four five six")  # 6 words > 5: the older entry goes
    assert runtime.cache_stats(model) == PromptCacheStats(3 * FAKE_CACHE_BYTES_PER_TOKEN, 1, 5,
                                                          5 * FAKE_CACHE_BYTES_PER_TOKEN)
    runtime.prompt_cache_bytes = 0  # turned off: no cache to show
    assert runtime.cache_stats(model) is None


def test_memory_pressure_frees_prompt_caches_before_evicting_any_model():
    runtime = FakeModelRuntime(default_size=1000)
    # Two models fit; two models plus a's cache do not.
    pool = ModelPool(runtime, FakeClock(), PoolLimits(max_models=4, max_memory_bytes=2200))
    with pool.acquire("a", "/m/a", ModelType.TEXT_GEN) as lease:
        generate(runtime, lease.model, " ".join(["w"] * 5))  # 500 bytes of cache
    pool.acquire("b", "/m/b", ModelType.TEXT_GEN).release()
    assert {m.model_id for m in pool.loaded()} == {"a", "b"}  # nobody was evicted
    assert runtime.unloads == []
    assert runtime.cache_bytes(lease.model) == 0  # a's cache went instead
    assert pool.caches_freed == 1


def test_when_freeing_caches_is_not_enough_a_model_is_still_evicted():
    runtime = FakeModelRuntime(default_size=1000)
    pool = ModelPool(runtime, FakeClock(), PoolLimits(max_models=4, max_memory_bytes=1900))
    with pool.acquire("a", "/m/a", ModelType.TEXT_GEN) as lease:
        generate(runtime, lease.model, "x y z")
    pool.acquire("b", "/m/b", ModelType.TEXT_GEN).release()
    assert [m.model_id for m in pool.loaded()] == ["b"]
    assert runtime.unloads == ["a"]


def test_unloading_a_model_drops_its_prompt_cache():
    runtime = FakeModelRuntime()
    pool = ModelPool(runtime, FakeClock(), PoolLimits(max_models=4))
    with pool.acquire("a", "/m/a", ModelType.TEXT_GEN) as lease:
        generate(runtime, lease.model, "some words here")
    assert runtime.cache_bytes(lease.model) > 0
    assert pool.unload("a") is True
    assert runtime.prompt_caches.get("a") is None


def test_a_repeated_conversation_prefix_is_reported_as_cached():
    runtime = FakeModelRuntime()
    pool = ModelPool(runtime, FakeClock(), PoolLimits(max_models=4))
    with pool.acquire("a", "/m/a", ModelType.TEXT_GEN) as lease:
        first = generate(runtime, lease.model, "system prompt words then question one")
        second = generate(runtime, lease.model, "system prompt words then question two")
    assert first[-1].cached_tokens == 0
    assert second[-1].cached_tokens == 5  # "system prompt words then question"


def _service(runtime, system_prompt="Be brief and exact.", auto_start=True, context_length=None):
    uow = InMemoryUnitOfWork()
    clock = FakeClock()
    pool = ModelPool(runtime, clock, PoolLimits(max_models=2))
    with uow:
        uow.models.add(Model("tiny-chat", model_type=ModelType.TEXT_GEN, local_path="/m/tiny-chat", size_bytes=10))
        uow.profiles.add(make_profile("brief", ModelType.TEXT_GEN, model_id="tiny-chat", auto_start=auto_start,
                                      context=InferenceContext(system_prompt=system_prompt,
                                                               context_length=context_length)))
        uow.commit()
    return InferenceService(lambda: uow, EmbeddedCatalogProvider(), pool, runtime, clock), pool


def test_preloading_an_auto_start_profile_warms_its_system_prompt():
    runtime = FakeModelRuntime()
    service, _ = _service(runtime)
    assert service.preload_auto_start() == ["tiny-chat"]
    assert len(runtime.warmed) == 1
    model_id, request = runtime.warmed[0]
    assert model_id == "tiny-chat"
    assert request.messages == (ChatMessage("system", "Be brief and exact."),)
    with service.stream_chat("brief", [ChatMessage("user", "hello")]) as stream:
        chunks = list(stream)
    assert chunks[-1].cached_tokens > 0  # the first request starts from the warmed system prompt


def test_a_profile_without_a_system_prompt_warms_nothing():
    runtime = FakeModelRuntime()
    service, _ = _service(runtime, system_prompt=None)
    service.preload_auto_start()
    assert runtime.warmed == []


def test_the_service_passes_every_request_option_and_the_profiles_context_to_the_runtime():
    runtime = FakeModelRuntime()
    service, _ = _service(runtime, context_length=512, auto_start=False)
    constraint = OutputConstraint("json_object")
    request = GenerationRequest(InferenceParams(logprobs=True), messages=(ChatMessage("user", "hi"),),
                                constraint=constraint, n=2)
    with service.stream("brief", request) as stream:
        chunks = list(stream)
    seen = runtime.requests[-1]
    assert seen.constraint == constraint and seen.n == 2
    assert seen.context_length == 512
    assert seen.max_tokens_requested is False  # the max_tokens came from the server's defaults
    assert seen.messages[0] == ChatMessage("system", "Be brief and exact.")
    assert {c.index for c in chunks} == {0, 1}
    with service.stream("brief", GenerationRequest(InferenceParams(max_tokens=3), prompt="x")) as stream:
        list(stream)
    assert runtime.requests[-1].max_tokens_requested is True
