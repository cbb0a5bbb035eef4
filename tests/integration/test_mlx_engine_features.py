"""The engine features real clients need, on tiny random-weight llamas through the real mlx-lm:
prompt (KV) cache reuse, penalties, logprobs, n > 1, constrained decoding, context limits."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from adapters.mlx.text import MlxTextRuntime
from application.errors import InvalidRequest
from application.inference.ports import ChatMessage, GenerationRequest
from domain.profiles.constraints import OutputConstraint
from domain.enums import ModelType
from domain.profiles.params import InferenceParams
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

SYSTEM = "You are a careful assistant who answers briefly and checks every number twice. " * 6


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return cached_model("llama", tmp_path_factory.mktemp("mlx-features"), tie_word_embeddings=False)


@pytest.fixture(scope="module")
def cached(llama_dir):
    runtime = MlxTextRuntime(enable_batching=True, max_batch_size=8)
    model = runtime.load("tiny", llama_dir, ModelType.TEXT_GEN)
    yield runtime, model
    runtime.unload(model)


@pytest.fixture(scope="module")
def uncached(llama_dir):
    runtime = MlxTextRuntime(enable_batching=True, max_batch_size=8, prompt_cache_entries=0)
    model = runtime.load("tiny", llama_dir, ModelType.TEXT_GEN)
    yield runtime, model
    runtime.unload(model)


def run(pair, request):
    runtime, model = pair
    return list(runtime.generate(model, request))


def text_of(chunks, index=0):
    return "".join(c.text for c in chunks if c.index == index)


def greedy(max_tokens=12, **extra):
    return InferenceParams(temperature=0.0, max_tokens=max_tokens, **extra)


# ------------------------------------------------------------------ prompt cache


def test_a_second_turn_reuses_the_first_and_answers_as_without_the_cache(cached, uncached):
    turn1 = (ChatMessage("system", SYSTEM), ChatMessage("user", "What is two plus two?"))
    first = run(cached, GenerationRequest(greedy(), turn1))
    assert first[-1].cached_tokens == 0 or first[-1].cached_tokens < first[-1].prompt_tokens
    turn2 = turn1 + (ChatMessage("assistant", text_of(first)), ChatMessage("user", "And three plus three?"))
    second = run(cached, GenerationRequest(greedy(), turn2))
    reference = run(uncached, GenerationRequest(greedy(), turn2))
    assert second[-1].cached_tokens > first[-1].prompt_tokens // 2
    assert reference[-1].cached_tokens == 0
    assert text_of(second) == text_of(reference)
    assert second[-1].completion_tokens == reference[-1].completion_tokens


def test_an_exact_repeat_is_served_from_the_cache_with_the_same_greedy_answer(cached):
    request = GenerationRequest(greedy(), prompt="The same prompt, sent twice, word for word.")
    first = run(cached, request)
    again = run(cached, request)
    assert again[-1].cached_tokens == again[-1].prompt_tokens - 1  # all but the token that starts decoding
    assert text_of(again) == text_of(first)


def test_seeded_requests_reuse_the_cache_and_stay_reproducible(cached, uncached):
    params = InferenceParams(temperature=0.9, seed=1234, max_tokens=12)
    request = GenerationRequest(params, (ChatMessage("system", SYSTEM), ChatMessage("user", "Pick a number")))
    run(cached, request)  # leaves the prompt in the cache
    hit = run(cached, request)
    assert hit[-1].cached_tokens > 0
    assert text_of(hit) == text_of(run(uncached, request))


def test_seeded_requests_in_one_batch_match_their_solo_runs(cached, uncached):
    import threading

    requests = [GenerationRequest(InferenceParams(temperature=1.0, seed=seed, max_tokens=10),
                                  (ChatMessage("system", SYSTEM), ChatMessage("user", f"Question {seed}")))
                for seed in range(4)]
    alone = [text_of(run(uncached, r)) for r in requests]
    results: dict[int, str] = {}
    runtime, model = cached
    streams = [runtime.generate(model, r) for r in requests]

    def consume(i):
        results[i] = "".join(c.text for c in streams[i])

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(len(streams))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [results[i] for i in range(len(requests))] == alone


def test_a_thinking_template_that_drops_reasoning_still_reuses_the_shared_prefix(tmp_path, llama_dir):
    """Templates like Qwen3's open `<think>` in the generation prompt and drop earlier turns' reasoning,
    so turn 2 diverges from turn 1's cached tokens inside turn 1's prompt; the cache trims back to it."""
    model_dir = tmp_path / "thinking"
    shutil.copytree(llama_dir, model_dir)
    template = (
        "{% for m in messages %}"
        "{% if m.role == 'assistant' %}<|assistant|>{{ m.content.split('</think>')[-1] | trim }}</s>"
        "{% else %}<|{{ m.role }}|>{{ m.content }}</s>{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}<|assistant|><think>\n{% endif %}"
    )
    (model_dir / "chat_template.jinja").write_text(template)
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (model_dir / "tokenizer_config.json").write_text(json.dumps(config))
    runtime = MlxTextRuntime()
    model = runtime.load("thinking", model_dir, ModelType.TEXT_GEN)
    try:
        turn1 = (ChatMessage("system", SYSTEM), ChatMessage("user", "Think, then answer: 2+2?"))
        first = list(runtime.generate(model, GenerationRequest(greedy(), turn1)))
        reply = "<think>\nreasoning that the next turn's template drops\n</think>\n" + text_of(first)
        turn2 = turn1 + (ChatMessage("assistant", reply), ChatMessage("user", "And 3+3?"))
        prompt1 = runtime.prompt_tokens(model, GenerationRequest(greedy(), turn1))
        prompt2 = runtime.prompt_tokens(model, GenerationRequest(greedy(), turn2))
        shared = next(i for i, (a, b) in enumerate(zip(prompt1, prompt2)) if a != b)
        assert shared < len(prompt1)  # the premise: turn 2 diverges inside turn 1's prompt
        second = list(runtime.generate(model, GenerationRequest(greedy(), turn2)))
        assert second[-1].cached_tokens == shared
    finally:
        runtime.unload(model)


def test_the_cache_is_bounded_by_entries_and_bytes_and_dropped_on_unload(llama_dir):
    runtime = MlxTextRuntime(prompt_cache_entries=2)
    model = runtime.load("bounded", llama_dir, ModelType.TEXT_GEN)
    store = model.handle.prompt_cache
    for word in ("alpha", "bravo", "charlie", "delta"):
        list(runtime.generate(model, GenerationRequest(greedy(4), prompt=f"{word} " * 20)))
    assert len(store) == 2
    assert runtime.cache_bytes(model) == store.nbytes > 0
    store.max_bytes = store.nbytes // 2  # a byte bound smaller than one entry keeps none
    store._lru.max_bytes = store.max_bytes
    list(runtime.generate(model, GenerationRequest(greedy(4), prompt="echo " * 20)))
    assert store.nbytes <= store.max_bytes
    runtime.unload(model)
    assert store.nbytes == 0 and len(store) == 0


def test_warming_a_system_prompt_makes_the_first_request_start_from_it(llama_dir):
    runtime = MlxTextRuntime()
    model = runtime.load("warm", llama_dir, ModelType.TEXT_GEN)
    try:
        warmed = runtime.warm(model, GenerationRequest(greedy(), (ChatMessage("system", SYSTEM),)))
        assert warmed > 20
        first = list(runtime.generate(model, GenerationRequest(greedy(), (ChatMessage("system", SYSTEM),
                                                                           ChatMessage("user", "Hi")))))
        assert first[-1].cached_tokens == warmed
    finally:
        runtime.unload(model)


# ------------------------------------------------------------------ logits processors, logprobs, n


def test_presence_and_frequency_penalties_change_greedy_output(tmp_path_factory):
    # A tied-embedding random llama repeats one token under greedy decoding: a penalty must break that.
    runtime = MlxTextRuntime()
    model = runtime.load("tied", cached_model("llama", tmp_path_factory.mktemp("tied")), ModelType.TEXT_GEN)
    try:
        plain = list(runtime.generate(model, GenerationRequest(greedy(16), prompt="repeat")))
        presence = list(runtime.generate(model, GenerationRequest(greedy(16, presence_penalty=2.0), prompt="repeat")))
        frequency = list(runtime.generate(model, GenerationRequest(greedy(16, frequency_penalty=2.0), prompt="repeat")))
        assert text_of(presence) != text_of(plain)
        assert text_of(frequency) != text_of(plain)
    finally:
        runtime.unload(model)


def test_logprobs_give_each_token_and_its_best_alternatives(cached):
    chunks = run(cached, GenerationRequest(greedy(8, top_logprobs=3), prompt="Tell me"))
    entries = [lp for c in chunks for lp in (c.logprobs or ())]
    assert len(entries) == chunks[-1].completion_tokens
    for entry in entries:
        assert entry.logprob <= 0.0
        assert len(entry.top) == 3
        values = [t.logprob for t in entry.top]
        assert values == sorted(values, reverse=True)
        assert entry.logprob == pytest.approx(values[0], abs=1e-5)  # greedy picks the most likely
        assert entry.bytes
    no_top = run(cached, GenerationRequest(greedy(4, logprobs=True), prompt="Tell me"))
    assert all(lp.top == () for c in no_top for lp in (c.logprobs or ()))
    assert run(cached, GenerationRequest(greedy(4), prompt="Tell me"))[-1].logprobs is None


def test_n_choices_are_generated_together_with_their_index(cached):
    chunks = run(cached, GenerationRequest(InferenceParams(temperature=1.0, seed=7, max_tokens=8),
                                           prompt="Once upon a time", n=3))
    assert {c.index for c in chunks} == {0, 1, 2}
    finals = [c for c in chunks if c.finish_reason is not None]
    assert sorted(c.index for c in finals) == [0, 1, 2]
    texts = {text_of(chunks, i) for i in range(3)}
    assert len(texts) > 1  # seed + i per choice: different draws
    greedy_pair = run(cached, GenerationRequest(greedy(8), prompt="Once upon a time", n=2))
    assert text_of(greedy_pair, 0) == text_of(greedy_pair, 1)


def test_n_choices_share_one_prefill_and_answer_as_each_alone(uncached):
    runtime, model = uncached
    params = InferenceParams(temperature=1.0, seed=7, max_tokens=8)
    stream = runtime.generate(model, GenerationRequest(params, prompt=SYSTEM, n=3))
    chunks = list(stream)
    prompt = chunks[-1].prompt_tokens
    # The prompt is prefilled once (all but its last token, which each choice feeds to get its first
    # logits); before, each of the 3 choices prefilled all of it.
    assert sum(request.prefilled for request in stream.requests) == prompt - 1
    # Choice i draws from seed + i: exactly what a request alone with that seed answers.
    for index in range(3):
        alone = run(uncached, GenerationRequest(replace(params, seed=7 + index), prompt=SYSTEM))
        assert text_of(chunks, index) == text_of(alone) and len(text_of(alone)) > 0
    greedy_pair = run(uncached, GenerationRequest(greedy(8), prompt=SYSTEM, n=2))
    alone = run(uncached, GenerationRequest(greedy(8), prompt=SYSTEM))
    assert text_of(greedy_pair, 0) == text_of(greedy_pair, 1) == text_of(alone)


# ------------------------------------------------------------------ constrained decoding

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
        "ok": {"type": "boolean"},
    },
    "required": ["name", "age", "tags", "ok"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_json_schema_output_of_a_random_model_is_schema_valid(cached, seed):
    import jsonschema

    request = GenerationRequest(InferenceParams(temperature=1.0, seed=seed, max_tokens=300), prompt="Answer in JSON:",
                                constraint=OutputConstraint("json_schema", json.dumps(SCHEMA)))
    chunks = run(cached, request)
    assert chunks[-1].finish_reason == "stop"
    jsonschema.validate(json.loads(text_of(chunks)), SCHEMA)


def test_json_object_and_constraints_inside_a_batch(cached):
    import threading

    runtime, model = cached
    constrained = runtime.generate(model, GenerationRequest(
        InferenceParams(temperature=1.0, seed=5, max_tokens=300), prompt="JSON please",
        constraint=OutputConstraint("json_object")))
    free = runtime.generate(model, GenerationRequest(greedy(40), prompt="anything at all"))
    out: dict[str, list] = {}
    threads = [threading.Thread(target=lambda k=k, s=s: out.__setitem__(k, list(s)))
               for k, s in (("json", constrained), ("free", free))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert isinstance(json.loads(text_of(out["json"])), dict)
    assert out["free"][-1].completion_tokens > 0


def test_a_lark_grammar_can_require_special_tokens(cached):
    chunks = run(cached, GenerationRequest(InferenceParams(temperature=1.0, seed=1, max_tokens=20), prompt="x",
                                           constraint=OutputConstraint("lark", 'start: <|user|> "ok" <|assistant|>')))
    assert text_of(chunks) == "<|user|>ok<|assistant|>"


@pytest.mark.parametrize("constraint, fragment", [
    (OutputConstraint("json_schema", '{"type": "object", "properties": {"a": {"type": "nonsense"}}}'), "nonsense"),
    (OutputConstraint("json_schema", "{not json"), "not valid JSON"),
    (OutputConstraint("regex", "(unclosed"), "regex"),
    (OutputConstraint("lark", "start: missing_rule"), "missing_rule"),
])
def test_a_constraint_that_cannot_compile_is_a_clear_invalid_request(cached, constraint, fragment):
    with pytest.raises(InvalidRequest, match="response_format") as info:
        run(cached, GenerationRequest(greedy(4), prompt="x", constraint=constraint))
    assert fragment in str(info.value)


# ------------------------------------------------------------------ context limits


def test_a_prompt_over_the_context_is_refused_before_any_work_naming_both_numbers(cached):
    runtime, model = cached
    long_prompt = "word " * 3000  # the tiny llama's context is 2048
    with pytest.raises(InvalidRequest, match=r"has \d+ tokens.*context is 2048"):
        runtime.generate(model, GenerationRequest(greedy(4), prompt=long_prompt))
    with pytest.raises(InvalidRequest, match=r"context_length is 64 tokens"):
        runtime.generate(model, GenerationRequest(greedy(4), prompt="word " * 100, context_length=64))
    with pytest.raises(InvalidRequest, match=r"max_tokens is 2000.*\+ 2000 > 2048"):
        runtime.generate(model, GenerationRequest(greedy(2000), prompt="word " * 100))


def test_a_default_max_tokens_is_capped_to_the_room_left_instead(cached):
    runtime, model = cached
    chunks = list(runtime.generate(model, GenerationRequest(greedy(2000), prompt="word " * 10, context_length=64,
                                                            max_tokens_requested=False)))
    assert chunks[-1].prompt_tokens + chunks[-1].completion_tokens <= 64


def test_the_server_prompt_token_limit(llama_dir):
    runtime = MlxTextRuntime(max_prompt_tokens=10)
    model = runtime.load("limited", llama_dir, ModelType.TEXT_GEN)
    try:
        with pytest.raises(InvalidRequest, match=r"over this server's limit of 10 \(MLX_SERVER_MAX_PROMPT_TOKENS\)"):
            runtime.generate(model, GenerationRequest(greedy(4), prompt="word " * 20))
        assert list(runtime.generate(model, GenerationRequest(greedy(2), prompt="short")))
    finally:
        runtime.unload(model)
