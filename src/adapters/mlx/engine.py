"""Continuous batching over mlx-lm's `BatchGenerator`, one engine (and thread) per loaded model.

A request that finds the engine idle decodes solo (plain KV cache, no batch bookkeeping); when another
request arrives it moves, with its cache, into the batch.

Every request for a model goes into one `BatchGenerator`: concurrent requests decode together (one forward
pass per step for the batch). Requests may join a running batch at any step; a full batch queues the rest.
With batching disabled the batch size is 1, which serves requests in order.

Each request has its own sampler, logits processors, max_tokens and stop tokens, so outputs are
independent. The engine thread owns every MLX call for its model; callers only read tokens from their
queue. `cancel()` removes a request from the batch at the next step: a consumer that stops reading
stops generation within a token or two, or within one prefill chunk while its prompt is read.

Prompt cache: each request starts from the longest cached prefix of its prompt (`adapters.mlx.prompt_cache`);
a finished or cancelled sequence leaves its KV state behind for the next turn of the conversation. Requests
that arrive together with the same prompt (the n choices of one request) prefill it once and decode from
copies (`adapters.mlx.shared_prefill`).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from adapters.mlx.engine_threads import (  # on_engine_thread: re-exported for the text runtime
    _live_engines,
    _register_exit_hook,
    on_engine_thread,
    run_on_engine_thread,
)
from adapters.mlx.engine_state import EngineState
from adapters.mlx.shared_prefill import SharedPrefill, same_prompt_groups
from adapters.mlx.solo import Solo
from application.errors import Unavailable

if TYPE_CHECKING:
    from adapters.mlx.prompt_cache import PromptCacheStore

class EngineClosed(Unavailable):
    """The model was unloaded (server shutdown) while a request was waiting or running."""


@dataclass(eq=False)
class EngineRequest:
    prompt: list[int]
    max_tokens: int
    sampler: Callable | None = None  # None: the engine's shared greedy sampler (batched argmax)
    logits_processors: list[Callable] = field(default_factory=list)
    top_logprobs: int | None = None  # None: no log probabilities; 0: the token's own; k: plus k alternatives
    index: int = 0  # choice index (n > 1): several requests may share one `events` queue
    use_cache: bool = True  # look up / store the prompt cache
    warm_only: bool = False  # prefill the prompt into the prompt cache, generate nothing
    # The resolved InferenceParams, for an engine that rebuilds the sampler in another process
    # (adapters.mlx.distributed); this engine uses `sampler` / `logits_processors`.
    params: Any = None
    # Filled in by the engine thread.
    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    generated: int = 0  # tokens computed for this request, read by tests of cancellation
    prefilled: int = 0  # prompt tokens computed (not taken from the prompt cache)
    cached_tokens: int = 0  # prompt tokens taken from the prompt cache
    finished: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False


class BatchEngine:
    def __init__(self, model: Any, stop_token_ids: list[int], max_batch_size: int = 8, prefill_step_size: int = 2048,
                 prompt_cache: "PromptCacheStore | None" = None):
        self._model = model
        self._stop_token_ids = sorted(set(stop_token_ids))
        self.max_batch_size = max(1, int(max_batch_size))
        self._prefill_step_size = prefill_step_size
        self.prompt_cache = prompt_cache
        self._cond = threading.Condition()
        self._pending: list[EngineRequest] = []
        self._cancels: list[EngineRequest] = []
        self._closed = False
        self._started = False
        self.stopped = threading.Event()  # set when the engine's loop has ended
        self.steps = 0  # decode steps run; with batching, fewer than the tokens produced
        self.prefill_chunks = 0  # prefill chunks run (solo or batched)
        self.migrations = 0  # solo sequences moved into the batch

    # ------------------------------------------------------------------ API for callers

    def submit(self, request: EngineRequest) -> None:
        self.submit_all([request])

    def submit_all(self, requests: list[EngineRequest]) -> None:
        """Submit together: the engine sees them in one iteration (n choices then share one prefill)."""
        with self._cond:
            if self._closed:
                raise EngineClosed("the model was unloaded")
            self._pending.extend(requests)
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
        """Stop the thread; running requests end with `EngineClosed`. The prompt cache is dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            started = self._started
        if started:
            self.stopped.wait(timeout=timeout)
        if self.prompt_cache is not None:
            self.prompt_cache.clear()

    # ------------------------------------------------------------------ engine thread
    #
    # A request that finds the engine idle runs "solo" (see `adapters.mlx.solo`). When a second
    # request arrives, the solo sequence moves into the BatchGenerator with its cache (mid-prefill
    # or mid-decode), and from then on they run together. With batching off, requests run solo in turn.

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

        state = EngineState()
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
            if self.prompt_cache is not None:
                self.prompt_cache.clear()
            self._model = None  # a closed engine never runs again: let unload free the weights
            _live_engines.discard(self)
            self.stopped.set()

    def _iterate(self, state: EngineState, pending: list[EngineRequest], cancels: list[EngineRequest]) -> None:
        for request in cancels:
            self._drop(state, request)
        state.waiting.extend(r for r in pending if not r.cancelled)
        self._schedule(state)
        solo = state.solo
        if solo is not None:
            if solo.prefilling:
                solo.prefill_step()
                self.prefill_chunks += 1
                return
            token, finish, logprobs = solo.step()
            self.steps += 1
            self._emit(solo.request, token, finish, logprobs)
            if finish is not None:
                self._complete(solo.request, solo.fed, solo.cache)
                state.solo = None
        else:
            if state.prefills:  # one chunk of a shared prefill, then a step for the rows decoding
                self._shared_prefill_step(state)
            if state.active:
                self._batch_step(state)

    def _lookup(self, request: EngineRequest) -> tuple[list | None, list[int]]:
        """The nearest cached prefix of the request's prompt, and the tokens left to prefill."""
        if self.prompt_cache is None or not request.use_cache:
            return None, list(request.prompt)
        cache, rest = self.prompt_cache.fetch(request.prompt)
        request.cached_tokens = len(request.prompt) - len(rest)
        return cache, rest

    def _store(self, request: EngineRequest, tokens: list[int], cache: list | None) -> None:
        if self.prompt_cache is not None and request.use_cache and tokens and cache is not None:
            self.prompt_cache.insert(list(tokens), cache)

    def _complete(self, request: EngineRequest, tokens: list[int], cache: list | None) -> None:
        """After the last token went out: store, then mark finished. The stream's close waits for `finished` before
        the HTTP body or [DONE] goes out, so a client's next GET /api/pool sees the entry."""
        try:
            self._store(request, tokens, cache)
        finally:
            request.finished.set()

    def _warm(self, request: EngineRequest) -> None:
        """Prefill a prompt (a profile's system prompt) into the prompt cache, in chunks."""
        import mlx.core as mx
        from mlx_lm.models.cache import make_prompt_cache

        cache, rest = self._lookup(request)
        if request.cached_tokens < len(request.prompt) - 1:
            cache = cache if cache is not None else make_prompt_cache(self._model)
            rest = list(rest)
            while rest:
                chunk, rest = rest[: self._prefill_step_size], rest[self._prefill_step_size:]
                self._model(mx.array(chunk)[None], cache=cache)
                mx.eval([c.state for c in cache])
                request.prefilled += len(chunk)
                self.prefill_chunks += 1
            self._store(request, request.prompt, cache)
        request.events.put((request.index, None, "warm", None, None))
        request.finished.set()

    def _drop(self, state: EngineState, request: EngineRequest) -> None:
        shared = next((p for p in state.prefills if request in p.requests), None)
        if state.solo is not None and state.solo.request is request:
            self._store(request, state.solo.fed, state.solo.cache)
            state.solo = None
        elif request in state.waiting:
            state.waiting.remove(request)
        elif shared is not None:
            shared.requests.remove(request)
            if not shared.requests:  # every choice went: keep what was computed, as for a solo prefill
                state.prefills.remove(shared)
                self._store(request, shared.fed, shared.cache)
        else:
            uids = [uid for uid, r in state.active.items() if r is request]
            if uids and state.generator is not None:
                # Keep what was computed: a client that retries (or a stop string that ended a
                # chat turn) starts from it.
                kept = state.generator.remove(uids, return_prompt_caches=True)
                for cache, tokens in kept.values():
                    self._store(request, tokens, cache)
            for uid in uids:
                del state.active[uid]
        request.finished.set()

    def _schedule(self, state: EngineState) -> None:
        for request in [r for r in state.waiting if r.warm_only]:
            state.waiting.remove(request)
            self._warm(request)
        if not state.waiting:
            return
        if self.max_batch_size == 1 or (state.solo is None and not state.active and not state.prefills
                                        and len(state.waiting) == 1):
            if state.solo is None:  # batching off: the rest wait their turn
                # Set up before leaving `waiting`: if it raises, the request is still in the
                # state, so the error reaches its consumer instead of leaving it waiting.
                request = state.waiting[0]
                cache, rest = self._lookup(request)
                solo = Solo(self._model, request, self._stop_token_ids, self._prefill_step_size, cache, rest)
                state.waiting.popleft()
                state.solo = solo
            return
        if state.generator is None:
            state.generator = self._new_generator()
        if state.solo is not None:
            self._migrate(state)
        requests, found = [], []
        for group in same_prompt_groups(list(state.waiting)):
            cache, rest = self._lookup(group[0])
            if len(group) > 1 and len(rest) > 1:  # prefilled once, below; then inserted with copies
                for request in group[1:]:
                    request.cached_tokens = group[0].cached_tokens
                state.prefills.append(SharedPrefill(self._model, group, self._prefill_step_size, cache, rest))
                continue
            requests.append(group[0])
            found.append((cache, rest))
            for request in group[1:]:
                requests.append(request)
                found.append(self._lookup(request))
        # Cleared after the insert: if it raises, the requests are still in the state and get the error.
        self._insert(state, requests, [rest for _, rest in found], [cache for cache, _ in found])
        state.waiting.clear()

    def _insert(self, state: EngineState, requests: list[EngineRequest], rests: list[list[int]],
                caches: list) -> None:
        if not requests:
            return
        uids = state.generator.insert(
            rests,
            [r.max_tokens for r in requests],
            caches=caches,
            all_tokens=[r.prompt[: len(r.prompt) - len(rest)] for r, rest in zip(requests, rests)],
            samplers=[r.sampler for r in requests],
            logits_processors=[list(r.logits_processors) for r in requests],
        )
        state.active.update(zip(uids, requests))

    def _shared_prefill_step(self, state: EngineState) -> None:
        shared = state.prefills[0]
        if not shared.done:
            shared.step()
            self.prefill_chunks += 1
        if shared.done:
            self._insert(state, shared.requests, [shared.last] * len(shared.requests), shared.caches())
            state.prefills.pop(0)

    def _migrate(self, state: EngineState) -> None:
        """Move the solo sequence, with its KV cache, into the batch (a second request arrived)."""
        # `state.solo` is cleared only once the move succeeded: on an error the request is
        # still in the state and gets the error.
        solo = state.solo
        request = solo.request
        self.migrations += 1
        if solo.prefilling:  # the batch prefills the rest, interleaved with the others' decoding
            uids = state.generator.insert_segments(
                [[list(solo.rest)]],
                [request.max_tokens],
                caches=[solo.cache],
                all_tokens=[list(solo.fed)],
                samplers=[request.sampler],
                logits_processors=[list(request.logits_processors)],
            )
            state.active[uids[0]] = request
            state.solo = None
            return
        token, finish, logprobs = solo.take_pending()
        self._emit(request, token, finish, logprobs)
        if finish is None:
            uids = state.generator.insert_segments(
                [[[token]]],
                [request.max_tokens - solo.emitted],
                caches=[solo.cache],
                all_tokens=[list(solo.fed)],
                samplers=[request.sampler],
                logits_processors=[list(request.logits_processors)],
            )
            state.active[uids[0]] = request
        else:
            self._complete(request, solo.fed, solo.cache)
        state.solo = None

    def _batch_step(self, state: EngineState) -> None:
        prompt_responses, responses = state.generator.next()
        for progress in prompt_responses:
            request = state.active.get(progress.uid)
            if request is not None and not progress.end_of_prompt:
                request.prefilled = progress.progress[0]
                self.prefill_chunks += 1
        if responses:
            self.steps += 1
        for response in responses:
            request = state.active.get(response.uid)
            if request is None:
                continue
            self._emit(request, response.token, response.finish_reason, response.logprobs)
            if response.finish_reason is not None:
                del state.active[response.uid]
                self._complete(request, response.all_tokens, response.prompt_cache)

    @staticmethod
    def _emit(request: EngineRequest, token: int, finish: str | None, logprobs: Any = None) -> None:
        request.generated += 1
        chosen = top = None
        if request.top_logprobs is not None and logprobs is not None:
            chosen, top = _token_logprobs(logprobs, token, request.top_logprobs)
        request.events.put((request.index, token, finish, chosen, top))  # `_complete` sets `finished`


def _token_logprobs(logprobs: Any, token: int, k: int) -> tuple[float, list[tuple[int, float]]]:
    """The chosen token's log probability and the `k` most likely (id, logprob), best first."""
    import mlx.core as mx

    chosen = float(logprobs[token].item())
    if k <= 0:
        return chosen, []
    k = min(k, logprobs.shape[-1])
    ids = mx.argpartition(-logprobs, kth=k - 1)[:k]
    values = logprobs[ids]
    pairs = sorted(zip(ids.tolist(), values.tolist()), key=lambda p: -p[1])
    return chosen, [(int(i), float(v)) for i, v in pairs]
