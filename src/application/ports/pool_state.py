"""Per-host pool state in a shared database."""

from __future__ import annotations

from typing import Protocol

from domain.pool_state import HostPoolEntry


class PoolStateRepository(Protocol):
    def replace(self, host: str, entries: list[HostPoolEntry]) -> None:
        """The host's rows become exactly `entries` (an empty list clears them)."""
        ...

    def list(self, host: str | None = None) -> list[HostPoolEntry]:
        """Ordered by host, then model id."""
        ...
