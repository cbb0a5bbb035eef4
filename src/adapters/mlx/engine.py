"""Continuous batching over mlx-lm's `BatchGenerator`, one engine (and thread) per loaded model.

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

import itertools
import queue
import threading
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


def _worker() -> None:
    global _idle_workers
    while True:
        job = _jobs.get()
        try:
            job()
        except BaseException:  # noqa: BLE001 - a job reports its own errors; the thread lives on
            pass
        with _workers_lock:
            _idle_workers += 1


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

    # ------------------------------------------------------------------ API for callers

    def submit(self, request: EngineRequest) -> None:
        with self._cond:
            if self._closed:
                raise EngineClosed("the model was unloaded")
            self._pending.append(request)
            if not self._started:
                self._started = True
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
        generator = self._new_generator()
        active: dict[int, EngineRequest] = {}
        try:
            while True:
                with self._cond:
                    while not (self._pending or self._cancels or active or self._closed):
                        self._cond.wait()
                    if self._closed:
                        break
                    pending, self._pending = self._pending, []
                    cancels, self._cancels = self._cancels, []
                try:
                    self._step(generator, active, pending, cancels)
                except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                    for request in list(active.values()) + pending:
                        if not request.finished.is_set():
                            request.events.put(exc)
                            request.finished.set()
                    active.clear()
                    generator.close()
                    generator = self._new_generator()
        finally:
            error = EngineClosed("the model was unloaded")
            with self._cond:
                leftovers = list(active.values()) + self._pending
                self._pending = []
            for request in leftovers:
                if not request.finished.is_set():
                    request.events.put(error)
                    request.finished.set()
            generator.close()
            self.stopped.set()

    def _step(self, generator, active: dict[int, EngineRequest], pending: list[EngineRequest], cancels) -> None:
        if cancels:
            uids = [uid for uid, request in active.items() if request in cancels]
            if uids:
                generator.remove(uids)
            for uid in uids:
                active.pop(uid).finished.set()
            for request in cancels:
                request.finished.set()
        pending = [r for r in pending if not r.cancelled]
        if pending:
            uids = generator.insert(
                [r.prompt for r in pending],
                [r.max_tokens for r in pending],
                samplers=[r.sampler for r in pending],
                logits_processors=[list(r.logits_processors) for r in pending],
            )
            active.update(zip(uids, pending))
        if not active:
            return
        _, responses = generator.next()
        if responses:
            self.steps += 1
        for response in responses:
            request = active.get(response.uid)
            if request is None:
                continue
            request.generated += 1
            request.events.put((response.token, response.finish_reason))
            if response.finish_reason is not None:
                del active[response.uid]
                request.finished.set()
