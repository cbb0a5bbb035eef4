"""ModelPool on a fake runtime and a fake clock: limits, policies, preload and the races."""

from __future__ import annotations

import threading
import time

import pytest

from adapters.memory.repositories import FakeClock
from adapters.memory.runtime import FakeModelRuntime
from application.errors import NotFound, Unavailable
from application.inference.pool import ModelPool, PoolLimits
from domain.enums import EvictionPolicy, ModelType

TEXT = ModelType.TEXT_GEN


def make_pool(runtime=None, **limits):
    runtime = runtime or FakeModelRuntime()
    clock = FakeClock()
    limits.setdefault("wait_seconds", 0.05)
    return ModelPool(runtime, clock, PoolLimits(**limits)), runtime, clock


def use(pool, clock, model_id, times=1):
    for _ in range(times):
        clock.advance(1)
        pool.acquire(model_id, f"/models/{model_id}", TEXT).release()


def loaded_ids(pool):
    return sorted(info.model_id for info in pool.loaded())


def wait_until(predicate, timeout=10.0):
    """Poll until `predicate()` holds; bounded so a regression fails instead of hanging."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_acquire_loads_once_and_reuses():
    pool, runtime, clock = make_pool()
    use(pool, clock, "a", times=3)
    assert runtime.loads == ["a"]
    (info,) = pool.loaded()
    assert info.use_count == 3 and info.size_bytes == 1000 and info.in_use == 0
    assert info.loaded_at < info.last_used_at


def test_max_models_is_enforced_with_lru():
    pool, runtime, clock = make_pool(max_models=2, policy=EvictionPolicy.LRU)
    use(pool, clock, "a")
    use(pool, clock, "b")
    use(pool, clock, "a")  # b is now least recently used
    use(pool, clock, "c")
    assert loaded_ids(pool) == ["a", "c"]
    assert runtime.unloads == ["b"]


def test_lfu_evicts_least_often_used_even_if_recent():
    pool, runtime, clock = make_pool(max_models=2, policy=EvictionPolicy.LFU)
    use(pool, clock, "a", times=3)
    use(pool, clock, "b", times=1)  # most recent but used once
    use(pool, clock, "c")
    assert loaded_ids(pool) == ["a", "c"]
    assert runtime.unloads == ["b"]


def test_lru_would_have_chosen_differently_than_lfu():
    pool, runtime, clock = make_pool(max_models=2, policy=EvictionPolicy.LRU)
    use(pool, clock, "a", times=3)
    use(pool, clock, "b", times=1)
    use(pool, clock, "c")
    assert runtime.unloads == ["a"]


def test_ttl_sweep_unloads_idle_models_only():
    pool, runtime, clock = make_pool(policy=EvictionPolicy.TTL, idle_ttl_seconds=60)
    use(pool, clock, "a")
    clock.advance(30)
    use(pool, clock, "b")
    clock.advance(40)  # a idle 71 s, b idle 40 s
    assert pool.sweep() == ["a"]
    assert loaded_ids(pool) == ["b"]
    clock.advance(30)
    assert pool.sweep() == ["b"]
    assert pool.loaded() == [] and runtime.unloads == ["a", "b"]


def test_sweep_does_nothing_under_lru():
    pool, runtime, clock = make_pool(policy=EvictionPolicy.LRU, idle_ttl_seconds=1)
    use(pool, clock, "a")
    clock.advance(1000)
    assert pool.sweep() == []
    assert loaded_ids(pool) == ["a"]


def test_model_expiring_while_in_use_waits_for_release():
    pool, runtime, clock = make_pool(policy=EvictionPolicy.TTL, idle_ttl_seconds=60)
    lease = pool.acquire("a", "/models/a", TEXT)
    clock.advance(600)
    assert pool.sweep() == []  # in use: never unloaded under a request
    assert runtime.unloads == [] and lease.model.handle["alive"]
    lease.release()
    assert pool.sweep() == []  # the idle timer restarts at release
    clock.advance(61)
    assert pool.sweep() == ["a"]
    assert runtime.unloads == ["a"]


def test_memory_limit_uses_each_models_measured_size():
    runtime = FakeModelRuntime(sizes={"a": 600, "b": 300, "c": 500})
    pool, runtime, clock = make_pool(runtime, max_models=10, max_memory_bytes=1000)
    use(pool, clock, "a")
    use(pool, clock, "b")
    assert pool.total_bytes == 900
    use(pool, clock, "c")  # 900 + 500 > 1000: the LRU model (a) goes, 800 remain
    assert loaded_ids(pool) == ["b", "c"]
    assert pool.total_bytes == 800


def test_model_larger_than_the_memory_limit_is_refused_and_not_kept():
    runtime = FakeModelRuntime(sizes={"big": 5000})
    pool, runtime, clock = make_pool(runtime, max_memory_bytes=1000)
    with pytest.raises(Unavailable, match="needs"):
        pool.acquire("big", "/m/big", TEXT)
    assert pool.loaded() == [] and runtime.unloads == ["big"]


def test_size_hint_refuses_before_loading():
    pool, runtime, clock = make_pool(max_memory_bytes=1000)
    with pytest.raises(Unavailable):
        pool.acquire("big", "/m/big", TEXT, size_hint=4000)
    assert runtime.loads == []


def test_models_in_use_are_not_evicted_and_a_full_pool_says_so():
    pool, runtime, clock = make_pool(max_models=1)
    lease = pool.acquire("a", "/m/a", TEXT)
    with pytest.raises(Unavailable, match="in use or pinned"):
        pool.acquire("b", "/m/b", TEXT)
    assert loaded_ids(pool) == ["a"] and runtime.unloads == []
    lease.release()
    use(pool, clock, "b")
    assert loaded_ids(pool) == ["b"]


def test_waiting_acquire_proceeds_when_a_lease_is_released():
    pool, runtime, clock = make_pool(max_models=1, wait_seconds=5)
    lease = pool.acquire("a", "/m/a", TEXT)
    got = []
    worker = threading.Thread(target=lambda: got.append(pool.acquire("b", "/m/b", TEXT)))
    worker.start()
    threading.Timer(0.05, lease.release).start()
    worker.join(timeout=5)
    assert got and got[0].model.model_id == "b"
    assert runtime.unloads == ["a"]


def test_a_refused_acquire_leaves_every_model_loaded_and_tracked():
    # 'a' alone is evictable, but evicting it cannot make room while 'b' is in use: nothing
    # may be taken out of the table (and so never unloaded) by the refusal.
    runtime = FakeModelRuntime(sizes={"a": 300, "b": 600, "c": 500})
    pool, runtime, clock = make_pool(runtime, max_models=3, max_memory_bytes=1000)
    use(pool, clock, "a")
    held = pool.acquire("b", "/m/b", TEXT)
    with pytest.raises(Unavailable, match="in use or pinned"):
        pool.acquire("c", "/m/c", TEXT, size_hint=500)
    assert loaded_ids(pool) == ["a", "b"] and runtime.unloads == []
    held.release()
    pool.acquire("c", "/m/c", TEXT, size_hint=500).release()  # now 'a' and then 'b' make room
    assert loaded_ids(pool) == ["c"] and sorted(runtime.unloads) == ["a", "b"]


def test_a_release_that_frees_no_slot_does_not_end_the_wait():
    pool, runtime, clock = make_pool(max_models=1, wait_seconds=30)
    first, second = pool.acquire("a", "/m/a", TEXT), pool.acquire("a", "/m/a", TEXT)
    outcome = []

    def want_b():
        try:
            outcome.append(pool.acquire("b", "/m/b", TEXT))
        except Unavailable as exc:
            outcome.append(exc)

    worker = threading.Thread(target=want_b, daemon=True)
    worker.start()
    assert wait_until(lambda: pool.room_waits == 1)
    first.release()  # wakes the waiter, but 'a' still has a lease: it must wait again
    assert wait_until(lambda: pool.room_waits == 2 or outcome)
    assert outcome == []
    second.release()
    worker.join(timeout=10)
    assert len(outcome) == 1 and not isinstance(outcome[0], Exception)
    assert outcome[0].model.model_id == "b" and runtime.unloads == ["a"]


def test_preloaded_models_are_pinned_and_exempt_from_eviction():
    pool, runtime, clock = make_pool(max_models=2, policy=EvictionPolicy.TTL, idle_ttl_seconds=10)
    assert pool.preload([("p", "/m/p", TEXT)]) == ["p"]
    use(pool, clock, "a")
    use(pool, clock, "b")  # p is the LRU model, but pinned: a goes instead
    assert loaded_ids(pool) == ["b", "p"]
    clock.advance(1000)
    assert pool.sweep() == ["b"]
    assert [i.model_id for i in pool.loaded() if i.pinned] == ["p"]


def test_two_concurrent_loads_of_one_model_load_once():
    runtime = FakeModelRuntime()
    runtime.load_gate = threading.Event()
    pool, runtime, clock = make_pool(runtime)
    leases = []
    threads = [threading.Thread(target=lambda: leases.append(pool.acquire("a", "/m/a", TEXT))) for _ in range(2)]
    for thread in threads:
        thread.start()
    assert runtime.loading.wait(timeout=5)
    # Open the gate only once the second caller is known to wait on the first one's load.
    assert wait_until(lambda: pool.load_joins == 1)
    runtime.load_gate.set()
    for thread in threads:
        thread.join(timeout=5)
    assert runtime.loads == ["a"]
    assert len(leases) == 2 and leases[0].model is leases[1].model
    assert pool.loaded()[0].in_use == 2


def test_a_failed_load_reaches_every_waiter_and_leaves_nothing_behind():
    runtime = FakeModelRuntime()
    runtime.fail_loads = {"bad"}
    pool, runtime, clock = make_pool(runtime)
    with pytest.raises(RuntimeError):
        pool.acquire("bad", "/m/bad", TEXT)
    assert pool.loaded() == []
    runtime.fail_loads = set()
    use(pool, clock, "bad")  # a later attempt loads again
    assert runtime.loads == ["bad"]


def test_unload_now_or_after_the_last_request():
    pool, runtime, clock = make_pool()
    use(pool, clock, "a")
    assert pool.unload("a") is True
    assert runtime.unloads == ["a"] and pool.loaded() == []
    lease = pool.acquire("b", "/m/b", TEXT)
    assert pool.unload("b") is False  # deferred: a request is running
    assert runtime.unloads == ["a"]
    assert pool.loaded()[0].unload_pending
    lease.release()
    assert runtime.unloads == ["a", "b"] and pool.loaded() == []
    with pytest.raises(NotFound):
        pool.unload("nope")


def test_release_is_idempotent():
    pool, runtime, clock = make_pool()
    lease = pool.acquire("a", "/m/a", TEXT)
    lease.release()
    lease.release()
    assert pool.loaded()[0].in_use == 0


def test_shutdown_unloads_everything():
    pool, runtime, clock = make_pool()
    use(pool, clock, "a")
    use(pool, clock, "b")
    pool.shutdown()
    assert sorted(runtime.unloads) == ["a", "b"] and pool.loaded() == []
