"""Issue 12 item 3: one long prompt must not stall a model.

Prefill runs in chunks with a cancellation check between them, and a request that arrives while
another prompt is being prefilled is served between its chunks (mlx-lm's BatchGenerator
interleaves prefill chunks with decode steps). The model is wrapped so the test can hold the
engine inside a prefill chunk: the order of events is then fixed, not a matter of timing.
"""

from __future__ import annotations

import queue
import threading

import pytest

from adapters.mlx.engine import BatchEngine, EngineRequest
from adapters.mlx.prompt_cache import PromptCacheStore
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

STEP = 16
WAIT = 60.0


class GatedModel:
    """The real model, but a call can be held: `hold_at` is the call number that waits for `go`."""

    def __init__(self, model, hold_at: int) -> None:
        self._model = model
        self.calls = 0
        self.hold_at = hold_at
        self.entered = threading.Event()
        self.go = threading.Event()

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.hold_at:
            self.entered.set()
            self.go.wait(timeout=WAIT)
        return self._model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


@pytest.fixture(scope="module")
def model_and_tokenizer(tmp_path_factory):
    import mlx_lm

    return mlx_lm.load(str(cached_model("llama", tmp_path_factory.mktemp("prefill"))))


def long_prompt(n: int = 1200) -> list[int]:
    return [(7 * i) % 250 + 3 for i in range(n)]


def test_a_cancel_during_prefill_stops_it_within_one_chunk(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    gated = GatedModel(model, hold_at=2)  # hold the second prefill chunk
    engine = BatchEngine(gated, sorted(tokenizer.eos_token_ids), max_batch_size=8, prefill_step_size=STEP)
    try:
        request = EngineRequest(prompt=long_prompt(), max_tokens=4)
        engine.submit(request)
        assert gated.entered.wait(timeout=WAIT)
        engine.cancel(request)  # the client went away mid-prefill
        gated.go.set()
        assert request.finished.wait(timeout=WAIT)
        # The chunk in flight completes; none after it (before: the whole prompt was prefilled first).
        assert request.prefilled <= 2 * STEP
        assert request.generated == 0
        assert gated.calls <= 2
    finally:
        gated.go.set()
        engine.close(timeout=WAIT)


class RecordingQueue(queue.SimpleQueue):
    """The events queue of the short request: notes how far the long prompt had got at its first token."""

    def __init__(self, other: EngineRequest) -> None:
        super().__init__()
        self.other = other
        self.other_prefilled_at_first_token: int | None = None

    def put(self, item, block=True, timeout=None):
        if self.other_prefilled_at_first_token is None:
            self.other_prefilled_at_first_token = self.other.prefilled
        super().put(item, block, timeout)


def test_a_short_request_is_answered_while_a_long_prompt_is_still_being_prefilled(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    gated = GatedModel(model, hold_at=2)
    engine = BatchEngine(gated, sorted(tokenizer.eos_token_ids), max_batch_size=8, prefill_step_size=STEP)
    try:
        long = EngineRequest(prompt=long_prompt(), max_tokens=2)
        engine.submit(long)
        assert gated.entered.wait(timeout=WAIT)  # the long prompt is mid-prefill
        short = EngineRequest(prompt=[5, 6, 7, 8], max_tokens=3)
        short.events = RecordingQueue(long)
        engine.submit(short)
        gated.go.set()
        assert short.finished.wait(timeout=WAIT) and long.finished.wait(timeout=WAIT)
        at_first_token = short.events.other_prefilled_at_first_token
        assert at_first_token is not None
        # Fair: the short request got its first token a few chunks into the long prefill, not after it.
        assert at_first_token < len(long.prompt) // 2, at_first_token
        assert engine.migrations == 1  # the long prompt moved into the batch mid-prefill
        long_events = []
        while not long.events.empty():
            long_events.append(long.events.get())
        assert [e[2] for e in long_events][-1] in ("length", "stop")  # and it still completed
    finally:
        gated.go.set()
        engine.close(timeout=WAIT)


def test_a_long_prompt_moved_mid_prefill_answers_as_it_would_alone(model_and_tokenizer):
    """Migration mid-prefill keeps the KV state exact: greedy tokens equal a solo run's."""
    model, tokenizer = model_and_tokenizer

    def tokens_of(request):
        out = []
        while True:
            event = request.events.get(timeout=WAIT)
            if isinstance(event, BaseException):
                raise event
            out.append(event[1])
            if event[2] is not None:
                return out

    solo_engine = BatchEngine(model, sorted(tokenizer.eos_token_ids), max_batch_size=8, prefill_step_size=STEP)
    alone = EngineRequest(prompt=long_prompt(300), max_tokens=6)
    solo_engine.submit(alone)
    expected = tokens_of(alone)
    solo_engine.close(timeout=WAIT)

    gated = GatedModel(model, hold_at=3)
    engine = BatchEngine(gated, sorted(tokenizer.eos_token_ids), max_batch_size=8, prefill_step_size=STEP)
    try:
        moved = EngineRequest(prompt=long_prompt(300), max_tokens=6)
        engine.submit(moved)
        assert gated.entered.wait(timeout=WAIT)
        engine.submit(EngineRequest(prompt=[9, 10, 11], max_tokens=4))
        gated.go.set()
        assert tokens_of(moved) == expected
    finally:
        gated.go.set()
        engine.close(timeout=WAIT)


def test_n_choices_prefill_their_prompt_once_between_other_requests_steps(model_and_tokenizer):
    """Same-prompt requests submitted together (a request's n choices) share one chunked prefill, and a
    request arriving meanwhile is still served between its chunks."""
    model, tokenizer = model_and_tokenizer
    gated = GatedModel(model, hold_at=2)
    engine = BatchEngine(gated, sorted(tokenizer.eos_token_ids), max_batch_size=8, prefill_step_size=STEP)
    try:
        choices = [EngineRequest(prompt=long_prompt(), max_tokens=2, index=i) for i in range(3)]
        engine.submit_all(choices)
        assert gated.entered.wait(timeout=WAIT)  # the shared prompt is mid-prefill
        short = EngineRequest(prompt=[5, 6, 7, 8], max_tokens=3)
        short.events = RecordingQueue(choices[0])
        engine.submit(short)
        gated.go.set()
        assert short.finished.wait(timeout=WAIT) and all(c.finished.wait(timeout=WAIT) for c in choices)
        assert short.events.other_prefilled_at_first_token < len(long_prompt()) // 2
        # Once: all but the last token, fed a chunk at a time (before: each choice prefilled all of it).
        assert sum(c.prefilled for c in choices) == len(long_prompt()) - 1
        for choice in choices:
            events = [choice.events.get(timeout=WAIT) for _ in range(2)]
            assert events[-1][2] in ("length", "stop")
    finally:
        gated.go.set()
        engine.close(timeout=WAIT)


def test_n_choices_cancelled_during_their_shared_prefill_stop_within_one_chunk(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    gated = GatedModel(model, hold_at=2)
    engine = BatchEngine(gated, sorted(tokenizer.eos_token_ids), max_batch_size=8, prefill_step_size=STEP,
                         prompt_cache=PromptCacheStore())
    try:
        choices = [EngineRequest(prompt=long_prompt(), max_tokens=4, index=i) for i in range(2)]
        engine.submit_all(choices)
        assert gated.entered.wait(timeout=WAIT)
        for choice in choices:
            engine.cancel(choice)
        gated.go.set()
        assert all(c.finished.wait(timeout=WAIT) for c in choices)
        assert sum(c.prefilled for c in choices) <= 2 * STEP and gated.calls <= 2
        assert all(c.generated == 0 for c in choices)
        # What was computed stays for the next request with that prompt.
        later = EngineRequest(prompt=long_prompt(), max_tokens=1)
        engine.submit(later)
        assert later.finished.wait(timeout=WAIT)
        assert later.cached_tokens == sum(c.prefilled for c in choices) > 0
    finally:
        gated.go.set()
        engine.close(timeout=WAIT)
