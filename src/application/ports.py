"""Shared ports of the application: the clock, a page of results and the unit of work.

Each context's own ports live in `application/<context>/ports.py`. The unit of work names the
repositories of several contexts; they are imported for type checking only, so this shared module
depends on no context at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from application.catalog.ports import SettingsRepository
    from application.downloads.ports import DownloadRepository
    from application.library.ports import ModelRepository
    from application.profiles.ports import ProfileRepository
    from application.routing.ports import BackendMappingRepository


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC wall-clock time."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, for durations and idle timers."""
        ...


@dataclass(frozen=True)
class Page:
    items: list
    total: int


class UnitOfWork(Protocol):
    """Objects read through a repository are tracked: changes made to them are saved by
    `commit()` (calling `add` again is also fine). Nothing is saved without `commit()`."""

    models: ModelRepository
    profiles: ProfileRepository
    downloads: DownloadRepository
    settings: SettingsRepository
    backend_mappings: BackendMappingRepository

    def __enter__(self) -> "UnitOfWork": ...
    def __exit__(self, *exc_info) -> None:
        """Roll back anything not committed."""
        ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
