"""The model pool: which models are loaded, and the limits that decide what gets unloaded.

Limits are enforced, not just stored (peers store `max_models` and the eviction policy and
then ignore them):

- `max_models`: loading one more model first unloads an idle one, chosen by the policy.
- `max_memory_bytes`: each model's *own* measured size (the runtime reports the bytes of its
  weight arrays), never process-wide memory.
- policy: LRU (least recently used), LFU (least often used, ties by recency) or TTL (idle
  models are unloaded by `sweep()` after `idle_ttl_seconds`; under capacity pressure TTL
  falls back to LRU).
- pinned models (preloaded `auto_start` profiles) are never evicted.

Concurrency: one lock guards the bookkeeping; loading runs outside it with a per-model
"loading" slot, so two concurrent requests for one model load it once. A model handed out
by `acquire()` is leased (reference counted) and is never unloaded under a request: an
expiry or an explicit unload that happens during use takes effect when the last lease ends.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterable

from application.errors import NotFound, Unavailable
from application.ports import Clock
from application.inference.ports import ModelRuntime, PromptCacheStats
from application.inference.pool_leases import Lease, PooledModelInfo, PoolLimits, _Entry
from domain.enums import EvictionPolicy, ModelType


class ModelPool:
    """Loads models through the `ModelRuntime` port and keeps the configured limits."""

    def __init__(self, runtime: ModelRuntime, clock: Clock, limits: PoolLimits | None = None) -> None:
        self._runtime = runtime
        self._clock = clock
        self.limits = limits or PoolLimits()
        self._entries: dict[str, _Entry] = {}
        self._cond = threading.Condition()
        # Observability (and what race tests wait on): callers that joined another caller's
        # load of the same model, and waits for a busy pool to free a slot.
        self.load_joins = 0
        self.room_waits = 0
        self.caches_freed = 0  # times memory pressure was relieved by dropping prompt caches
        self.evictions = 0  # models unloaded to make room, or by the idle TTL (read by /metrics)

    # ------------------------------------------------------------------ queries

    def loaded(self) -> list[PooledModelInfo]:
        """Loaded models (not those still loading), most recently used first."""
        with self._cond:
            stats = {e.model_id: self._cache_stats(e) for e in self._entries.values() if not e.loading}
            infos = [
                PooledModelInfo(
                    model_id=e.model_id,
                    model_type=e.model_type,
                    path=str(e.path),
                    size_bytes=e.size_bytes,
                    loaded_at=e.loaded_at,  # type: ignore[arg-type]
                    last_used_at=e.last_used_at,  # type: ignore[arg-type]
                    use_count=e.use_count,
                    pinned=e.pinned,
                    in_use=e.leases,
                    unload_pending=e.unload_pending,
                    # One reading: the bytes shown are the stats' (the same number `cache_bytes` counts).
                    cache_bytes=stats[e.model_id].bytes if stats[e.model_id] is not None else self._cache_bytes(e),
                    cache=stats[e.model_id],
                    sharding=e.model.sharding if e.model is not None else None,
                )
                for e in self._entries.values()
                if not e.loading
            ]
        return sorted(infos, key=lambda i: i.last_used_at, reverse=True)

    def is_loaded(self, model_id: str) -> bool:
        with self._cond:
            entry = self._entries.get(model_id)
            return entry is not None and not entry.loading

    @property
    def total_bytes(self) -> int:
        """Weights plus prompt caches of the loaded models."""
        with self._cond:
            return sum(self._bytes(e) for e in self._entries.values() if not e.loading)

    # A runtime without a prompt cache has no `cache_bytes` / `free_cache`: it counts as 0.
    def _cache_bytes(self, entry: _Entry) -> int:
        reader = getattr(self._runtime, "cache_bytes", None)
        if reader is None or entry.model is None or entry.loading:
            return 0
        return int(reader(entry.model) or 0)

    def _cache_stats(self, entry: _Entry) -> PromptCacheStats | None:
        reader = getattr(self._runtime, "cache_stats", None)
        if reader is None or entry.model is None or entry.loading:
            return None
        return reader(entry.model)

    def _bytes(self, entry: _Entry) -> int:
        return entry.size_bytes + self._cache_bytes(entry)

    def _free_caches(self) -> int:
        """Drop every loaded model's prompt cache (memory pressure: caches go before any model does)."""
        free = getattr(self._runtime, "free_cache", None)
        if free is None:
            return 0
        freed = 0
        for entry in self._entries.values():
            if entry.model is not None and not entry.loading:
                freed += int(free(entry.model) or 0)
        self.caches_freed += 1 if freed else 0
        return freed

    # ------------------------------------------------------------------ acquire / release

    def acquire(
        self,
        model_id: str,
        path: Path | str,
        model_type: ModelType,
        *,
        pin: bool = False,
        size_hint: int | None = None,
        keep: bool = False,
    ) -> Lease:
        """Lease `model_id`, loading it first if needed (once, however many callers race).

        `keep` (an explicit load): cancel an unload that waits for running requests; the user's last
        request wins. A plain request does not, or a busy model would never go.
        """
        while True:
            with self._cond:
                entry = self._entries.get(model_id)
                if entry is not None and keep:
                    entry.unload_pending = False
                if entry is not None and not entry.loading:
                    entry.leases += 1
                    entry.use_count += 1
                    entry.pinned = entry.pinned or pin
                    self._touch(entry)
                    return Lease(self, entry)
                if entry is None:
                    victims = self._make_room(extra_models=1, extra_bytes=size_hint or 0, exclude=model_id)
                    if victims is None:  # another caller started loading it while we waited
                        continue
                    entry = _Entry(model_id=model_id, model_type=ModelType(model_type), path=Path(path), pinned=pin)
                    self._entries[model_id] = entry
                    loader = True
                else:
                    loader = False
                    self.load_joins += 1
            if loader:
                self._unload_all(victims)
                return self._load(entry)
            # Someone else is loading this model: wait for their result instead of loading twice.
            entry.ready.wait()
            if entry.error is not None:
                raise entry.error

    def _load(self, entry: _Entry) -> Lease:
        try:
            model = self._runtime.load(entry.model_id, entry.path, entry.model_type)
        except BaseException as exc:
            with self._cond:
                self._entries.pop(entry.model_id, None)
                entry.error = exc
                entry.ready.set()
                self._cond.notify_all()
            raise
        with self._cond:
            entry.model = model
            entry.size_bytes = int(model.size_bytes)
            entry.loading = False
            entry.loaded_at = self._clock.now()
            entry.leases = 1
            entry.use_count = 1
            self._touch(entry)
            # The measured size may exceed the pre-load estimate: make room again, now exactly.
            try:
                victims = self._make_room(extra_models=0, extra_bytes=0, exclude=entry.model_id, wait=False)
            except Unavailable as exc:
                self._entries.pop(entry.model_id, None)
                entry.error = exc
                entry.ready.set()
                self._cond.notify_all()
                failed = exc
            else:
                failed = None
                entry.ready.set()
                self._cond.notify_all()
        if failed is not None:
            self._runtime.unload(model)
            raise failed
        self._unload_all(victims)
        return Lease(self, entry)

    def _release(self, entry: _Entry) -> None:
        unload = False
        with self._cond:
            entry.leases -= 1
            self._touch(entry)
            if entry.leases == 0 and entry.unload_pending and self._entries.get(entry.model_id) is entry:
                del self._entries[entry.model_id]
                unload = True
            self._cond.notify_all()
        if unload:
            self._unload_all([entry])

    def _touch(self, entry: _Entry) -> None:
        entry.last_used_at = self._clock.now()
        entry.last_used_mono = self._clock.monotonic()

    # ------------------------------------------------------------------ limits

    def _over_limits(self, extra_models: int, extra_bytes: int, without: list[_Entry] = ()) -> bool:
        """Would the table, minus `without`, plus the extras, break a limit?"""
        kept = [e for e in self._entries.values() if not any(e is w for w in without)]
        if len(kept) + extra_models > self.limits.max_models:
            return True
        if self.limits.max_memory_bytes:
            used = sum(self._bytes(e) for e in kept if not e.loading) + extra_bytes
            return used > self.limits.max_memory_bytes
        return False

    def _evictable(self, exclude: str) -> list[_Entry]:
        return [
            e
            for e in self._entries.values()
            if e.model_id != exclude and not e.loading and not e.pinned and e.leases == 0
        ]

    def _victim(self, candidates: list[_Entry]) -> _Entry:
        if self.limits.policy is EvictionPolicy.LFU:
            return min(candidates, key=lambda e: (e.use_count, e.last_used_mono))
        # LRU, and TTL under capacity pressure: the least recently used idle model goes.
        return min(candidates, key=lambda e: e.last_used_mono)

    def _plan_victims(self, extra_models: int, extra_bytes: int, exclude: str) -> list[_Entry] | None:
        """The idle models whose unloading makes the extras fit, in policy order; None if none suffice."""
        limit = self.limits.max_memory_bytes
        if limit and sum(self._bytes(e) for e in self._entries.values() if not e.loading) + extra_bytes > limit:
            self._free_caches()
        candidates = self._evictable(exclude)
        chosen: list[_Entry] = []
        while self._over_limits(extra_models, extra_bytes, chosen):
            if not candidates:
                return None
            victim = self._victim(candidates)
            candidates.remove(victim)
            chosen.append(victim)
        return chosen

    def _make_room(
        self, extra_models: int, extra_bytes: int, exclude: str, wait: bool = True
    ) -> list[_Entry] | None:
        """Remove victims from the table (caller holds the lock); the caller unloads them after.

        Victims are taken out only once the extras are sure to fit, so a refusal leaves every
        model loaded and tracked. Waits up to `wait_seconds` in all (however many unrelated
        releases wake it) for leased models to become idle. Returns None when, while waiting,
        another caller had begun loading `exclude`.
        """
        self._check_fits_alone(extra_bytes, exclude)
        deadline: float | None = None
        while True:
            victims = self._plan_victims(extra_models, extra_bytes, exclude)
            if victims is not None:
                for victim in victims:
                    del self._entries[victim.model_id]
                self.evictions += len(victims)
                return victims
            if deadline is None:
                # Real time, not the injected clock: this bounds how long a request blocks.
                deadline = time.monotonic() + self.limits.wait_seconds
            remaining = deadline - time.monotonic()
            if not wait or remaining <= 0:
                raise Unavailable(self._busy_message(extra_bytes, exclude))
            # Every slot is leased or pinned: wait for a release, then look again.
            self.room_waits += 1
            self._cond.wait(timeout=remaining)
            if extra_models and exclude in self._entries:
                return None
            self._check_fits_alone(extra_bytes, exclude)

    def _check_fits_alone(self, extra_bytes: int, exclude: str) -> None:
        limit = self.limits.max_memory_bytes
        if not limit:
            return
        own = extra_bytes
        entry = self._entries.get(exclude)
        if entry is not None and not entry.loading:
            own = entry.size_bytes
        pinned = sum(e.size_bytes for e in self._entries.values() if e.pinned and e.model_id != exclude)
        if own + pinned > limit:
            raise Unavailable(
                f"model {exclude!r} needs {own / 2**20:.1f} MiB but the pool limit is "
                f"{limit / 2**20:.1f} MiB ({pinned / 2**20:.1f} MiB pinned); raise MLX_SERVER_MAX_MEMORY_GB"
            )

    def _busy_message(self, extra_bytes: int, exclude: str) -> str:
        busy = ", ".join(sorted(e.model_id for e in self._entries.values() if e.model_id != exclude))
        return (
            f"cannot load {exclude!r}: the pool is full (max_models={self.limits.max_models}, "
            f"max_memory_bytes={self.limits.max_memory_bytes or 'unlimited'}) and every loaded model "
            f"is in use or pinned: {busy}"
        )

    # ------------------------------------------------------------------ unload / sweep / preload

    def unload(self, model_id: str) -> bool:
        """Unload now (True), or as soon as its active requests finish (False). NotFound if not loaded."""
        with self._cond:
            entry = self._entries.get(model_id)
            if entry is None:
                raise NotFound(f"model {model_id!r} is not loaded")
            if entry.loading or entry.leases > 0:
                # Never under a running request: the last lease's release unloads it.
                entry.unload_pending = True
                return False
            del self._entries[model_id]
        self._unload_all([entry])
        return True

    def sweep(self) -> list[str]:
        """Unload models idle longer than the TTL (policy TTL only). The server calls this periodically."""
        if self.limits.policy is not EvictionPolicy.TTL:
            return []
        now = self._clock.monotonic()
        with self._cond:
            expired = [
                e
                for e in self._entries.values()
                if not e.loading
                and not e.pinned
                and e.leases == 0
                and now - e.last_used_mono >= self.limits.idle_ttl_seconds
            ]
            for entry in expired:
                del self._entries[entry.model_id]
            self.evictions += len(expired)
        self._unload_all(expired)
        return [e.model_id for e in expired]

    def preload(self, models: Iterable[tuple[str, Path | str, ModelType]]) -> list[str]:
        """Load and pin models (the `auto_start` profiles' models): exempt from eviction."""
        loaded = []
        for model_id, path, model_type in models:
            self.acquire(model_id, path, model_type, pin=True).release()
            loaded.append(model_id)
        return loaded

    def unpin(self, model_id: str) -> None:
        with self._cond:
            entry = self._entries.get(model_id)
            if entry is not None:
                entry.pinned = False

    def shutdown(self) -> None:
        """Unload everything (server stop)."""
        with self._cond:
            entries = [e for e in self._entries.values() if not e.loading]
            for entry in entries:
                del self._entries[entry.model_id]
        self._unload_all(entries)

    def _unload_all(self, entries: Iterable[_Entry]) -> None:
        for entry in entries:
            if entry.model is not None:
                self._runtime.unload(entry.model)
                entry.model = None
