"""The vision models' prompt cache (mlx-vlm's APC) on real mlx-vlm: the tiny random-weight Qwen2-VL.

Every answer with the cache is compared with the answer of a runtime whose cache is off (greedy), and
each test has a request that must hit, so none of them passes with the cache absent."""

from __future__ import annotations

import pytest

from adapters.mlx.runtime import MlxRuntime
from application.inference.ports import ChatMessage, GenerationRequest, ImageInput
from domain.enums import ModelType
from domain.profiles.params import InferenceParams
from tests.integration.test_mlx_vision import BLUE, RED, png, submit_together
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

U = ChatMessage
TEXT = (U("user", "hello there, how are you doing today my friend"),)
TEXT_2 = TEXT + (U("assistant", "fine"), U("user", "good to hear"))
IMAGE = (U("user", "describe", images=(ImageInput(RED),)),)
IMAGE_2 = IMAGE + (U("assistant", "red"), U("user", "are you sure?"))
# A one-colour image and its transpose: the processor gives byte-identical pixel values and the same
# token ids; only the patch grid (and so the vision tower's and M-RoPE positions) differs.
WIDE, TALL = png((200, 30, 30), (56, 28)), png((200, 30, 30), (28, 56))


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory):
    return cached_model("qwen2_vl", tmp_path_factory.getbasetemp() / "tiny-models")


@pytest.fixture(scope="module")
def cold(vlm_dir):
    """The reference: the same model with the prompt cache off."""
    runtime = MlxRuntime(max_batch_size=4, prompt_cache_entries=0)
    model = runtime.load("tiny-vlm-cold", vlm_dir, ModelType.VISION)
    assert model.handle.prompt_cache is None
    yield runtime, model
    runtime.unload(model)


@pytest.fixture
def warm(vlm_dir):
    runtime = MlxRuntime(max_batch_size=4)
    model = runtime.load("tiny-vlm-warm", vlm_dir, ModelType.VISION)
    yield runtime, model
    runtime.unload(model)


def run(runtime, model, messages, max_tokens=10):
    request = GenerationRequest(InferenceParams(max_tokens=max_tokens, temperature=0.0), messages=messages)
    chunks = list(runtime.generate(model, request))
    return "".join(c.text for c in chunks), chunks[-1]


def answer(pair, messages, max_tokens=10):
    return run(*pair, messages, max_tokens)[0]


def test_a_repeated_text_prompt_reuses_all_but_its_last_token_and_answers_the_same(warm, cold):
    expected = answer(cold, TEXT)
    text, first = run(*warm, TEXT)
    assert text == expected and first.cached_tokens == 0
    text, again = run(*warm, TEXT)
    assert text == expected
    assert again.cached_tokens == again.prompt_tokens - 1  # the last token starts decoding, as for text models


def test_a_longer_conversation_reuses_the_earlier_prompt(warm, cold):
    _, first = run(*warm, TEXT)
    text, second = run(*warm, TEXT_2)
    assert text == answer(cold, TEXT_2)
    assert second.cached_tokens == first.prompt_tokens - 1 and second.prompt_tokens > first.prompt_tokens


def test_an_image_conversation_reuses_its_image_prefix_and_answers_the_same(warm, cold):
    text, first = run(*warm, IMAGE)
    assert text == answer(cold, IMAGE) and first.cached_tokens == 0
    text, again = run(*warm, IMAGE)
    assert text == answer(cold, IMAGE) and again.cached_tokens == again.prompt_tokens - 1
    text, second = run(*warm, IMAGE_2, max_tokens=12)
    assert text == answer(cold, IMAGE_2, max_tokens=12)
    assert second.cached_tokens == first.prompt_tokens - 1  # the image's tokens included


def test_another_image_never_reads_the_cache_of_an_image(warm, cold):
    run(*warm, IMAGE)
    blue = (U("user", "describe", images=(ImageInput(BLUE),)),)
    text, other = run(*warm, blue)
    assert other.cached_tokens == 0 and text == answer(cold, blue)
    assert run(*warm, IMAGE)[1].cached_tokens > 0  # the red one is still there
    text_only = (U("user", "describe"),)
    assert run(*warm, text_only)[1].cached_tokens == 0  # nor does a prompt without the image


def test_the_same_pixels_in_another_grid_are_another_key(warm, cold):
    wide = (U("user", "describe", images=(ImageInput(WIDE),)),)
    tall = (U("user", "describe", images=(ImageInput(TALL),)),)
    inputs = [warm[0].vision.inputs(warm[1], GenerationRequest(InferenceParams(), messages=m)) for m in (wide, tall)]
    assert inputs[0]["input_ids"].tolist() == inputs[1]["input_ids"].tolist()
    assert inputs[0]["pixel_values"].tolist() == inputs[1]["pixel_values"].tolist()
    assert inputs[0]["image_grid_thw"].tolist() != inputs[1]["image_grid_thw"].tolist()
    run(*warm, wide)
    assert run(*warm, wide)[1].cached_tokens > 0
    text, hit = run(*warm, tall)
    assert hit.cached_tokens == 0 and text == answer(cold, tall)


def test_batched_requests_with_cached_prefixes_answer_as_alone(warm, cold):
    runtime, model = warm
    for messages in (TEXT, IMAGE):
        run(runtime, model, messages)
    jobs = [TEXT_2, IMAGE_2, TEXT, (U("user", "bye"),)]
    streams = submit_together(runtime, model, jobs, max_tokens=10, temperature=0.0)
    results = [list(stream) for stream in streams]
    assert model.handle.engine.max_rows_per_step > 1
    for messages, chunks in zip(jobs, results):
        assert "".join(c.text for c in chunks) == answer(cold, messages)
    cached = [chunks[-1].cached_tokens for chunks in results]
    assert cached[0] > 0 and cached[1] > 0 and cached[2] == results[2][-1].prompt_tokens - 1


def test_a_request_closed_midway_leaves_its_prompt_for_the_next_one(warm, cold):
    runtime, model = warm
    stream = runtime.generate(model, GenerationRequest(InferenceParams(max_tokens=200, temperature=0.0),
                                                       messages=IMAGE_2))
    next(stream)
    stream.close()  # cancelled after its prefill: the row leaves the batch
    assert stream.job.steps < 200
    text, again = run(runtime, model, IMAGE_2)
    assert again.cached_tokens == again.prompt_tokens - 1 and text == answer(cold, IMAGE_2)


def test_the_cache_is_bounded_counted_and_freed(vlm_dir):
    runtime = MlxRuntime(max_batch_size=2, prompt_cache_entries=2)
    model = runtime.load("tiny-vlm-bounded", vlm_dir, ModelType.VISION)
    try:
        prompts = [(U("user", f"question number {i} about something"),) for i in range(3)]
        for messages in prompts:
            run(runtime, model, messages, max_tokens=2)
        cache = model.handle.prompt_cache
        assert len(cache) == 2  # the least recently used one went: prompt 1 (prompt 2's lookup read prompt 0)
        kept = run(runtime, model, prompts[2], max_tokens=2)[1]
        assert kept.cached_tokens == kept.prompt_tokens - 1
        evicted = run(runtime, model, prompts[1], max_tokens=2)[1]
        assert 0 < evicted.cached_tokens < evicted.prompt_tokens - 12  # only the start all three share
        held = runtime.cache_bytes(model)
        assert held == cache.nbytes > 0
        assert runtime.free_cache(model) == held and runtime.cache_bytes(model) == 0
        assert run(runtime, model, prompts[1], max_tokens=2)[1].cached_tokens == 0
    finally:
        runtime.unload(model)
    # A byte bound smaller than one entry keeps nothing.
    runtime = MlxRuntime(max_batch_size=2, prompt_cache_bytes=held // 4)
    model = runtime.load("tiny-vlm-small", vlm_dir, ModelType.VISION)
    try:
        for _ in range(2):
            assert run(runtime, model, prompts[0], max_tokens=2)[1].cached_tokens == 0
        assert runtime.cache_bytes(model) <= held // 4
    finally:
        runtime.unload(model)
