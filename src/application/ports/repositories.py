"""Repository and unit-of-work ports. Repositories act like collections and never commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

from domain.downloads import Download
from domain.enums import DownloadStatus, ModelType
from domain.models import Model
from domain.profiles import ExecutionProfile
from domain.routing import BackendMapping


@dataclass(frozen=True)
class ModelQuery:
    """Library search: free text plus filters applied before the page is cut."""

    text: str | None = None
    model_type: ModelType | None = None
    capability: str | None = None
    status: DownloadStatus | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class Page:
    items: list
    total: int


class ModelRepository(Protocol):
    def add(self, model: Model) -> Model: ...
    def get(self, model_id: str) -> Model | None: ...
    def find(self, name: str) -> Model | None:
        """By model id, canonical id, repo id or alias (case-insensitive)."""
        ...
    def list(self) -> list[Model]: ...
    def search(self, query: ModelQuery) -> Page:
        """Terms match word prefixes (`qwe` finds qwen); all terms must match. Filters apply
        before the page is cut, so `total` counts every match. Ordered by model id."""
        ...
    def with_capability(self, capability: str, model_type: ModelType | None = None) -> list[Model]:
        """Models whose probed capabilities include `capability` (tools, thinking, multi_image,
        video, tts, stt, normalized), optionally of one type. Ordered by model id."""
        ...
    def remove(self, model_id: str) -> None: ...


class ProfileRepository(Protocol):
    def add(self, profile: ExecutionProfile) -> ExecutionProfile: ...
    def get(self, name: str) -> ExecutionProfile | None: ...
    def list(self) -> list[ExecutionProfile]: ...
    def remove(self, name: str) -> None: ...


class DownloadRepository(Protocol):
    def add(self, download: Download) -> Download: ...
    def get(self, download_id: int) -> Download | None: ...
    def latest_for(self, model_id: str) -> Download | None: ...
    def list(self, statuses: Iterable[DownloadStatus] | None = None) -> list[Download]: ...


class SettingsRepository(Protocol):
    """Key/value settings, including the persisted model selection."""

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str) -> None: ...


class BackendMappingRepository(Protocol):
    def add(self, mapping: BackendMapping) -> BackendMapping:
        """Insert, or replace the mapping with the same id; returns it with its id."""
        ...
    def get(self, mapping_id: int) -> BackendMapping | None: ...
    def list(self) -> list[BackendMapping]:
        """Every stored mapping; a row failing today's pattern vetting comes back disabled with its `problem`."""
        ...
    def remove(self, mapping_id: int) -> bool:
        """Delete by id (even a row that cannot be loaded); False when there was none."""
        ...


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
