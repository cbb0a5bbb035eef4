from __future__ import annotations

import copy
import itertools
import re
from datetime import datetime, timedelta, timezone
from typing import Iterable

from application.library.ports import ModelQuery
from application.ports import Page
from domain.library.capabilities import supports
from domain.downloads.model import Download
from domain.enums import DownloadStatus, ModelType
from domain.library.models import Model
from domain.profiles.model import ExecutionProfile
from domain.routing.model import BackendMapping

# Letters and digits make terms; anything else separates them (as the SQLite FTS index does).
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
MAX_QUERY_TERMS = 16


def _fold(text: str | None) -> str:
    """Lower case without diacritics, as the real indexes fold both documents and queries."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _terms(text: str | None) -> list[str]:
    return _TOKEN.findall(_fold(text))[:MAX_QUERY_TERMS]


def _searchable_tokens(model: Model) -> set[str]:
    parts = [model.model_id, model.repo_id, model.canonical_id, model.family, model.description,
             model.model_type.value if model.model_type else None, *model.aliases, *model.tags]
    tokens: set[str] = set()
    for part in parts:
        tokens.update(_terms_all(part))
    return tokens


def _terms_all(text: str | None) -> list[str]:
    return _TOKEN.findall(_fold(text))


class InMemoryModelRepository:
    def __init__(self) -> None:
        self._items: dict[str, Model] = {}
        self._ids = itertools.count(1)

    def add(self, model: Model) -> Model:
        if model.id is None:
            model.id = next(self._ids)
        self._items[model.model_id] = model
        return model

    def get(self, model_id: str) -> Model | None:
        return self._items.get(model_id)

    def find(self, name: str) -> Model | None:
        if name in self._items:
            return self._items[name]
        key = name.lower()
        for model in self._items.values():
            names = {model.model_id.lower(), (model.canonical_id or "").lower(), (model.repo_id or "").lower()}
            names.update(a.lower() for a in model.aliases)
            if key in names:
                return model
        return None

    def list(self) -> list[Model]:
        return sorted(self._items.values(), key=lambda m: m.model_id)

    def search(self, query: ModelQuery) -> Page:
        terms = _terms(query.text)
        hits = []
        # In the order models were added (ascending id), as the SQL adapter pages them.
        for model in sorted(self._items.values(), key=lambda m: m.id or 0):
            if query.model_type is not None and model.model_type != query.model_type:
                continue
            if query.status is not None and model.status != query.status:
                continue
            if query.capability and not supports(model.capabilities, query.capability):
                continue
            tokens = _searchable_tokens(model)
            if terms and not all(any(tok.startswith(term) for tok in tokens) for term in terms):
                continue
            hits.append(model)
        return Page(items=hits[query.offset : query.offset + query.limit], total=len(hits))

    def with_capability(self, capability: str, model_type: ModelType | None = None) -> list[Model]:
        return [
            m for m in self.list()
            if supports(m.capabilities, capability)
            and (model_type is None or (m.capabilities is not None and m.capabilities.model_type == model_type))
        ]

    def remove(self, model_id: str) -> None:
        self._items.pop(model_id, None)


class InMemoryProfileRepository:
    def __init__(self) -> None:
        self._items: dict[str, ExecutionProfile] = {}
        self._ids = itertools.count(1)

    def add(self, profile: ExecutionProfile) -> ExecutionProfile:
        if profile.id is None:
            profile.id = next(self._ids)
        # Renames keep the id: drop the entry under the old name.
        for name, existing in list(self._items.items()):
            if existing.id == profile.id and name != profile.name:
                del self._items[name]
        self._items[profile.name] = profile
        return profile

    def get(self, name: str) -> ExecutionProfile | None:
        return self._items.get(name)

    def list(self) -> list[ExecutionProfile]:
        return sorted(self._items.values(), key=lambda p: p.name)

    def remove(self, name: str) -> None:
        self._items.pop(name, None)


class InMemoryDownloadRepository:
    def __init__(self) -> None:
        self._items: dict[int, Download] = {}
        self._ids = itertools.count(1)

    def add(self, download: Download) -> Download:
        if download.id is None:
            download.id = next(self._ids)
        self._items[download.id] = download
        return download

    def get(self, download_id: int) -> Download | None:
        return self._items.get(download_id)

    def latest_for(self, model_id: str) -> Download | None:
        matching = [d for d in self._items.values() if d.model_id == model_id]
        return max(matching, key=lambda d: d.id or 0) if matching else None

    def list(self, statuses: Iterable[DownloadStatus] | None = None) -> list[Download]:
        wanted = set(statuses) if statuses is not None else None
        return [d for d in sorted(self._items.values(), key=lambda d: d.id or 0) if wanted is None or d.status in wanted]


class InMemorySettingsRepository:
    def __init__(self) -> None:
        self._items: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self._items.get(key)

    def set(self, key: str, value: str) -> None:
        self._items[key] = value


class InMemoryBackendMappingRepository:
    def __init__(self) -> None:
        self._items: dict[int, BackendMapping] = {}
        self._ids = itertools.count(1)

    def add(self, mapping: BackendMapping) -> BackendMapping:
        from dataclasses import replace

        if mapping.id is None:
            mapping = replace(mapping, id=next(self._ids))
        self._items[mapping.id] = mapping  # type: ignore[index]
        return mapping

    def get(self, mapping_id: int) -> BackendMapping | None:
        return self._items.get(mapping_id)

    def find_same(self, mapping: BackendMapping) -> BackendMapping | None:
        return next((m for m in self.list() if m.id != mapping.id and m.same_rule(mapping)), None)

    def list(self) -> list[BackendMapping]:
        return [self._items[k] for k in sorted(self._items)]

    def remove(self, mapping_id: int) -> bool:
        return self._items.pop(mapping_id, None) is not None


class InMemoryUnitOfWork:
    """Commits by snapshot: changes made inside `with` vanish unless `commit()` ran."""

    def __init__(self) -> None:
        self.models = InMemoryModelRepository()
        self.profiles = InMemoryProfileRepository()
        self.downloads = InMemoryDownloadRepository()
        self.settings = InMemorySettingsRepository()
        self.backend_mappings = InMemoryBackendMappingRepository()
        # --- auth / routing / audit ---
        from adapters.memory.auth import (
            InMemoryApiKeyRepository, InMemoryAuditRepository, InMemoryCredentialRepository, InMemoryUserRepository,
        )

        self.users = InMemoryUserRepository()
        self.api_keys = InMemoryApiKeyRepository()
        self.audit = InMemoryAuditRepository()
        self.credentials = InMemoryCredentialRepository()
        # --- library pipelines ---
        from adapters.memory.library import (
            InMemoryDependencyBindingRepository, InMemoryDependencyProfileRepository, InMemoryLinkRepository,
        )

        self.links = InMemoryLinkRepository()
        self.dependency_profiles = InMemoryDependencyProfileRepository()
        self.dependency_bindings = InMemoryDependencyBindingRepository()
        from adapters.memory.pool_state import InMemoryPoolStateRepository

        self.pool_state = InMemoryPoolStateRepository()
        from adapters.memory.overlays import InMemoryModelOverlayRepository

        self.overlays = InMemoryModelOverlayRepository(lambda: self.models)
        self.committed = 0
        self._snapshot: dict | None = None

    def _repos(self) -> dict:
        return {name: getattr(self, name) for name in ("models", "profiles", "downloads", "settings", "backend_mappings",
                                                          "users", "api_keys", "audit", "credentials",
                                                          "links", "dependency_profiles", "dependency_bindings",
                                                          "pool_state", "overlays")}

    def __enter__(self) -> "InMemoryUnitOfWork":
        self._snapshot = copy.deepcopy(self._repos())
        return self

    def __exit__(self, *exc_info) -> None:
        self.rollback()
        self._snapshot = None

    def commit(self) -> None:
        self._snapshot = copy.deepcopy(self._repos())
        self.committed += 1

    def rollback(self) -> None:
        if self._snapshot is not None:
            for name, repo in copy.deepcopy(self._snapshot).items():
                setattr(self, name, repo)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=timezone.utc)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
