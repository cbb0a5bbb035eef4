"""One contract for the ModelRuntime port, run against the fake and against MlxTextRuntime.

Whatever adapter serves text generation must: report its own size, stream chunks whose last
one carries the finish reason and token counts, honour max_tokens and stop strings, be
deterministic at temperature 0, survive an abandoned stream, refuse other modalities with
InvalidRequest, and stop working once unloaded. A runtime with a prompt cache reports its bytes (the
same number the pool counts), entries and bounds; one without (the sharded adapter) reports none.
"""

from __future__ import annotations

import time

import pytest

from adapters.memory.runtime import FakeModelRuntime
from application.errors import InvalidRequest, Unavailable
from application.inference.ports import (
    ChatMessage,
    EmbeddingRequest,
    GenerationRequest,
    LoadedModel,
    PromptCacheStats,
)
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults, InferenceParams
from tests.support.tiny_models import cached_model


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return cached_model("llama", tmp_path_factory.mktemp("contract"), tie_word_embeddings=False)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """The distributed adapter: two ranks on localhost (ring backend, CPU), tensor parallel. Started once
    for the module (starting ranks takes seconds); a test that unloads it gets a fresh group next time."""
    from adapters.mlx.distributed.runtime import MlxDistributedRuntime

    hostfile = tmp_path_factory.mktemp("hosts") / "hosts.json"
    hostfile.write_text('{"hosts": [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}, '
                        '{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}]}')
    state = {"runtime": MlxDistributedRuntime(hostfile, mode="tensor"), "model": None}
    yield state
    if state["model"] is not None and state["model"].handle is not None:
        state["runtime"].unload(state["model"])


@pytest.fixture(params=["fake", pytest.param("mlx", marks=pytest.mark.slow),
                        pytest.param("mlx-sharded", marks=pytest.mark.slow)])
def runtime_and_path(request, llama_dir):
    if request.param == "fake":
        return FakeModelRuntime(), llama_dir
    if request.param == "mlx-sharded":
        return request.getfixturevalue("sharded"), llama_dir
    from adapters.mlx.text import MlxTextRuntime

    return MlxTextRuntime(max_batch_size=4), llama_dir


@pytest.fixture
def loaded(runtime_and_path):
    runtime, path = runtime_and_path
    if isinstance(runtime, dict):  # the sharded adapter: keep its ranks between tests
        state = runtime
        if state["model"] is None or state["model"].handle is None:
            state["model"] = state["runtime"].load("contract-model", path, ModelType.TEXT_GEN)
        yield state["runtime"], state["model"]
        return
    model = runtime.load("contract-model", path, ModelType.TEXT_GEN)
    yield runtime, model
    if model.handle is not None:
        runtime.unload(model)


def generate(runtime, model, **params) -> tuple[str, list]:
    params.setdefault("temperature", 0.0)
    params.setdefault("max_tokens", 12)
    request = GenerationRequest(params=InferenceParams(**params), messages=(ChatMessage("user", "tell me a long story"),))
    chunks = list(runtime.generate(model, request))
    return "".join(c.text for c in chunks), chunks


def test_load_reports_the_model_and_its_own_size(loaded):
    runtime, model = loaded
    assert isinstance(model, LoadedModel)
    assert model.model_id == "contract-model" and model.model_type is ModelType.TEXT_GEN
    assert model.size_bytes > 0


def test_stream_ends_with_a_finish_reason_and_counts(loaded):
    runtime, model = loaded
    text, chunks = generate(runtime, model, max_tokens=5)
    assert chunks, "at least one chunk"
    assert chunks[-1].finish_reason in ("stop", "length")
    assert all(c.finish_reason is None for c in chunks[:-1])
    assert chunks[-1].prompt_tokens > 0
    assert 0 < chunks[-1].completion_tokens <= 5 or chunks[-1].finish_reason == "stop"
    counts = [c.completion_tokens for c in chunks]
    assert counts == sorted(counts)


def test_temperature_zero_is_deterministic(loaded):
    runtime, model = loaded
    assert generate(runtime, model)[0] == generate(runtime, model)[0]


def test_stop_string_is_honoured(loaded):
    runtime, model = loaded
    full, _ = generate(runtime, model, max_tokens=16)
    assert len(full) >= 4
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    text, chunks = generate(runtime, model, max_tokens=16, stop=(stop,))
    assert text == full[: full.find(stop)]
    assert chunks[-1].finish_reason == "stop"


def test_an_abandoned_stream_does_not_break_the_next_request(loaded):
    runtime, model = loaded
    expected, _ = generate(runtime, model)
    stream = runtime.generate(model, GenerationRequest(InferenceParams(temperature=0.0, max_tokens=200), prompt="hi"))
    next(iter(stream))
    stream.close()
    assert generate(runtime, model)[0] == expected


def test_other_modalities_are_refused(loaded):
    runtime, model = loaded
    with pytest.raises(InvalidRequest):
        runtime.synthesize(model, "hello", AudioDefaults())
    with pytest.raises(InvalidRequest):
        runtime.transcribe(model, b"RIFF", None)
    with pytest.raises(InvalidRequest):
        runtime.embed(model, EmbeddingRequest(("hello",)))


def test_unloaded_model_cannot_generate(loaded):
    runtime, model = loaded
    runtime.unload(model)
    with pytest.raises(Unavailable, match="unloaded"):  # a 503, never a 500
        list(runtime.generate(model, GenerationRequest(InferenceParams(max_tokens=2), prompt="hi")))


def test_tools_for_a_model_without_a_tool_format_are_refused_naming_it(loaded):
    runtime, model = loaded
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    request = GenerationRequest(InferenceParams(temperature=0.0, max_tokens=4), messages=(ChatMessage("user", "hi"),),
                                tools=(tool,))
    with pytest.raises(InvalidRequest, match="contract-model"):
        list(runtime.generate(model, request))
    # With tool_choice "none" the tools are not offered, so any model answers.
    none = GenerationRequest(InferenceParams(temperature=0.0, max_tokens=3), messages=(ChatMessage("user", "hi"),),
                             tools=(tool,), tool_choice="none")
    assert list(runtime.generate(model, none))[-1].finish_reason in ("stop", "length")


def test_the_prompt_cache_reports_its_bytes_entries_and_bounds(loaded):
    runtime, model = loaded
    if model.sharding is not None:  # the sharded adapter has no prompt cache: nothing to show or count
        generate(runtime, model, max_tokens=4)
        assert runtime.cache_stats(model) is None and runtime.cache_bytes(model) == 0
        return
    generate(runtime, model, max_tokens=4)
    # The engine thread stores the finished sequence just after it sends the last token: wait for it.
    deadline = time.monotonic() + 30
    while (stats := runtime.cache_stats(model)) is not None and stats.entries == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert isinstance(stats, PromptCacheStats)
    assert stats.entries > 0 and stats.bytes > 0
    assert stats.bytes == runtime.cache_bytes(model)  # what the pool counts against its memory limit
    assert 0 < stats.entries <= stats.max_entries and 0 < stats.bytes <= stats.max_bytes
    assert runtime.free_cache(model) == stats.bytes
    assert runtime.cache_stats(model) == PromptCacheStats(0, 0, stats.max_entries, stats.max_bytes)
    runtime.unload(model)
    assert runtime.cache_stats(model) is None
