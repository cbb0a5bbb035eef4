"""BatchEngine under faults, on a tiny random-weight llama through the real mlx-lm.

An error while a request is being set up (solo prefill, insertion into the batch, a solo
sequence moving into the batch) must reach that request's consumer instead of leaving it
waiting forever; and an unloaded model's weights must really be freed (nothing, not even the
parked engine thread, keeps them alive).
"""

from __future__ import annotations

import gc
import queue
import time
import weakref

import pytest

from adapters.mlx.engine import BatchEngine, EngineRequest
from adapters.mlx.text import MlxTextRuntime
from application.inference.ports import GenerationRequest
from domain.enums import ModelType
from domain.profiles.params import InferenceParams
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

EVENT_TIMEOUT = 60  # seconds; bounds every wait so a lost request fails the test instead of hanging


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return cached_model("llama", tmp_path_factory.mktemp("mlx-engine-faults"), tie_word_embeddings=False)


@pytest.fixture(scope="module")
def loaded(llama_dir):
    runtime = MlxTextRuntime()
    model = runtime.load("tiny-llama", llama_dir, ModelType.TEXT_GEN)
    yield model
    runtime.unload(model)


@pytest.fixture
def make_engine(loaded):
    engines = []

    def make(engine_class=BatchEngine, max_batch_size=4):
        handle = loaded.handle
        engine = engine_class(handle.model, sorted(handle.tokenizer.eos_token_ids), max_batch_size=max_batch_size)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close(timeout=EVENT_TIMEOUT)


class SetupFailure(RuntimeError):
    pass


def failing_sampler(logprobs):
    raise SetupFailure("sampler failed")


class ExplodingProcessors:
    """Logits processors whose listing fails: stands in for any error while a request is set up."""

    def __iter__(self):
        raise SetupFailure("processors failed")


def next_event(request: EngineRequest):
    try:
        return request.events.get(timeout=EVENT_TIMEOUT)
    except queue.Empty:
        pytest.fail(f"no event within {EVENT_TIMEOUT} s: the request was lost (finished={request.finished.is_set()})")


def drain_until_error(request: EngineRequest) -> BaseException:
    while True:
        event = next_event(request)
        if isinstance(event, BaseException):
            return event
        assert event[2] is None, f"the request ended normally ({event[2]}) instead of getting the error"


def long_request() -> EngineRequest:
    return EngineRequest(prompt=[1, 2, 3, 4], max_tokens=100_000)


def test_an_error_in_solo_prefill_reaches_the_request(make_engine):
    engine = make_engine()
    bad = EngineRequest(prompt=[1, 2, 3], max_tokens=5, sampler=failing_sampler)
    engine.submit(bad)
    assert isinstance(next_event(bad), SetupFailure)
    assert bad.finished.is_set()
    good = EngineRequest(prompt=[1, 2, 3], max_tokens=2)
    engine.submit(good)
    assert not isinstance(next_event(good), BaseException)  # the engine lives on


def test_an_error_inserting_into_the_batch_reaches_the_request(make_engine):
    engine = make_engine()
    running = long_request()
    engine.submit(running)
    next_event(running)  # decoding solo
    bad = EngineRequest(prompt=[5, 6, 7], max_tokens=5, logits_processors=ExplodingProcessors())
    engine.submit(bad)
    assert isinstance(next_event(bad), SetupFailure)
    engine.cancel(running)


def test_an_error_inserting_choices_after_their_shared_prefill_reaches_each(make_engine):
    engine = make_engine()
    choices = [EngineRequest(prompt=[5, 6, 7, 8], max_tokens=5, index=i, logits_processors=ExplodingProcessors())
               for i in range(2)]
    engine.submit_all(choices)  # the same prompt: prefilled once, then inserted into the batch
    for choice in choices:
        assert isinstance(next_event(choice), SetupFailure)
        assert choice.finished.is_set()
    good = EngineRequest(prompt=[5, 6, 7, 8], max_tokens=2)
    engine.submit(good)
    assert not isinstance(next_event(good), BaseException)  # the engine lives on


def test_an_error_moving_the_solo_sequence_into_the_batch_reaches_it(make_engine):
    class FailingMigration(BatchEngine):
        def _new_generator(self):
            generator = super()._new_generator()

            def insert_segments(*args, **kwargs):
                raise SetupFailure("migration failed")

            generator.insert_segments = insert_segments
            return generator

    engine = make_engine(FailingMigration)
    running = long_request()
    engine.submit(running)
    next_event(running)  # decoding solo
    engine.submit(EngineRequest(prompt=[5, 6, 7], max_tokens=5))  # makes the solo sequence move
    assert isinstance(drain_until_error(running), SetupFailure)
    assert running.finished.is_set()


def test_unload_frees_the_models_weights(llama_dir):
    runtime = MlxTextRuntime()
    model = runtime.load("tiny-llama", llama_dir, ModelType.TEXT_GEN)
    weights = weakref.ref(model.handle.model)
    engine = weakref.ref(model.handle.engine)
    chunks = list(runtime.generate(model, GenerationRequest(InferenceParams(temperature=0.0, max_tokens=4), prompt="Hello")))
    assert chunks[-1].finish_reason in ("length", "stop")
    runtime.unload(model)
    deadline = time.monotonic() + EVENT_TIMEOUT
    while (weights() is not None or engine() is not None) and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert weights() is None, "the unloaded model is still referenced"
    assert engine() is None, "the closed engine is still referenced (by its parked thread?)"


def test_closing_a_stream_returns_only_once_the_engine_dropped_the_request(loaded):
    import threading

    from adapters.mlx.text import TextStream

    entered, gate = threading.Event(), threading.Event()
    armed = []

    def blocking_processor(tokens, logits):
        if armed:  # hold the engine inside a step until the test opens the gate
            entered.set()
            gate.wait(timeout=EVENT_TIMEOUT)
        return logits

    request = EngineRequest(prompt=[1, 2, 3, 4], max_tokens=100_000, logits_processors=[blocking_processor])
    stream = TextStream(loaded.handle, request, ())
    next(stream)
    armed.append(True)
    assert entered.wait(timeout=EVENT_TIMEOUT)  # the engine is mid-step for this request
    closer = threading.Thread(target=stream.close, daemon=True)
    closer.start()
    closer.join(timeout=0.5)
    closed_early = not closer.is_alive()
    gate.set()
    closer.join(timeout=EVENT_TIMEOUT)
    assert not closed_early, "close() returned while the engine was still computing for the request"
    assert not closer.is_alive() and request.finished.is_set()
