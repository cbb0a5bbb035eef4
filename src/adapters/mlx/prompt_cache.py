"""Per-model prompt (KV) cache: mlx-lm's `LRUPromptCache` (a token trie + LRU), bounded and thread-safe.

A request starts from the longest cached prefix of its tokens: an exact entry, a shorter prefix,
or a longer entry trimmed back to the common prefix (when every cache layer can trim; a
rotating or recurrent layer cannot, so such models reuse only exact/shorter entries). This is
`LRUPromptCache.fetch_nearest_cache`; what this wrapper adds:
- a lock: the engine thread fetches and inserts, the pool reads the byte count and frees the
  cache under memory pressure from its own thread;
- at least one token is always left to feed (the model needs an input to produce logits), so an
  exact hit is trimmed back by one token, or discarded when the layers cannot trim;
- counters (hits, cached tokens) that tests and `/api/pool` read.
"""

from __future__ import annotations

import threading
from typing import Any

# Used as the trie's "model" key: one store belongs to one loaded model.
_KEY = "model"


class PromptCacheStore:
    def __init__(self, max_entries: int = 10, max_bytes: int = 2 << 30) -> None:
        from mlx_lm.models.cache import LRUPromptCache

        self.max_entries = max(0, int(max_entries))
        self.max_bytes = max(0, int(max_bytes))
        self._lru = LRUPromptCache(max_size=max(1, self.max_entries), max_bytes=self.max_bytes)
        self._lock = threading.Lock()
        self.hits = 0
        self.lookups = 0
        self.reused_tokens = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_bytes > 0

    @property
    def nbytes(self) -> int:
        with self._lock:
            return int(self._lru.nbytes)

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru)

    def stats(self) -> tuple[int, int]:
        """(bytes, entries), read together."""
        with self._lock:
            return int(self._lru.nbytes), len(self._lru)

    def fetch(self, tokens: list[int]) -> tuple[list[Any] | None, list[int]]:
        """(a private copy of the nearest cache, or None; the tokens still to prefill, never empty)."""
        if not self.enabled or not tokens:
            return None, list(tokens)
        from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache

        with self._lock:
            self.lookups += 1
            cache, rest = self._lru.fetch_nearest_cache(_KEY, list(tokens))
        if cache is not None and not rest:
            # An exact hit: the model still needs the last token as input to give the first logits.
            if can_trim_prompt_cache(cache):
                trim_prompt_cache(cache, 1)
                rest = list(tokens[-1:])
            else:
                cache, rest = None, list(tokens)
        if cache is None:
            return None, list(tokens)
        with self._lock:
            self.hits += 1
            self.reused_tokens += len(tokens) - len(rest)
        return cache, list(rest)

    def insert(self, tokens: list[int], cache: list[Any], kind: str = "assistant") -> None:
        """Keep `cache` (it must hold exactly `tokens`) for later requests; evicts to stay in bounds."""
        if not self.enabled or not tokens or cache is None:
            return
        with self._lock:
            self._lru.insert_cache(_KEY, list(tokens), cache, cache_type=kind)
            if len(self._lru) > self.max_entries:
                self._lru.trim_to(n_sequences=self.max_entries)

    def clear(self) -> int:
        """Drop every entry (unload, memory pressure); the bytes it held."""
        with self._lock:
            freed = int(self._lru.nbytes)
            self._lru.trim_to(n_sequences=0)
            return freed
