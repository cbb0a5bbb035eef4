"""The prompt-cache methods of a runtime whose loaded model's handle carries a `prompt_cache`.

Text (mlx-lm's trie, `PromptCacheStore`) and vision (mlx-vlm's APC, `VisionPromptCache`) expose the same
surface (`nbytes`, `stats()`, `clear()`, `max_entries`, `max_bytes`), so both runtimes share these methods.
"""

from __future__ import annotations

from adapters.mlx.common import free_buffer_cache
from application.inference.ports import LoadedModel, PromptCacheStats


class HandlePromptCache:
    def cache_bytes(self, model: LoadedModel) -> int:
        """Bytes held by the model's prompt cache (the pool counts them with the weights)."""
        cache = getattr(model.handle, "prompt_cache", None)
        return cache.nbytes if cache is not None else 0

    def cache_stats(self, model: LoadedModel) -> PromptCacheStats | None:
        """The prompt cache's bytes and entries now, and its bounds; None when it is off (or unloaded)."""
        cache = getattr(model.handle, "prompt_cache", None)
        if cache is None:
            return None
        size, entries = cache.stats()
        return PromptCacheStats(size, entries, cache.max_entries, cache.max_bytes)

    def free_cache(self, model: LoadedModel) -> int:
        """Drop the model's prompt cache (memory pressure); the bytes it held."""
        cache = getattr(model.handle, "prompt_cache", None)
        if cache is None:
            return 0
        freed = cache.clear()
        free_buffer_cache()
        return freed
