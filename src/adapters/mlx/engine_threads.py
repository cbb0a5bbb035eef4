"""The engine threads: parked daemon threads that run each model's engine loop, and the exit hook
that closes live engines before the interpreter finalises. Split from `engine.py` (the batching
engine) by job; `engine.py` re-exports `on_engine_thread` and `run_on_engine_thread`.
"""

from __future__ import annotations

import atexit
import itertools
import queue
import threading
import weakref
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from adapters.mlx.engine import BatchEngine

# Engine threads are parked and reused, never ended: a thread that used MLX's thread-local
# generation stream and then exits can abort the process at interpreter exit ("terminate called
# without an active exception", seen here with mlx 0.32). Parked daemon threads avoid that.
_jobs: "queue.SimpleQueue[Callable[[], None]]" = queue.SimpleQueue()
_idle_workers = 0
_workers_lock = threading.Lock()
_worker_ids = itertools.count()
_on_engine_thread = threading.local()
# Engines whose loop is running; closed at interpreter exit (see `_close_live_engines`).
_live_engines: "weakref.WeakSet[BatchEngine]" = weakref.WeakSet()
_exit_hook_registered = False


def _worker() -> None:
    global _idle_workers
    _on_engine_thread.active = True
    while True:
        job = _jobs.get()
        try:
            job()
        except BaseException:  # noqa: BLE001 - a job reports its own errors; the thread lives on
            pass
        # A parked thread must not keep the finished job (a bound `BatchEngine._run`, hence the
        # engine and its model's weights) alive: unload has to free them.
        job = None
        with _workers_lock:
            _idle_workers += 1


def on_engine_thread() -> bool:
    """True on an engine thread (where waiting for an engine would wait for oneself)."""
    return getattr(_on_engine_thread, "active", False)


def _close_live_engines() -> None:
    """At interpreter exit, stop every engine loop between steps.

    An engine thread still inside an MLX call (or inside its generation-stream context) while
    the interpreter finalises aborts the process (SIGABRT, "terminate called without an active
    exception"); closed engines park their threads outside MLX.
    """
    for engine in list(_live_engines):
        engine.close(timeout=10.0)


def _register_exit_hook() -> None:
    global _exit_hook_registered
    with _workers_lock:
        if _exit_hook_registered:
            return
        _exit_hook_registered = True
    atexit.register(_close_live_engines)


def run_on_engine_thread(job: Callable[[], None]) -> None:
    """Run `job` on a parked engine thread, starting a new one only when none is idle."""
    global _idle_workers
    with _workers_lock:
        if _idle_workers > 0:
            _idle_workers -= 1
        else:
            threading.Thread(target=_worker, name=f"mlxm-engine-{next(_worker_ids)}", daemon=True).start()
    _jobs.put(job)
