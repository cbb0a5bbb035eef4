"""Per-request samplers and logits processors, built from the resolved `InferenceParams`.

Everything here is per request, so requests in one batch keep independent settings:
- `KeyedSampler`: top_p / min_p / top_k, then a draw from the request's own random key (a seed
  makes it reproducible while other requests share the batch; no global RNG is touched);
- mlx-lm's repetition / presence / frequency penalty processors (`make_logits_processors`);
- `ConstraintProcessor`: masks every token a compiled output constraint does not allow.
"""

from __future__ import annotations

import secrets
from typing import Any

from application.inference.ports import TokenConstraint
from domain.profiles.params import InferenceParams


class KeyedSampler:
    """top_p / min_p / top_k then a categorical draw from this request's own random key."""

    def __init__(self, temperature: float, top_p: float | None, min_p: float | None, top_k: int | None, seed: int | None):
        import mlx.core as mx

        self._temperature = float(temperature)
        self._top_p = top_p
        self._min_p = min_p
        self._top_k = top_k
        self._key = mx.random.key(seed if seed is not None else secrets.randbits(63))

    def __call__(self, logprobs):
        import mlx.core as mx
        from mlx_lm.sample_utils import apply_min_p, apply_top_k, apply_top_p

        if self._top_p is not None and 0 < self._top_p < 1.0:
            logprobs = apply_top_p(logprobs, self._top_p)
        if self._min_p:
            logprobs = apply_min_p(logprobs, self._min_p)
        if self._top_k and 0 < self._top_k < logprobs.shape[-1]:
            logprobs = apply_top_k(logprobs, self._top_k)
        self._key, draw = mx.random.split(self._key)
        return mx.random.categorical(logprobs * (1.0 / self._temperature), key=draw)


def build_sampler(params: InferenceParams, choice: int = 0) -> KeyedSampler | None:
    """None means greedy: the engine's shared argmax sampler, batched across requests.

    Choice `i` of a seeded n > 1 request draws from seed + i, so the choices differ but are reproducible.
    """
    if not params.temperature:  # None or 0: greedy
        return None
    seed = params.seed + choice if params.seed is not None else None
    return KeyedSampler(params.temperature, params.top_p, params.min_p, params.top_k, seed)


def build_logits_processors(params: InferenceParams) -> list:
    repetition = params.repetition_penalty if params.repetition_penalty not in (None, 1.0) else None
    if repetition is None and not params.presence_penalty and not params.frequency_penalty:
        return []
    from mlx_lm.sample_utils import make_logits_processors

    return make_logits_processors(
        repetition_penalty=repetition,
        presence_penalty=params.presence_penalty or None,
        frequency_penalty=params.frequency_penalty or None,
    )


class ConstraintProcessor:
    """A logits processor that lets through only the tokens a `TokenConstraint` allows.

    The engine calls it once per step with the tokens so far (prompt included); from the second
    call on, the last of them is the token sampled at the previous step, which the constraint
    consumes before computing the next mask.
    """

    def __init__(self, constraint: TokenConstraint) -> None:
        self._constraint = constraint
        self._started = False
        self._mask_cache: dict[bytes, Any] = {}

    def __call__(self, tokens, logits):
        import mlx.core as mx
        import numpy as np

        if self._started:
            self._constraint.consume(int(tokens[-1].item()))
        self._started = True
        bits = self._constraint.allowed()
        mask = self._mask_cache.get(bits)
        if mask is None:
            vocab = logits.shape[-1]
            unpacked = np.unpackbits(np.frombuffer(bits, dtype=np.uint8), bitorder="little")[:vocab]
            if unpacked.size < vocab:
                unpacked = np.concatenate([unpacked, np.zeros(vocab - unpacked.size, dtype=np.uint8)])
            mask = mx.array(unpacked.astype(bool))
            if len(self._mask_cache) < 64:  # masks repeat (inside a string, between values)
                self._mask_cache[bits] = mask
        return mx.where(mask, logits, mx.array(-float("inf"), dtype=logits.dtype))
