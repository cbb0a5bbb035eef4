"""Per-model prompt (KV) cache for vision models: mlx-vlm's own automatic prefix cache (APC).

mlx-vlm's `BatchGenerator(apc_manager=...)` looks each row up before its prefill (the longest cached
prefix whose suffix is text only), prefills only the rest, and stores the row's prompt KV after its
prefill; `PromptProgress.cached_tokens` says how many tokens it reused. This module only builds and
bounds the `APCManager` and computes the request's key; how it is set up, and why (mlx-vlm 0.7.10):

- Dense-KV models (Qwen2-VL...) run APC's "block" mode, whose block lookup drops any prefix that
  holds image tokens (`apc_lookup_plan`: `prefix_has_media` -> released), so image prompts never
  hit. Its snapshot entries (`lookup_exact_cache`) do reuse image prefixes, as long as the prefix
  covers every image token. So every prompt is kept as one snapshot (`APC_LAYER_MAJOR_MEMORY_MIN_TOKENS`
  = 1, set on the manager, not in the process environment) and the block pool is empty. Models APC
  runs in "checkpoint" mode (sliding-window or recurrent layers) keep APC's own checkpoints; a cache
  layout APC cannot restore turns it off for that model (no reuse, answers unchanged).
- block_size 1: a snapshot covers the prompt up to its last token and a later prompt reuses
  everything up to where it differs (APC rounds both down to whole blocks: with its default 16, an
  image ending in the prompt's last partial block was never reused).
- Bounds: `checkpoint_entries` snapshots (LRU) and `memory_max_gb` bytes, from the same settings as
  the text models' cache; no disk tier (APC's default from its environment writes under ~/.cache).
- Key: APC salts its hashes with one number per request. The server's `semantic_extra_hash` over the
  pixels misses inputs that change the KV without changing pixels or token ids (a grid of the same
  patches), so every processor tensor besides the token ids goes into it (`key`).
"""

from __future__ import annotations

from typing import Any


class VisionPromptCache:
    def __init__(self, max_entries: int = 10, max_bytes: int = 2 << 30) -> None:
        from mlx_vlm.apc import APCManager

        self.max_entries = max(0, int(max_entries))
        self.max_bytes = max(0, int(max_bytes))
        self.manager = APCManager(num_blocks=0, block_size=1, overrides={
            "checkpoint_entries": self.max_entries, "memory_max_gb": self.max_bytes / 2**30,
            "memory_reserve_gb": 0,  # the model pool watches memory (MLX_SERVER_MAX_MEMORY_GB)
        })
        self.manager._layer_major_memory_min_tokens = 1  # what APC_LAYER_MAJOR_MEMORY_MIN_TOKENS sets

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_bytes > 0

    @property
    def nbytes(self) -> int:
        return int(self.manager.resident_bytes())

    def __len__(self) -> int:
        with self.manager.lock:
            return len(self.manager._exact_cache)

    def stats(self) -> tuple[int, int]:
        """(bytes, entries), read together (the manager's lock is reentrant)."""
        with self.manager.lock:
            return self.nbytes, len(self.manager._exact_cache)

    def key(self, model: Any, processor: Any, inputs: dict) -> int:
        """APC's salt for this request: the images' pixels and every other non-token input."""
        import mlx.core as mx
        from mlx_vlm.apc import hash_image_payload, semantic_extra_hash

        pixels = inputs.get("pixel_values")
        media = {k: v for k, v in inputs.items()
                 if k not in ("input_ids", "attention_mask", "pixel_values") and isinstance(v, mx.array)}
        return semantic_extra_hash(image_hash=hash_image_payload(pixel_values=pixels) if pixels is not None else 0,
                                   media=media, model=getattr(model, "language_model", model), processor=processor)

    def clear(self) -> int:
        """Drop every entry (unload, memory pressure); the bytes it held."""
        freed = self.nbytes
        self.manager.clear()
        return freed
