"""One sequence decoded with a plain KV cache, pipelined like mlx-lm's `generate_step`.

The engine runs a request "solo" when it is alone: no batch bookkeeping, the same work as
`stream_generate`. Prefill runs one chunk (`prefill_step_size` tokens) per engine iteration, so
the engine checks for cancellations and new arrivals between chunks: a disconnect stops a long
prefill within one chunk, and a request that arrives meanwhile moves both into the batch, where
mlx-lm's `BatchGenerator` interleaves prefill chunks with decode steps.

Invariant between steps: `cache` holds exactly the tokens in `fed`; while prefilling, `rest`
is the part of the prompt not yet in the cache; once decoding, `pending` is the next token,
sampled (lazily) but not yet fed to the model.
"""

from __future__ import annotations

from typing import Any


class Solo:
    def __init__(self, model: Any, request: Any, stop_token_ids: list[int], prefill_step_size: int,
                 cache: list | None, rest: list[int]):
        import mlx.core as mx
        from mlx_lm.models.cache import make_prompt_cache

        self.request = request
        self._model = model
        self._stop = set(stop_token_ids)
        self._sampler = request.sampler
        self._processors = list(request.logits_processors)
        self._step_size = max(1, int(prefill_step_size))
        self.cache = cache if cache is not None else make_prompt_cache(model)
        self.fed: list[int] = list(request.prompt[: len(request.prompt) - len(rest)])
        self.rest: list[int] = list(rest)  # prompt tokens still to prefill (the last one starts decoding)
        self.emitted = 0
        self.pending = None
        self.pending_logprobs = None
        # Penalties look at the whole prompt, as in the batch (mlx-lm's TokenBuffer of all tokens).
        self._context = mx.array(request.prompt) if self._processors else None

    @property
    def prefilling(self) -> bool:
        return self.pending is None

    def prefill_step(self) -> None:
        """Feed the next chunk of the prompt; the last token starts decoding (samples the first token)."""
        import mlx.core as mx

        if len(self.rest) > 1:
            count = min(self._step_size, len(self.rest) - 1)
            chunk, self.rest = self.rest[:count], self.rest[count:]
            self._model(mx.array(chunk)[None], cache=self.cache)
            mx.eval([c.state for c in self.cache])
            self.fed.extend(chunk)
            self.request.prefilled += count
            return
        last = self.rest
        self.rest = []
        self.pending, self.pending_logprobs = self._forward(mx.array(last), first=True)
        self.fed.extend(last)
        self.request.prefilled += len(last)
        mx.async_eval(self.pending, self.pending_logprobs)

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
        return sampled.reshape(1), logprobs[0]  # the next input, shape (1,); its distribution

    def step(self) -> tuple[int, str | None, Any]:
        """Emit the pending token; first start computing the one after it (unless it is the last)."""
        import mlx.core as mx

        current, logprobs = self.pending, self.pending_logprobs
        last = self.emitted + 1 >= self.request.max_tokens
        if not last:
            self.pending, self.pending_logprobs = self._forward(current)
            mx.async_eval(self.pending, self.pending_logprobs)
        token = int(current.item())
        if not last:
            self.fed.append(token)
        return (*self._finish(token, last), logprobs)

    def take_pending(self) -> tuple[int, str | None, Any]:
        """Evaluate the pending token without computing further (the batch takes over from here)."""
        token = int(self.pending.item())
        return (*self._finish(token, self.emitted + 1 >= self.request.max_tokens), self.pending_logprobs)

    def _finish(self, token: int, last: bool) -> tuple[int, str | None]:
        self.emitted += 1
        if token in self._stop:
            return token, "stop"
        return token, "length" if last else None
