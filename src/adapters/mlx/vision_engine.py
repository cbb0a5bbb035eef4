"""Continuous batching of vision-model requests over mlx-vlm's own `BatchGenerator`.

One engine (and one parked engine thread) per loaded vision model owns every MLX call for it.
It follows what mlx-vlm's server does (`mlx_vlm/server/generation.py`, `ResponseGenerator._run_impl`):
each request's image(s) and prompt go through `model.get_input_embeddings` on the engine thread,
then the row is inserted into `mlx_vlm.generate.ar.BatchGenerator` (built on `model.language_model`)
with those embeddings as its prompt kwargs. mlx-vlm keeps each row's decode state in the batch
(per-row KV cache, per-row M-RoPE `rope_deltas` captured after prefill), which is why rows can
share decode steps while stepping plain `stream_generate` generators in turn mixes them up.

- Image and text-only requests share the engine and the decode steps.
- Admission is FIFO into at most `max_batch_size` rows; later requests wait, in order.
- Prompts are prefilled one row at a time (`prefill_batch_size=1`, no padded prefill), then decoded
  together: each request's greedy output equals its output alone (tests check it).
- mlx-vlm's `BatchGenerator` takes ONE sampler for the whole batch; per-request sampling (temperature,
  top-p, seed) runs as the request's last logits processor (`SampleRow`), which draws the token from
  the request's own random key and leaves only it for the shared argmax.
- Prompt cache (when given): mlx-vlm's own prefix cache (APC, `adapters.mlx.vision_cache`) is handed to
  the `BatchGenerator`; each row carries its key (`_apc_semantic_hash`), and the prefill reports the
  tokens it reused (`PromptProgress.cached_tokens`), which every chunk of the request carries.
- `cancel()` removes the row (`BatchGenerator.remove`) at the next step; a request whose embedding
  fails (bad image for the processor) fails alone. A failure inside a shared step fails the
  requests of that step and the engine starts a fresh generator for the next ones.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from adapters.mlx.engine import EngineClosed, on_engine_thread, run_on_engine_thread

CLOSE_ACK_SECONDS = 5.0


@dataclass(frozen=True)
class VisionToken:
    """One streamed piece of a request's answer (`generation_tokens` never counts the EOS token)."""

    text: str
    prompt_tokens: int
    generation_tokens: int
    finish_reason: str | None
    token: int | None = None  # the token that produced `text` (None for the EOS of a "stop")
    logprob: float | None = None  # when the request asked for log probabilities
    top: tuple = ()  # (token id, logprob) alternatives, best first
    cached_tokens: int = 0  # prompt tokens the prefill took from the prompt cache


@dataclass(eq=False)
class VisionJob:
    inputs: dict  # mlx-vlm's `prepare_inputs` output: input_ids, pixel_values, image grids...
    max_tokens: int
    sampler: Callable | None = None  # None: greedy (the batch's shared argmax)
    logits_processors: list = field(default_factory=list)
    index: int = 0  # choice index (n > 1): the choices of one request share one `events` queue
    top_logprobs: int | None = None  # None: no log probabilities; 0: the token's own; k: plus k alternatives
    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    finished: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    steps: int = 0  # tokens computed, read by tests of cancellation
    # Engine-thread state.
    uid: int | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    detokenizer: Any = None
    sampled: deque = field(default_factory=deque)  # log-probability rows recorded by `SampleRow`, in order


class SampleRow:
    """A logits processor that samples this row with its own sampler and keeps only that token.

    mlx-vlm's `BatchGenerator` applies one sampler to all rows; putting the request's sampler here
    (after its other processors, on log-probabilities exactly as `generate_step` computes them) keeps
    each request's sampling settings and random key its own inside a shared batch.

    It also records each row's log-probabilities when the request asked for them: mlx-vlm's
    `BatchGenerator` computes log probabilities for the whole batch with one `top_logprobs_k`, so
    they are taken here, per request, in the order the tokens are sampled.
    """

    def __init__(self, sampler: Callable, record: deque | None = None) -> None:
        self._sampler = sampler
        self._record = record

    def __call__(self, tokens, logits):
        import mlx.core as mx

        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        if self._record is not None:
            self._record.append(logprobs[0])
        token = self._sampler(logprobs)
        keep = mx.arange(logits.shape[-1]) == token.reshape(-1, 1)
        return mx.where(keep, mx.zeros_like(logits), mx.array(-float("inf"), dtype=logits.dtype))


def _argmax(logprobs):
    import mlx.core as mx

    return mx.argmax(logprobs, axis=-1)


class VisionEngine:
    def __init__(self, model: Any, processor: Any, max_batch_size: int = 8, prompt_cache: Any = None) -> None:
        self._model = model
        self._processor = processor
        self.prompt_cache = prompt_cache  # a `VisionPromptCache`, or None: every prompt is prefilled
        self.max_batch_size = max(1, int(max_batch_size))
        self._cond = threading.Condition()
        self._pending: deque[VisionJob] = deque()
        self._cancels: list[VisionJob] = []
        self._active: dict[int, VisionJob] = {}
        self._closed = False
        self._started = False
        self.stopped = threading.Event()
        # Read by tests and benchmarks.
        self.max_seen_active = 0  # most requests admitted at once
        self.decode_steps = 0  # BatchGenerator steps that produced tokens
        self.max_rows_per_step = 0  # most requests that got a token from one step (> 1: batched)

    # ------------------------------------------------------------------ API for callers

    def submit(self, job: VisionJob) -> None:
        with self._cond:
            if self._closed:
                raise EngineClosed("the model was unloaded")
            self._pending.append(job)
            if not self._started:
                self._started = True
                run_on_engine_thread(self._run)
            self._cond.notify()

    def cancel(self, job: VisionJob) -> None:
        with self._cond:
            if job.finished.is_set() or job.cancelled:
                return
            job.cancelled = True
            self._cancels.append(job)
            self._cond.notify()

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            started = self._started
            self._cond.notify()
        if started and not on_engine_thread():
            self.stopped.wait(timeout)

    # ------------------------------------------------------------------ engine thread

    def _run(self) -> None:
        generator = None
        try:
            while True:
                with self._cond:
                    while not (self._closed or self._pending or self._cancels or self._active):
                        self._cond.wait()
                    if self._closed:
                        break
                    cancels, self._cancels = self._cancels, []
                    for job in cancels:
                        if job in self._pending:
                            self._pending.remove(job)
                    admitted = []
                    while self._pending and len(self._active) + len(admitted) < self.max_batch_size:
                        admitted.append(self._pending.popleft())
                for job in cancels:
                    if job.uid is not None and self._active.pop(job.uid, None) is job and generator is not None:
                        generator.remove(job.uid)
                    self._finish(job, None)
                for job in admitted:
                    if job.cancelled:
                        self._finish(job, None)
                        continue
                    try:
                        if generator is None:
                            generator = self._new_generator()
                        self._insert(generator, job)
                    except Exception as exc:  # noqa: BLE001 - this request's input; the others go on
                        self._finish(job, exc)
                        continue
                    self._active[job.uid] = job
                self.max_seen_active = max(self.max_seen_active, len(self._active))
                if not self._active:
                    if generator is not None:
                        generator.close()
                        generator = None
                    continue
                try:
                    prompts, responses = generator.next()
                except Exception as exc:  # noqa: BLE001 - a shared step failed: its requests fail, the engine goes on
                    for job in list(self._active.values()):
                        self._finish(job, exc)
                    self._active.clear()
                    generator.close()
                    generator = None
                    continue
                for progress in prompts:  # a row's prefill ended (its first token comes in a later step)
                    if (job := self._active.get(progress.uid)) is not None:
                        job.cached_tokens = int(progress.cached_tokens or 0)
                if responses:
                    self.decode_steps += 1
                    self.max_rows_per_step = max(self.max_rows_per_step, len(responses))
                for response in responses:
                    self._deliver(response)
        finally:
            if generator is not None:
                generator.close()
            with self._cond:
                leftovers = list(self._active.values()) + list(self._pending)
                self._active.clear()
                self._pending.clear()
            for job in leftovers:
                self._finish(job, EngineClosed("the model was unloaded"))
            self.stopped.set()

    def _new_generator(self):
        from mlx_vlm.generate.ar import BatchGenerator

        cache = self.prompt_cache
        return BatchGenerator(self._model.language_model, self._processor, sampler=_argmax,
                              completion_batch_size=self.max_batch_size, prefill_batch_size=1,
                              compute_logprobs=False, apc_manager=cache.manager if cache is not None else None)

    def _insert(self, generator, job: VisionJob) -> None:
        """The request's embeddings (vision tower included) computed here, then its row queued."""
        from mlx_vlm.tokenizer_utils import make_streaming_detokenizer

        model, processor, inputs = self._model, self._processor, job.inputs
        input_ids = inputs["input_ids"]
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
        embedded = model.get_input_embeddings(input_ids, inputs.get("pixel_values"),
                                              mask=inputs.get("attention_mask"), **extra)
        prompt_kwargs = {**extra, **{k: v for k, v in embedded.to_dict().items() if v is not None}}
        if self.prompt_cache is not None:
            prompt_kwargs["_apc_semantic_hash"] = self.prompt_cache.key(model, processor, inputs)
        processors = list(job.logits_processors)
        if job.sampler is not None or job.top_logprobs is not None:
            processors.append(SampleRow(job.sampler or _argmax, job.sampled if job.top_logprobs is not None else None))
        (job.uid,) = generator.insert([input_ids.reshape(-1).tolist()], max_tokens=[job.max_tokens],
                                      prompt_kwargs=[prompt_kwargs], logits_processors=[processors or None])
        job.prompt_tokens = int(input_ids.size)
        job.detokenizer = make_streaming_detokenizer(processor)

    def _deliver(self, response) -> None:
        job = self._active.get(response.uid)
        if job is None:  # removed (cancelled) after the step was computed
            return
        finish = response.finish_reason
        detokenizer = job.detokenizer
        token, chosen, top = int(response.token), None, ()
        if job.top_logprobs is not None and job.sampled:
            from adapters.mlx.engine import _token_logprobs

            chosen, top = _token_logprobs(job.sampled.popleft(), token, job.top_logprobs)
        if finish != "stop":  # "stop" is the EOS token: not part of the answer (as in `stream_generate`)
            job.steps += 1
            detokenizer.add_token(token)
        if finish is not None:
            detokenizer.finalize()
        job.events.put((job.index, VisionToken(detokenizer.last_segment, job.prompt_tokens, job.steps, finish,
                                               None if finish == "stop" else token, chosen, tuple(top),
                                               job.cached_tokens)))
        if finish is not None:
            del self._active[response.uid]
            self._finish(job, None)

    @staticmethod
    def _finish(job: VisionJob, error: BaseException | None) -> None:
        if not job.finished.is_set():
            job.events.put((job.index, error if error is not None else StopIteration()))
            job.finished.set()


class _Choice:
    def __init__(self, job: VisionJob) -> None:
        self.job = job
        self.pending = ""  # decoded text held back: it may be the start of a stop string
        self.done = False
        self.logprobs: list = []  # TokenLogprob of tokens not yet returned in a chunk


class VisionStream:
    """Iterator of `GenerationChunk`s for one request (all its n choices, chunks carry their `index`);
    submitted on first `next()`; `close()` cancels every choice."""

    def __init__(self, engine: VisionEngine, jobs: VisionJob | list[VisionJob], stop: tuple[str, ...],
                 token_logprob: Callable | None = None) -> None:
        self._engine = engine
        self._token_logprob = token_logprob  # (token, logprob, top) -> TokenLogprob
        self.jobs = [jobs] if isinstance(jobs, VisionJob) else list(jobs)
        self.job = self.jobs[0]
        for job in self.jobs[1:]:
            job.events = self.job.events  # one queue: the stream reads the choices in the order they come
        self._choices = {job.index: _Choice(job) for job in self.jobs}
        self._stop = stop
        self._holdback = max((len(s) for s in stop), default=1) - 1
        self._submitted = False
        self._done = False

    def __iter__(self) -> "VisionStream":
        return self

    def __next__(self):
        from application.inference.ports import GenerationChunk

        if not self._submitted and not self._done:
            for job in self.jobs:
                self._engine.submit(job)
            self._submitted = True
        while True:
            if self._done or all(c.done for c in self._choices.values()):
                self._done = True
                raise StopIteration
            index, event = self.job.events.get()
            choice = self._choices[index]
            if choice.done:
                continue  # the end of a choice a stop string already ended
            if isinstance(event, StopIteration):
                choice.done = True
                if choice.pending:
                    text, choice.pending = choice.pending, ""
                    return GenerationChunk(text, 0, 0, "stop", index=index)
                continue
            if isinstance(event, BaseException):
                self.close()
                raise event
            return self._chunk(choice, index, event)

    def _chunk(self, choice: _Choice, index: int, event: VisionToken):
        finish, completion = event.finish_reason, event.generation_tokens
        choice.pending += event.text
        if event.logprob is not None and event.token is not None and self._token_logprob is not None:
            choice.logprobs.append(self._token_logprob(event.token, event.logprob, event.top))
        if self._stop:
            hits = [i for i in (choice.pending.find(s) for s in self._stop) if i >= 0]
            if hits:
                text, choice.pending = choice.pending[: min(hits)], ""
                choice.done = True
                self._engine.cancel(choice.job)
                return self._make(choice, index, text, event, "stop")
        if finish is not None:
            text, choice.pending = choice.pending, ""
            choice.done = True
            return self._make(choice, index, text, event, finish)
        cut = max(len(choice.pending) - self._holdback, 0)
        text, choice.pending = choice.pending[:cut], choice.pending[cut:]
        return self._make(choice, index, text, event, None)

    @staticmethod
    def _make(choice: _Choice, index: int, text: str, event: VisionToken, finish: str | None):
        from application.inference.ports import GenerationChunk

        logprobs = None
        if choice.job.top_logprobs is not None:
            logprobs, choice.logprobs = tuple(choice.logprobs), []
        return GenerationChunk(text, event.prompt_tokens, event.generation_tokens, finish, logprobs=logprobs,
                               index=index, cached_tokens=event.cached_tokens, held_back=len(choice.pending))

    def close(self) -> None:
        self._done = True
        if self._submitted:
            for job in self.jobs:
                self._engine.cancel(job)
            if not on_engine_thread():
                for job in self.jobs:
                    job.finished.wait(timeout=CLOSE_ACK_SECONDS)

    def __del__(self) -> None:
        try:
            self._done = True
            if self._submitted:
                for job in self.jobs:
                    self._engine.cancel(job)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
