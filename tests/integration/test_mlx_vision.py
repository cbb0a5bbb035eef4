"""Vision on real mlx-vlm: a tiny random-weight Qwen2-VL built offline, run through `MlxRuntime`."""

from __future__ import annotations

import io
import threading

import pytest

from adapters.mlx.runtime import MlxRuntime
from application.errors import InvalidRequest
from application.inference.ports import ChatMessage, GenerationRequest, ImageInput
from domain.enums import ModelType
from domain.profiles.params import InferenceParams
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow


def png(color, size=(40, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


RED, BLUE, GREEN = png((220, 20, 20)), png((20, 20, 220)), png((20, 200, 20), (60, 20))


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory):
    return cached_model("qwen2_vl", tmp_path_factory.getbasetemp() / "tiny-models")


@pytest.fixture(scope="module")
def loaded(vlm_dir):
    runtime = MlxRuntime(max_batch_size=4)
    model = runtime.load("tiny-vlm", vlm_dir, ModelType.VISION)
    yield runtime, model
    runtime.unload(model)


def run(runtime, model, messages, max_tokens=10, **params):
    params.setdefault("temperature", 0.0)
    request = GenerationRequest(InferenceParams(max_tokens=max_tokens, **params), messages=messages)
    chunks = list(runtime.generate(model, request))
    return "".join(c.text for c in chunks), chunks


def reference(vlm_dir, messages_json, images, max_tokens):
    """mlx-vlm's own greedy generate on the same templated prompt and images."""
    import mlx.core as mx
    from mlx_vlm import generate, load
    from mlx_vlm.prompt_utils import apply_chat_template
    from PIL import Image

    model, processor = load(str(vlm_dir))
    prompt = apply_chat_template(processor, model.config, messages_json, num_images=len(images))
    pil = [Image.open(io.BytesIO(data)).convert("RGB") for data in images]
    result = generate(model, processor, prompt, image=pil or None, max_tokens=max_tokens,
                      sampler=lambda x: mx.argmax(x, axis=-1))
    return result.text, result.generation_tokens


def test_image_chat_equals_mlx_vlm_generate(loaded, vlm_dir):
    runtime, model = loaded
    text, chunks = run(runtime, model, (ChatMessage("user", "describe", images=(ImageInput(RED),)),), max_tokens=12)
    expected, tokens = reference(vlm_dir, [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "describe"}]}],
                                 [RED], 12)
    assert text == expected
    assert chunks[-1].completion_tokens == tokens and chunks[-1].finish_reason == "length"
    assert chunks[-1].prompt_tokens > 10  # the image's tokens are part of the prompt


def test_images_stay_in_their_turn_and_change_the_answer(loaded, vlm_dir):
    runtime, model = loaded
    history = (ChatMessage("user", "first", images=(ImageInput(RED),)), ChatMessage("assistant", "red"),
               ChatMessage("user", "and these?", images=(ImageInput(BLUE), ImageInput(GREEN))))
    prompt, images = runtime.vision.prompt(model, GenerationRequest(InferenceParams(), messages=history))
    turns = prompt.split("<|im_start|>")
    assert turns[1].count("<|image_pad|>") == 1 and turns[3].count("<|image_pad|>") == 2
    assert [im.size for im in images] == [(40, 30), (40, 30), (60, 20)]
    text, _ = run(runtime, model, history, max_tokens=12)
    expected, _ = reference(vlm_dir, [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "first"}]},
        {"role": "assistant", "content": "red"},
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "and these?"}]},
    ], [RED, BLUE, GREEN], 12)
    assert text == expected
    other, _ = run(runtime, model, (ChatMessage("user", "first", images=(ImageInput(BLUE),)),), max_tokens=12)
    first, _ = run(runtime, model, (ChatMessage("user", "first", images=(ImageInput(RED),)),), max_tokens=12)
    assert other != first  # the pixels reach the model


def test_text_only_requests_share_the_vision_engine(loaded):
    runtime, model = loaded
    text, chunks = run(runtime, model, (ChatMessage("user", "hello"),), max_tokens=8)
    assert chunks[-1].completion_tokens == 8 and text
    assert runtime.text is not None and model.handle.engine is not None


JOBS = [(ChatMessage("user", "describe", images=(ImageInput(RED),)),), (ChatMessage("user", "hello there"),),
        (ChatMessage("user", "two", images=(ImageInput(BLUE), ImageInput(GREEN))),), (ChatMessage("user", "bye"),)]


def submit_together(runtime, model, jobs, **params):
    """Streams for `jobs`, all queued before the engine thread looks at its queue."""
    streams = [runtime.generate(model, GenerationRequest(InferenceParams(**params), messages=m)) for m in jobs]
    engine = model.handle.engine
    with engine._cond:  # the condition's lock is reentrant: submit() takes it too
        for stream in streams:
            engine.submit(stream.job)
            stream._submitted = True
    return streams


def test_two_image_requests_are_batched_and_answer_as_alone(vlm_dir):
    runtime = MlxRuntime(max_batch_size=4)
    model = runtime.load("tiny-vlm-batched", vlm_dir, ModelType.VISION)
    try:
        images = [JOBS[0], JOBS[2]]
        solo = [run(runtime, model, m, max_tokens=20)[0] for m in images]
        engine = model.handle.engine
        steps_alone = engine.decode_steps
        streams = submit_together(runtime, model, images, temperature=0.0, max_tokens=20)
        together = ["".join(c.text for c in stream) for stream in streams]
        assert together == solo
        assert engine.max_rows_per_step == 2  # the two requests shared decode steps
        assert engine.decode_steps - steps_alone < 40  # fewer steps than running them one after the other
    finally:
        runtime.unload(model)


def test_image_and_text_only_requests_batch_together_with_solo_answers(loaded):
    runtime, model = loaded
    solo = [run(runtime, model, m, max_tokens=20)[0] for m in JOBS]
    streams = submit_together(runtime, model, JOBS, temperature=0.0, max_tokens=20)
    assert ["".join(c.text for c in stream) for stream in streams] == solo
    assert model.handle.engine.max_rows_per_step == len(JOBS)


def test_seeded_sampling_inside_a_batch_equals_alone(loaded):
    runtime, model = loaded
    sampled = dict(temperature=1.5, top_p=0.95, seed=7, max_tokens=16)
    solo = [run(runtime, model, m, **sampled)[0] for m in JOBS[:3]]
    greedy = [run(runtime, model, m, max_tokens=16)[0] for m in JOBS[:3]]
    assert solo != greedy  # the sampler is really used
    streams = submit_together(runtime, model, JOBS[:3], **sampled)
    assert ["".join(c.text for c in stream) for stream in streams] == solo


def test_threads_at_once_with_one_cancelled_midway_never_disturb_each_other(loaded):
    """Image and text-only requests from threads; one stops reading after 3 chunks; the rest as alone."""
    runtime, model = loaded
    solo = [run(runtime, model, m, max_tokens=24)[0] for m in JOBS]
    results: dict[int, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(JOBS) + 1)
    cancelled_steps: list[int] = []

    def worker(index):
        try:
            start.wait()
            request = GenerationRequest(InferenceParams(temperature=0.0, max_tokens=24 if index else 400),
                                        messages=JOBS[index])
            if index == 0:
                stream = runtime.generate(model, request)
                for _ in range(3):
                    next(stream)
                stream.close()
                cancelled_steps.append(stream.job.steps)
                return
            results[index] = "".join(c.text for c in runtime.generate(model, request))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(JOBS))]
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert [results[i] for i in range(1, len(JOBS))] == solo[1:]
    assert cancelled_steps and cancelled_steps[0] < 50  # max_tokens 400: it stopped because it was closed
    assert run(runtime, model, JOBS[0], max_tokens=24)[0] == solo[0]  # and the engine still answers


def test_a_full_batch_admits_waiting_requests_in_arrival_order(vlm_dir):
    runtime = MlxRuntime(max_batch_size=2)
    model = runtime.load("tiny-vlm-fair", vlm_dir, ModelType.VISION)
    try:
        jobs = [JOBS[3], JOBS[2], JOBS[1], JOBS[0]]  # arrival order differs from prompt length order
        solo = [run(runtime, model, m, max_tokens=12)[0] for m in jobs]
        streams = submit_together(runtime, model, jobs, temperature=0.0, max_tokens=12)
        assert ["".join(c.text for c in stream) for stream in streams] == solo
        engine = model.handle.engine
        assert engine.max_seen_active == 2 and engine.max_rows_per_step == 2
        uids = [stream.job.uid for stream in streams]
        assert uids == sorted(uids)  # rows were inserted in the order the requests arrived
    finally:
        runtime.unload(model)


def test_n_choices_are_rows_of_the_batch_each_as_alone(loaded):
    runtime, model = loaded
    messages = JOBS[0]
    request = GenerationRequest(InferenceParams(temperature=0.0, max_tokens=10), messages=messages, n=3)
    texts = {0: "", 1: "", 2: ""}
    for chunk in runtime.generate(model, request):
        texts[chunk.index] += chunk.text
    assert list(texts.values()) == [run(runtime, model, messages, max_tokens=10)[0]] * 3
    sampled = GenerationRequest(InferenceParams(temperature=1.0, seed=11, max_tokens=10), messages=messages, n=2)
    texts = {0: "", 1: ""}
    for chunk in runtime.generate(model, sampled):
        texts[chunk.index] += chunk.text
    alone = [run(runtime, model, messages, max_tokens=10, temperature=1.0, seed=seed)[0] for seed in (11, 12)]
    assert [texts[0], texts[1]] == alone  # choice i samples with seed + i


def test_logprobs_equal_mlx_vlm_own_inside_a_batch(loaded, vlm_dir):
    """Each token's log probability (and the top alternatives) as mlx-vlm's `stream_generate` reports them,
    for a request decoded in a batch next to another one."""
    import mlx.core as mx
    from mlx_vlm import load, stream_generate

    runtime, model = loaded
    messages = JOBS[0]
    prompt, images = runtime.vision.prompt(model, GenerationRequest(InferenceParams(), messages=messages))
    ref_model, processor = load(str(vlm_dir))
    reference = [(r.token, r.logprobs) for r in stream_generate(ref_model, processor, prompt, image=images, max_tokens=8,
                                                                 sampler=lambda x: mx.argmax(x, axis=-1))][:8]
    streams = submit_together(runtime, model, [messages, JOBS[1]], temperature=0.0, max_tokens=8, top_logprobs=3)
    entries = [entry for chunk in streams[0] for entry in (chunk.logprobs or ())]
    list(streams[1])
    assert model.handle.engine.max_rows_per_step >= 2
    assert len(entries) == len(reference) == 8
    for entry, (token, logprobs) in zip(entries, reference):
        logprobs = logprobs.reshape(-1)
        assert abs(entry.logprob - float(logprobs[token].item())) < 1e-4
        assert len(entry.top) == 3 and entry.top[0].logprob == pytest.approx(entry.logprob, abs=1e-6)  # greedy: the best
        assert entry.top[2].logprob <= entry.top[1].logprob <= entry.top[0].logprob
        assert entry.token == processor.tokenizer.decode([token])


def test_batch_size_one_serves_requests_in_order(vlm_dir):
    runtime = MlxRuntime(max_batch_size=4, enable_batching=False)
    model = runtime.load("tiny-vlm-fifo", vlm_dir, ModelType.VISION)
    try:
        solo = [run(runtime, model, m, max_tokens=12)[0] for m in JOBS]
        streams = submit_together(runtime, model, JOBS, temperature=0.0, max_tokens=12)
        assert ["".join(c.text for c in stream) for stream in streams] == solo
        assert model.handle.engine.max_rows_per_step == 1 and model.handle.engine.max_seen_active == 1
    finally:
        runtime.unload(model)


def test_a_closed_stream_stops_and_the_next_request_still_works(loaded):
    runtime, model = loaded
    request = GenerationRequest(InferenceParams(temperature=0.0, max_tokens=400),
                                messages=(ChatMessage("user", "long", images=(ImageInput(RED),)),))
    stream = runtime.generate(model, request)
    next(stream)
    next(stream)
    stream.close()
    assert stream.job.finished.is_set() and stream.job.steps < 50
    assert run(runtime, model, (ChatMessage("user", "hello"),), max_tokens=4)[1][-1].completion_tokens == 4


def test_bad_images_are_client_errors(loaded):
    runtime, model = loaded
    with pytest.raises(InvalidRequest, match="not a readable image"):
        runtime.generate(model, GenerationRequest(InferenceParams(), messages=(
            ChatMessage("user", "x", images=(ImageInput(b"not an image"),)),)))
    with pytest.raises(InvalidRequest, match="no image data"):
        runtime.generate(model, GenerationRequest(InferenceParams(), messages=(
            ChatMessage("user", "x", images=(ImageInput(url="https://example.com/cat.png"),)),)))


def test_count_tokens_counts_the_image_tokens_generation_sees(loaded):
    runtime, model = loaded
    messages = (ChatMessage("user", "two", images=(ImageInput(BLUE), ImageInput(GREEN))),)
    request = GenerationRequest(InferenceParams(temperature=0.0, max_tokens=2), messages=messages)
    counted = runtime.count_tokens(model, request)
    chunks = list(runtime.generate(model, request))
    assert counted == chunks[-1].prompt_tokens
    text_only = GenerationRequest(InferenceParams(temperature=0.0, max_tokens=2), messages=(ChatMessage("user", "two"),))
    assert runtime.count_tokens(model, text_only) == list(runtime.generate(model, text_only))[-1].prompt_tokens < counted
