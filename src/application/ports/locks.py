"""A lock shared by every process that uses the same database (several hosts on one PostgreSQL)."""

from __future__ import annotations

from typing import Callable, ContextManager, Protocol


class SharedLock(Protocol):
    def hold(self, key: str, *, wait: bool = True, poll_seconds: float = 0.1,
             should_stop: Callable[[], bool] = lambda: False) -> ContextManager[bool]:
        """Hold the lock named `key` for the `with` block; yields False when not acquired
        (`wait=False` and taken, or `should_stop()` turned true while waiting). Released when the
        block ends and, should the holder die, by the database itself."""
        ...
