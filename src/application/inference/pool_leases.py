"""The pool's values: its limits, what it reports per model, its bookkeeping entry, and the lease a
request holds. Split from `pool.py` (which keeps the loading and eviction logic) by size; `pool.py`
re-exports `PoolLimits`, `PooledModelInfo` and `Lease`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from application.inference.ports import LoadedModel, PromptCacheStats, Sharding
from domain.enums import EvictionPolicy, ModelType

if TYPE_CHECKING:
    from application.inference.pool import ModelPool


@dataclass(frozen=True)
class PooledModelInfo:
    """What `loaded()` reports for one model."""

    model_id: str
    model_type: ModelType
    path: str
    size_bytes: int
    loaded_at: datetime
    last_used_at: datetime
    use_count: int
    pinned: bool
    in_use: int  # active leases
    unload_pending: bool
    cache_bytes: int = 0  # the model's prompt (KV) cache, counted against the memory limit too
    cache: PromptCacheStats | None = None  # its entries and bounds too (None: the model has no prompt cache)
    sharding: Sharding | None = None  # placement over several ranks (and whether it can serve), else None


@dataclass(frozen=True)
class PoolLimits:
    max_models: int = 4
    max_memory_bytes: int = 0  # 0 = no memory limit
    policy: EvictionPolicy = EvictionPolicy.LRU
    idle_ttl_seconds: float = 900.0
    # How long an acquire waits for a busy pool (every slot leased or pinned) to free a slot.
    wait_seconds: float = 30.0


@dataclass
class _Entry:
    model_id: str
    model_type: ModelType
    path: Path
    pinned: bool
    loading: bool = True
    ready: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    model: LoadedModel | None = None
    size_bytes: int = 0
    loaded_at: datetime | None = None
    last_used_at: datetime | None = None
    last_used_mono: float = 0.0
    use_count: int = 0
    leases: int = 0
    unload_pending: bool = False


class Lease:
    """A loaded model held for one request; release it (or use `with`) when done."""

    def __init__(self, pool: "ModelPool", entry: _Entry) -> None:
        self._pool = pool
        self._entry = entry
        self._released = False
        self._lock = threading.Lock()

    @property
    def model(self) -> LoadedModel:
        assert self._entry.model is not None
        return self._entry.model

    def release(self) -> None:
        """Idempotent: a stream's close() and its finaliser may both call it."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._pool._release(self._entry)

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __del__(self) -> None:  # a forgotten lease must not pin a model forever
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

