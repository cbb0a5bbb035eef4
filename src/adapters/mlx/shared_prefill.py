"""One prefill for several requests with the same prompt: the n choices of one request.

Without it, each choice enters mlx-lm's `BatchGenerator` as its own row and prefills the whole
prompt again (n times the prompt's compute and KV memory during the prefill). Here the prompt, all
but its last token, is fed once into one KV cache; each choice then joins the batch with its own
copy of that cache (`copy.deepcopy`, as mlx-lm's `LRUPromptCache` hands out its entries) and only
the last token left to feed, which gives each row its first logits, sampled with its own sampler.

The prefill runs one chunk (`prefill_step_size` tokens) per engine iteration, like a solo prefill,
so requests already decoding keep getting tokens between chunks and a cancel stops it within one.

Invariant: `cache` holds exactly the tokens in `fed`; `rest` is what is left to feed before the
last token.
"""

from __future__ import annotations

import copy
from typing import Any


class SharedPrefill:
    def __init__(self, model: Any, requests: list, prefill_step_size: int, cache: list | None, rest: list[int]):
        from mlx_lm.models.cache import make_prompt_cache

        prompt = list(requests[0].prompt)
        self.requests = list(requests)
        self._model = model
        self._step_size = max(1, int(prefill_step_size))
        self.cache = cache if cache is not None else make_prompt_cache(model)
        self.fed: list[int] = prompt[: len(prompt) - len(rest)]
        self.rest: list[int] = list(rest[:-1])
        self.last: list[int] = list(rest[-1:])

    @property
    def done(self) -> bool:
        return not self.rest

    def step(self) -> None:
        """Feed the next chunk; its compute is counted once, on the first choice still waiting."""
        import mlx.core as mx

        chunk, self.rest = self.rest[: self._step_size], self.rest[self._step_size:]
        self._model(mx.array(chunk)[None], cache=self.cache)
        mx.eval([c.state for c in self.cache])
        self.fed.extend(chunk)
        self.requests[0].prefilled += len(chunk)

    def caches(self) -> list[list]:
        """One cache per request: the first gets this one, the others a copy each."""
        return [self.cache] + [copy.deepcopy(self.cache) for _ in self.requests[1:]]


def same_prompt_groups(requests: list) -> list[list]:
    """The requests grouped by prompt (and prompt-cache use), in arrival order."""
    groups: dict[tuple, list] = {}
    for request in requests:
        groups.setdefault((tuple(request.prompt), request.use_cache), []).append(request)
    return list(groups.values())
