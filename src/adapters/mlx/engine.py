"""Continuous batching over mlx-lm's `BatchGenerator`, one engine (and thread) per loaded model.

A request that finds the engine idle decodes solo (plain KV cache, no batch bookkeeping);
when another request arrives it moves, with its cache, into the batch.

Every request for a model is inserted into one `BatchGenerator`, so concurrent requests are
decoded together (one forward pass per step for the whole batch) instead of one after the
other. Requests may join a running batch at any step; a full batch queues the rest. With
batching disabled the engine runs with a batch size of 1, which serves requests in order.

Each request has its own sampler, logits processors, max_tokens and stop tokens, so outputs
are independent. The engine thread owns every MLX call for its model; callers only read
tokens from their queue. `cancel()` removes a request from the batch at the next step, which
is how a consumer that stops reading stops generation within a token or two.
"""

from __future__ import annotations

import atexit
import itertools
import queue
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from application.errors import Unavailable

# Engine threads are parked and reused, never ended: a thread that used MLX's thread-local
# generation stream and then exits can abort the process at interpreter exit ("terminate called
# without an active exception", seen here with mlx 0.32). Parked daemon threads avoid that.
_jobs: "queue.SimpleQueue[Callable[[], None]]" = queue.SimpleQueue()
_idle_workers = 0
_workers_lock = threading.Lock()
_worker_ids = itertools.count()
_on_engine_thread = threading.local()
# Engines whose loop is running; closed at interpreter exit (see `_close_live_engines`).
_live_engines: "weakref.WeakSet[BatchEngine]" = weakref.WeakSet()
_exit_hook_registered = False


def _worker() -> None:
    global _idle_workers
    _on_engine_thread.active = True
    while True:
        job = _jobs.get()
        try:
            job()
        except BaseException:  # noqa: BLE001 - a job reports its own errors; the thread lives on
            pass
        # A parked thread must not keep the finished job (a bound `BatchEngine._run`, hence the
        # engine and its model's weights) alive: unload has to free them.
        job = None
        with _workers_lock:
            _idle_workers += 1


def on_engine_thread() -> bool:
    """True on an engine thread (where waiting for an engine would wait for oneself)."""
    return getattr(_on_engine_thread, "active", False)


def _close_live_engines() -> None:
    """At interpreter exit, stop every engine loop between steps.

    An engine thread still inside an MLX call (or inside its generation-stream context) while
    the interpreter finalises aborts the process (SIGABRT, "terminate called without an active
    exception"); closed engines park their threads outside MLX.
    """
    for engine in list(_live_engines):
        engine.close(timeout=10.0)


def _register_exit_hook() -> None:
    global _exit_hook_registered
    with _workers_lock:
        if _exit_hook_registered:
            return
        _exit_hook_registered = True
    atexit.register(_close_live_engines)


def run_on_engine_thread(job: Callable[[], None]) -> None:
    """Run `job` on a parked engine thread, starting a new one only when none is idle."""
    global _idle_workers
    with _workers_lock:
        if _idle_workers > 0:
            _idle_workers -= 1
        else:
            threading.Thread(target=_worker, name=f"mlxm-engine-{next(_worker_ids)}", daemon=True).start()
    _jobs.put(job)


class EngineClosed(Unavailable):
    """The model was unloaded (server shutdown) while a request was waiting or running."""


@dataclass(eq=False)
class EngineRequest:
    prompt: list[int]
    max_tokens: int
    sampler: Callable | None = None  # None: the engine's shared greedy sampler (batched argmax)
    logits_processors: list[Callable] = field(default_factory=list)
    # Filled in by the engine thread.
    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    generated: int = 0  # tokens computed for this request, read by tests of cancellation
    finished: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False


class BatchEngine:
    def __init__(self, model: Any, stop_token_ids: list[int], max_batch_size: int = 8, prefill_step_size: int = 2048):
        self._model = model
        self._stop_token_ids = sorted(set(stop_token_ids))
        self.max_batch_size = max(1, int(max_batch_size))
        self._prefill_step_size = prefill_step_size
        self._cond = threading.Condition()
        self._pending: list[EngineRequest] = []
        self._cancels: list[EngineRequest] = []
        self._closed = False
        self._started = False
        self.stopped = threading.Event()  # set when the engine's loop has ended
        self.steps = 0  # decode steps run; with batching, fewer than the tokens produced
        self.migrations = 0  # solo sequences moved into the batch

    # ------------------------------------------------------------------ API for callers

    def submit(self, request: EngineRequest) -> None:
        with self._cond:
            if self._closed:
                raise EngineClosed("the model was unloaded")
            self._pending.append(request)
            if not self._started:
                self._started = True
                _register_exit_hook()
                _live_engines.add(self)
                run_on_engine_thread(self._run)
            self._cond.notify()

    def cancel(self, request: EngineRequest) -> None:
        with self._cond:
            if request.finished.is_set() or request.cancelled:
                return
            request.cancelled = True
            self._cancels.append(request)
            self._cond.notify()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread; running requests end with `EngineClosed`."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            started = self._started
        if started:
            self.stopped.wait(timeout=timeout)

    # ------------------------------------------------------------------ engine thread
    #
    # A request that finds the engine idle runs "solo": a plain KV cache and mlx-lm's
    # single-sequence step (the same work as `stream_generate`, no batch bookkeeping). When a
    # second request arrives, the solo sequence moves into the BatchGenerator with its cache,
    # and from then on they decode together. With batching off, requests run solo in turn.

    def _new_generator(self):
        from mlx_lm.generate import BatchGenerator

        return BatchGenerator(
            self._model,
            max_tokens=1,
            stop_tokens=[[t] for t in self._stop_token_ids],
            completion_batch_size=self.max_batch_size,
            prefill_batch_size=self.max_batch_size,
            prefill_step_size=self._prefill_step_size,
        )

    def _run(self) -> None:
        import mlx.core as mx
        from mlx_lm.generate import generation_stream

        state = _EngineState()
        try:
            with mx.stream(generation_stream):
                while True:
                    with self._cond:
                        while not (self._pending or self._cancels or state.busy or self._closed):
                            self._cond.wait()
                        if self._closed:
                            break
                        pending, self._pending = self._pending, []
                        cancels, self._cancels = self._cancels, []
                    try:
                        self._iterate(state, pending, cancels)
                    except Exception as exc:  # noqa: BLE001 - every request in flight gets the error
                        for request in state.requests():
                            if not request.finished.is_set():
                                request.events.put(exc)
                                request.finished.set()
                        state.reset()
        finally:
            error = EngineClosed("the model was unloaded")
            with self._cond:
                leftovers = state.requests() + self._pending
                self._pending = []
            for request in leftovers:
                if not request.finished.is_set():
                    request.events.put(error)
                    request.finished.set()
            state.reset()
            self._model = None  # a closed engine never runs again: let unload free the weights
            _live_engines.discard(self)
            self.stopped.set()

    def _iterate(self, state: "_EngineState", pending: list[EngineRequest], cancels: list[EngineRequest]) -> None:
        for request in cancels:
            self._drop(state, request)
        state.waiting.extend(r for r in pending if not r.cancelled)
        self._schedule(state)
        if state.solo is not None:
            token, finish = state.solo.step()
            self.steps += 1
            self._emit(state.solo.request, token, finish)
            if finish is not None:
                state.solo = None
        elif state.active:
            self._batch_step(state)

    def _drop(self, state: "_EngineState", request: EngineRequest) -> None:
        if state.solo is not None and state.solo.request is request:
            state.solo = None
        elif request in state.waiting:
            state.waiting.remove(request)
        else:
            uids = [uid for uid, r in state.active.items() if r is request]
            if uids and state.generator is not None:
                state.generator.remove(uids)
            for uid in uids:
                del state.active[uid]
        request.finished.set()

    def _schedule(self, state: "_EngineState") -> None:
        if not state.waiting:
            return
        if self.max_batch_size == 1 or (state.solo is None and not state.active and len(state.waiting) == 1):
            if state.solo is None:  # batching off: the rest wait their turn
                # Set up before leaving `waiting`: if prefill raises, the request is still in
                # the state, so the error reaches its consumer instead of leaving it waiting.
                solo = _Solo(self._model, state.waiting[0], self._stop_token_ids, self._prefill_step_size)
                state.waiting.popleft()
                state.solo = solo
            return
        if state.generator is None:
            state.generator = self._new_generator()
        if state.solo is not None:
            self._migrate(state)
        requests = list(state.waiting)
        uids = state.generator.insert(
            [r.prompt for r in requests],
            [r.max_tokens for r in requests],
            samplers=[r.sampler for r in requests],
            logits_processors=[list(r.logits_processors) for r in requests],
        )
        state.waiting.clear()
        state.active.update(zip(uids, requests))

    def _migrate(self, state: "_EngineState") -> None:
        """Move the solo sequence, with its KV cache, into the batch (a second request arrived)."""
        # `state.solo` is cleared only once the move succeeded: on an error the request is
        # still in the state and gets the error.
        solo = state.solo
        self.migrations += 1
        token, finish = solo.take_pending()
        self._emit(solo.request, token, finish)
        if finish is None:
            request = solo.request
            uids = state.generator.insert_segments(
                [[[token]]],
                [request.max_tokens - solo.emitted],
                caches=[solo.cache],
                all_tokens=[list(solo.fed)],
                samplers=[request.sampler],
                logits_processors=[list(request.logits_processors)],
            )
            state.active[uids[0]] = request
        state.solo = None

    def _batch_step(self, state: "_EngineState") -> None:
        _, responses = state.generator.next()
        if responses:
            self.steps += 1
        for response in responses:
            request = state.active.get(response.uid)
            if request is None:
                continue
            self._emit(request, response.token, response.finish_reason)
            if response.finish_reason is not None:
                del state.active[response.uid]

    @staticmethod
    def _emit(request: EngineRequest, token: int, finish: str | None) -> None:
        request.generated += 1
        request.events.put((token, finish))
        if finish is not None:
            request.finished.set()


class _EngineState:
    """What the engine thread holds: at most one solo sequence, or a batch, plus the queue."""

    def __init__(self) -> None:
        self.solo: _Solo | None = None
        self.generator = None  # mlx-lm BatchGenerator, made on first need
        self.active: dict[int, EngineRequest] = {}
        self.waiting: deque[EngineRequest] = deque()

    @property
    def busy(self) -> bool:
        return self.solo is not None or bool(self.active) or bool(self.waiting)

    def requests(self) -> list[EngineRequest]:
        solo = [self.solo.request] if self.solo is not None else []
        return solo + list(self.active.values()) + list(self.waiting)

    def reset(self) -> None:
        self.solo = None
        self.active.clear()
        self.waiting.clear()
        if self.generator is not None:
            self.generator.close()
            self.generator = None


class _Solo:
    """One sequence decoded with a plain KV cache, pipelined like mlx-lm's `generate_step`.

    Invariant between steps: `cache` holds the prompt and every token in `fed`; `pending` is the
    next token, sampled (lazily) but not yet fed to the model.
    """

    def __init__(self, model: Any, request: EngineRequest, stop_token_ids: list[int], prefill_step_size: int):
        import mlx.core as mx
        from mlx_lm.models.cache import make_prompt_cache

        self.request = request
        self._model = model
        self._stop = set(stop_token_ids)
        self._sampler = request.sampler
        self._processors = list(request.logits_processors)
        self.cache = make_prompt_cache(model)
        self.fed: list[int] = list(request.prompt)
        self.emitted = 0
        prompt = mx.array(request.prompt)
        self._context = prompt if self._processors else None
        while prompt.size > 1:
            count = min(prefill_step_size, prompt.size - 1)
            model(prompt[:count][None], cache=self.cache)
            mx.eval([c.state for c in self.cache])
            prompt = prompt[count:]
        self.pending = self._forward(prompt, first=True)
        mx.async_eval(self.pending)

    def _forward(self, inputs, first: bool = False):
        import mlx.core as mx

        logits = self._model(inputs[None], cache=self.cache)[:, -1, :]
        if self._processors:
            if not first:
                self._context = mx.concatenate([self._context, inputs])
            for processor in self._processors:
                logits = processor(self._context, logits)
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        sampled = self._sampler(logprobs) if self._sampler is not None else mx.argmax(logprobs, axis=-1)
        return sampled.reshape(1)  # the next input, shape (1,)

    def step(self) -> tuple[int, str | None]:
        """Emit the pending token; first start computing the one after it (unless it is the last)."""
        import mlx.core as mx

        current = self.pending
        last = self.emitted + 1 >= self.request.max_tokens
        if not last:
            self.pending = self._forward(current)
            mx.async_eval(self.pending)
        token = int(current.item())
        if not last:
            self.fed.append(token)
        return self._finish(token, last)

    def take_pending(self) -> tuple[int, str | None]:
        """Evaluate the pending token without computing further (the batch takes over from here)."""
        token = int(self.pending.item())
        return self._finish(token, self.emitted + 1 >= self.request.max_tokens)

    def _finish(self, token: int, last: bool) -> tuple[int, str | None]:
        self.emitted += 1
        if token in self._stop:
            return token, "stop"
        return token, "length" if last else None
