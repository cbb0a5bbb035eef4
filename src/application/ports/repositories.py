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
    def search(self, query: ModelQuery) -> Page: ...
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
    def add(self, mapping: BackendMapping) -> BackendMapping: ...
    def list(self) -> list[BackendMapping]: ...
    def remove(self, mapping_id: int) -> None: ...


class UnitOfWork(Protocol):
    models: ModelRepository
    profiles: ProfileRepository
    downloads: DownloadRepository
    settings: SettingsRepository

    def __enter__(self) -> "UnitOfWork": ...
    def __exit__(self, *exc_info) -> None:
        """Roll back anything not committed."""
        ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
