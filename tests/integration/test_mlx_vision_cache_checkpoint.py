"""The vision prompt cache (mlx-vlm's APC) in "checkpoint" mode, on real mlx-vlm: the tiny random-weight
Qwen3.5, whose linear-attention layer keeps a recurrent state that APC cannot page in blocks, so it
keeps whole-prefix checkpoints (the dense Qwen2-VL of test_mlx_vision_cache runs the other path).

Every answer with the cache is compared with the answer of a runtime whose cache is off (greedy), and
each test has a request that must hit, so none of them passes with the cache absent."""

from __future__ import annotations

import pytest

from adapters.mlx.runtime import MlxRuntime
from domain.enums import ModelType
from tests.integration.test_mlx_vision import submit_together
from tests.integration.test_mlx_vision_cache import IMAGE, IMAGE_2, TEXT, TEXT_2, U, answer, run
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hybrid_dir(tmp_path_factory):
    return cached_model("qwen3_5", tmp_path_factory.getbasetemp() / "tiny-models")


@pytest.fixture(scope="module")
def cold(hybrid_dir):
    """The reference: the same model with the prompt cache off."""
    runtime = MlxRuntime(max_batch_size=4, prompt_cache_entries=0)
    model = runtime.load("tiny-hybrid-cold", hybrid_dir, ModelType.VISION)
    assert model.handle.prompt_cache is None
    yield runtime, model
    runtime.unload(model)


@pytest.fixture
def warm(hybrid_dir):
    runtime = MlxRuntime(max_batch_size=4)
    model = runtime.load("tiny-hybrid-warm", hybrid_dir, ModelType.VISION)
    yield runtime, model
    runtime.unload(model)


def test_apc_runs_this_model_in_checkpoint_mode(warm):
    from mlx_vlm.apc import model_apc_plan

    model = warm[1].handle.model
    plan = model_apc_plan(getattr(model, "language_model", model))
    assert plan.restorable and plan.strategy == "checkpoint"


def test_a_repeated_text_prompt_reuses_all_but_its_last_token_and_answers_the_same(warm, cold):
    expected = answer(cold, TEXT)
    text, first = run(*warm, TEXT)
    assert text == expected and first.cached_tokens == 0
    text, again = run(*warm, TEXT)
    assert text == expected and again.cached_tokens == again.prompt_tokens - 1


def test_an_image_prompt_reuses_its_image_prefix_and_answers_the_same(warm, cold):
    expected = answer(cold, IMAGE)
    text, first = run(*warm, IMAGE)
    assert text == expected and first.cached_tokens == 0
    text, again = run(*warm, IMAGE)
    assert text == expected and again.cached_tokens == again.prompt_tokens - 1


def test_a_longer_conversation_reuses_the_earlier_prompt(warm, cold):
    for earlier, later in ((TEXT, TEXT_2), (IMAGE, IMAGE_2)):
        _, first = run(*warm, earlier)
        text, second = run(*warm, later, max_tokens=12)
        assert text == answer(cold, later, max_tokens=12)
        assert second.cached_tokens == first.prompt_tokens - 1 and second.prompt_tokens > first.prompt_tokens


def test_batched_requests_with_cached_prefixes_answer_as_alone(warm, cold):
    runtime, model = warm
    for messages in (TEXT, IMAGE):
        run(runtime, model, messages)
    jobs = [TEXT, IMAGE, (U("user", "bye"),)]
    streams = submit_together(runtime, model, jobs, max_tokens=10, temperature=0.0)
    results = [list(stream) for stream in streams]
    for messages, chunks in zip(jobs, results):
        assert "".join(c.text for c in chunks) == answer(cold, messages)
    cached = [chunks[-1].cached_tokens for chunks in results]
    assert cached[0] == results[0][-1].prompt_tokens - 1 and cached[1] == results[1][-1].prompt_tokens - 1
    assert cached[2] == 0
