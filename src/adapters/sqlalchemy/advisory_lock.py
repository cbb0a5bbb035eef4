"""PostgreSQL session advisory locks: one writer per model across every host on the database.

`flock` serialises pulls on one machine; hosts that share a library over a network filesystem
cannot rely on it, but they do share the database. The lock lives on a dedicated connection in
autocommit mode (no transaction stays open during a long pull); if the process dies, PostgreSQL
ends its session and releases the lock, as the kernel does for a flock.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import Callable, Iterator

from sqlalchemy import Engine, text

_NAMESPACE = b"mlxm:model-lock:"


def lock_id(key: str) -> int:
    """A stable signed 64-bit id for `key` (advisory locks are keyed by bigint)."""
    return int.from_bytes(hashlib.sha256(_NAMESPACE + key.encode("utf-8")).digest()[:8], "big", signed=True)


class PostgresAdvisoryLock:
    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine  # resolved on first use: building the layout must not open the database

    @contextlib.contextmanager
    def hold(self, key: str, *, wait: bool = True, poll_seconds: float = 0.1,
             should_stop: Callable[[], bool] = lambda: False) -> Iterator[bool]:
        ident = lock_id(key)
        connection = self._engine().connect().execution_options(isolation_level="AUTOCOMMIT")
        acquired = False
        try:
            # Polled rather than pg_advisory_lock(): a waiting pull must still notice pause/cancel.
            while True:
                acquired = bool(connection.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": ident}).scalar())
                if acquired or not wait or should_stop():
                    break
                time.sleep(poll_seconds)
            yield acquired
        finally:
            try:
                if acquired:
                    connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ident})
            finally:
                connection.close()
