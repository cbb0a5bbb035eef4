"""MlxTextRuntime on a tiny random-weight llama, through the real mlx-lm.

What is checked against mlx-lm itself: greedy output equals `mlx_lm.generate` with
`make_sampler(temp=0.0)` on the same prompt (raw and chat-templated), concurrent streams
each equal their own single-stream output, and cancelling stops the computation.
"""

from __future__ import annotations

import threading

import pytest

from adapters.mlx.text import MlxTextRuntime
from application.errors import InvalidRequest
from application.inference.ports import ChatMessage, GenerationRequest
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults, InferenceParams
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

PROMPTS = [
    "Hello world",
    "The quick brown fox jumps over",
    "one",
    "MLX runs models on Apple silicon and on the CPU.",
    "A",
    "Numbers like 1, 2",
    "You are a helpful assistant.",
    "seven eight",
]


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return cached_model("llama", tmp_path_factory.mktemp("mlx-text"), tie_word_embeddings=False)


@pytest.fixture(scope="module")
def runtime():
    return MlxTextRuntime(enable_batching=True, max_batch_size=8)


@pytest.fixture(scope="module")
def loaded(runtime, llama_dir):
    model = runtime.load("tiny-llama", llama_dir, ModelType.TEXT_GEN)
    yield model
    runtime.unload(model)


def reference(loaded, prompt, max_tokens=20):
    """mlx-lm's own greedy generation on the same model and prompt."""
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    handle = loaded.handle
    return mlx_lm.generate(handle.model, handle.tokenizer, prompt, max_tokens=max_tokens, sampler=make_sampler(temp=0.0))


def run(runtime, loaded, prompt=None, messages=(), **params):
    params.setdefault("max_tokens", 20)
    request = GenerationRequest(params=InferenceParams(**params), prompt=prompt, messages=tuple(messages))
    chunks = list(runtime.generate(loaded, request))
    return "".join(c.text for c in chunks), chunks


def test_size_is_the_models_own_weight_bytes(loaded, llama_dir):
    import mlx.core as mx

    weights = mx.load(str(llama_dir / "model.safetensors"))
    assert loaded.size_bytes == sum(v.nbytes for v in weights.values())


@pytest.mark.parametrize("prompt", PROMPTS[:3])
def test_greedy_equals_mlx_lm_generate(runtime, loaded, prompt):
    text, chunks = run(runtime, loaded, prompt, temperature=0.0)
    assert text == reference(loaded, prompt)
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length")
    assert last.prompt_tokens == len(loaded.handle.tokenizer.encode(prompt))
    assert [c.completion_tokens for c in chunks] == sorted(c.completion_tokens for c in chunks)
    assert all(c.finish_reason is None for c in chunks[:-1])


def test_chat_uses_the_template_and_matches_mlx_lm(runtime, loaded):
    messages = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi there")]
    templated = loaded.handle.tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages], add_generation_prompt=True, tokenize=False
    )
    assert templated.endswith("<|assistant|>\n")
    text, chunks = run(runtime, loaded, messages=messages, temperature=0.0)
    assert text == reference(loaded, templated)
    assert chunks[-1].prompt_tokens == len(runtime.prompt_tokens(loaded, GenerationRequest(InferenceParams(), messages=tuple(messages))))


def test_unsupported_chat_role_is_a_client_error(runtime, loaded):
    with pytest.raises(InvalidRequest, match="chat template"):
        runtime.generate(loaded, GenerationRequest(InferenceParams(), messages=(ChatMessage("tool", "x"),)))


def test_max_tokens_and_length_finish(runtime, loaded):
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    handle = loaded.handle
    ref = list(mlx_lm.stream_generate(handle.model, handle.tokenizer, "Hello world", max_tokens=7, sampler=make_sampler(0.0)))
    _, chunks = run(runtime, loaded, "Hello world", temperature=0.0, max_tokens=7)
    assert chunks[-1].finish_reason == ref[-1].finish_reason
    expected = ref[-1].generation_tokens - (1 if ref[-1].finish_reason == "stop" else 0)
    assert chunks[-1].completion_tokens == expected <= 7


def test_seeded_sampling_is_reproducible(runtime, loaded):
    a, _ = run(runtime, loaded, "Hello", temperature=1.0, seed=7, max_tokens=24)
    b, _ = run(runtime, loaded, "Hello", temperature=1.0, seed=7, max_tokens=24)
    c, _ = run(runtime, loaded, "Hello", temperature=1.0, seed=8, max_tokens=24)
    assert a == b
    assert a != c


def test_top_k_one_is_greedy(runtime, loaded):
    # Sampling restricted to the single most likely token must reproduce greedy decoding.
    sampled, _ = run(runtime, loaded, "The quick brown fox", temperature=1.5, top_k=1, seed=1)
    assert sampled == reference(loaded, "The quick brown fox")


@pytest.mark.parametrize("option", [{"top_p": 1e-6}, {"min_p": 1.0}])
def test_top_p_and_min_p_that_keep_one_token_are_greedy(runtime, loaded, option):
    sampled, _ = run(runtime, loaded, "Hello world", temperature=1.5, seed=3, **option)
    unrestricted, _ = run(runtime, loaded, "Hello world", temperature=1.5, seed=3)
    assert sampled == reference(loaded, "Hello world")
    assert unrestricted != sampled  # the same seed without the filter samples something else


def test_repetition_penalty_changes_greedy_output(runtime, loaded):
    plain, _ = run(runtime, loaded, "Hello world", temperature=0.0, max_tokens=30)
    penalised, _ = run(runtime, loaded, "Hello world", temperature=0.0, max_tokens=30, repetition_penalty=5.0)
    assert plain == reference(loaded, "Hello world", max_tokens=30)
    assert penalised != plain


def test_stop_string_ends_the_text_before_it(runtime, loaded):
    full, _ = run(runtime, loaded, "Hello world", temperature=0.0, max_tokens=30)
    assert len(full) >= 4
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    text, chunks = run(runtime, loaded, "Hello world", temperature=0.0, max_tokens=30, stop=(stop,))
    assert text == full[: full.find(stop)]
    assert chunks[-1].finish_reason == "stop"


def test_closing_the_stream_stops_generation(runtime, loaded):
    request = GenerationRequest(params=InferenceParams(temperature=0.0, max_tokens=1500), prompt="Hello world")
    stream = runtime.generate(loaded, request)
    for _ in range(3):
        next(stream)
    generated_at_close = stream.request.generated
    stream.close()
    assert stream.request.finished.wait(timeout=30)
    # The engine removes the request at its next step: at most a token or two more.
    assert stream.request.generated <= generated_at_close + 2
    assert stream.request.generated < 1500
    with pytest.raises(StopIteration):
        next(stream)


def test_abandoned_stream_is_cancelled_when_dropped(runtime, loaded):
    import gc

    stream = runtime.generate(loaded, GenerationRequest(InferenceParams(temperature=0.0, max_tokens=1500), prompt="Hi"))
    next(stream)
    request = stream.request
    del stream
    gc.collect()
    assert request.finished.wait(timeout=30)
    assert request.generated < 1500


def _concurrent(runtime, loaded, prompts, max_tokens=20):
    outputs: list[str | None] = [None] * len(prompts)
    barrier = threading.Barrier(len(prompts))

    def worker(i):
        barrier.wait()
        outputs[i], _ = run(runtime, loaded, prompts[i], temperature=0.0, max_tokens=max_tokens)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outputs


def test_concurrent_streams_are_batched_and_independent(runtime, loaded):
    refs = [reference(loaded, p) for p in PROMPTS]
    engine = loaded.handle.engine
    steps_before = engine.steps
    outputs = _concurrent(runtime, loaded, PROMPTS)
    assert outputs == refs
    tokens = sum(len(loaded.handle.tokenizer.encode(r, add_special_tokens=False)) for r in refs)
    # Decoded together: far fewer forward steps than tokens produced.
    assert engine.steps - steps_before < tokens


def test_without_batching_requests_are_served_one_at_a_time(llama_dir):
    runtime = MlxTextRuntime(enable_batching=False)
    model = runtime.load("tiny-llama", llama_dir, ModelType.TEXT_GEN)
    try:
        prompts = PROMPTS[:3]
        refs = [reference(model, p, max_tokens=8) for p in prompts]
        before = model.handle.engine.steps
        outputs = _concurrent(runtime, model, prompts, max_tokens=8)
        assert outputs == refs
        tokens = 0
        for prompt in prompts:
            _, chunks = run(runtime, model, prompt, temperature=0.0, max_tokens=8)
            tokens += chunks[-1].completion_tokens + (1 if chunks[-1].finish_reason == "stop" else 0)
        assert model.handle.engine.steps - before == 2 * tokens  # one step per token, twice over
    finally:
        runtime.unload(model)


def test_unload_stops_the_engine_and_refuses_further_use(llama_dir):
    runtime = MlxTextRuntime()
    model = runtime.load("tiny-llama", llama_dir, ModelType.TEXT_GEN)
    run(runtime, model, "Hello", max_tokens=2)
    engine = model.handle.engine
    import mlx.core as mx

    runtime.unload(model)
    assert mx.get_cache_memory() == 0  # the buffer cache was handed back
    assert model.handle is None
    assert engine.stopped.is_set()
    from application.errors import Unavailable

    with pytest.raises(Unavailable, match="unloaded"):
        runtime.generate(model, GenerationRequest(InferenceParams(), prompt="Hello"))


def test_other_modalities_are_refused(runtime, loaded):
    with pytest.raises(InvalidRequest):
        runtime.synthesize(loaded, "hi", AudioDefaults())
    with pytest.raises(InvalidRequest):
        runtime.transcribe(loaded, b"", None)


def test_two_models_generate_concurrently_with_correct_outputs(runtime, loaded, tmp_path_factory):
    other_dir = cached_model("llama", tmp_path_factory.mktemp("mlx-text-other"), seed=5, tie_word_embeddings=False)
    other = runtime.load("other-llama", other_dir, ModelType.TEXT_GEN)
    try:
        jobs = [(model, prompt) for model in (loaded, other) for prompt in PROMPTS[:4]]
        refs = [reference(model, prompt, max_tokens=30) for model, prompt in jobs]
        outputs: list[str | None] = [None] * len(jobs)

        def worker(i):
            outputs[i], _ = run(runtime, jobs[i][0], jobs[i][1], temperature=0.0, max_tokens=30)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert outputs == refs
        assert refs[:4] != refs[4:]  # the two models really differ
    finally:
        runtime.unload(other)


def test_unknown_architecture_is_a_clear_error(tmp_path):
    import json

    from application.inference.ports import NotSupported

    import mlx.core as mx

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-arch"}))
    with pytest.raises(InvalidRequest, match="incomplete"):
        MlxTextRuntime().load("odd", tmp_path, ModelType.TEXT_GEN)  # no weights yet
    mx.save_safetensors(str(tmp_path / "model.safetensors"), {"x": mx.zeros((1,))})
    with pytest.raises(NotSupported, match="mlx-lm cannot load"):
        MlxTextRuntime().load("odd", tmp_path, ModelType.TEXT_GEN)
    with pytest.raises(InvalidRequest, match="config.json"):
        MlxTextRuntime().load("empty", tmp_path / "missing", ModelType.TEXT_GEN)


def test_a_stream_cut_off_by_unload_gets_unavailable(llama_dir):
    from application.errors import Unavailable

    runtime = MlxTextRuntime()
    model = runtime.load("tiny-llama", llama_dir, ModelType.TEXT_GEN)
    stream = runtime.generate(model, GenerationRequest(InferenceParams(temperature=0.0, max_tokens=1500), prompt="Hi"))
    next(stream)
    runtime.unload(model)
    with pytest.raises(Unavailable, match="unloaded"):
        for _ in stream:
            pass
    assert stream.request.generated < 1500


@pytest.mark.parametrize("params", [{"temperature": 0.0}, {"temperature": 1.0, "seed": 11}, {"temperature": 0.0, "repetition_penalty": 1.3}])
def test_a_running_stream_joins_the_batch_when_another_arrives(runtime, loaded, params):
    # Alone, a request runs solo; a second request moves it into the batch mid-stream. Both
    # outputs must equal what each gives when run alone.
    # 400 tokens (no EOS for this model and prompt) keep the first stream busy long enough.
    first_alone, _ = run(runtime, loaded, "Hello world", max_tokens=400, **params)
    second_alone, _ = run(runtime, loaded, "The quick brown fox", max_tokens=30, **params)
    engine = loaded.handle.engine
    migrations = engine.migrations
    request = GenerationRequest(InferenceParams(max_tokens=400, **params), prompt="Hello world")
    stream = runtime.generate(loaded, request)
    head = [next(stream) for _ in range(3)]
    second, _ = run(runtime, loaded, "The quick brown fox", max_tokens=30, **params)
    first = "".join(c.text for c in head) + "".join(c.text for c in stream)
    assert engine.migrations == migrations + 1
    assert (first, second) == (first_alone, second_alone)
