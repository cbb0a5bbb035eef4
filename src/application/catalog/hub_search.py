"""Hugging Face search with its own cache (Pumas' design): `mlxm search --hub`, GET /api/hub/search.

The hub answers through a `HubSearchClient` port (`application/catalog/ports.py`) (the real huggingface_hub client in production);
answers are kept in a `HubSearchCache` (its own SQLite file, never the library database) for
`ttl_seconds`. Offline mode answers from the cache and says so; a hub error falls back to the cache
with a warning. Each result says whether the model is in the library and in the catalog.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Callable

from application.errors import InvalidRequest, Unavailable
from application.catalog.ports import CatalogProvider, HubSearchCache, HubSearchClient, HubSearchError
from application.ports import Clock
from domain.enums import ModelType

SORTS = ("downloads", "likes", "updated")
MAX_LIMIT = 100
MAX_QUERY_LENGTH = 200
# mlxm model types -> the hub's pipeline tag. Any other value is passed to the hub as a pipeline tag.
TYPE_TO_PIPELINE = {
    ModelType.TEXT_GEN.value: "text-generation",
    ModelType.VISION.value: "image-text-to-text",
    ModelType.EMBEDDINGS.value: "feature-extraction",
    ModelType.AUDIO.value: "text-to-speech",
}


@dataclass(frozen=True)
class HubQuery:
    text: str = ""
    author: str | None = None
    model_type: str | None = None  # an mlxm type or a hub pipeline tag
    sort: str = "downloads"
    limit: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", (self.text or "").strip())
        for name in ("author", "model_type"):
            value = getattr(self, name)
            object.__setattr__(self, name, value.strip() or None if isinstance(value, str) else None)
        if len(self.text) > MAX_QUERY_LENGTH:
            raise InvalidRequest(f"query is longer than {MAX_QUERY_LENGTH} characters")
        if self.sort not in SORTS:
            raise InvalidRequest(f"unknown sort {self.sort!r}; expected one of {', '.join(SORTS)}")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
        for name in ("author", "model_type"):
            value = getattr(self, name)
            if value is not None and (len(value) > 100 or any(c.isspace() for c in value)):
                raise InvalidRequest(f"{name} must be one word of at most 100 characters")

    @property
    def pipeline_tag(self) -> str | None:
        if self.model_type is None:
            return None
        return TYPE_TO_PIPELINE.get(self.model_type, self.model_type)

    def cache_key(self) -> str:
        return json.dumps([self.text.lower(), (self.author or "").lower(), self.pipeline_tag, self.sort, self.limit])


@dataclass(frozen=True)
class HubModel:
    repo_id: str
    downloads: int | None = None
    likes: int | None = None
    last_modified: datetime | None = None
    pipeline_tag: str | None = None
    library_name: str | None = None
    size_bytes: int | None = None  # the hub's storage figure for the repo, where it gives one
    tags: tuple[str, ...] = ()
    # Filled from mlxm's own data at answer time (never cached):
    library_id: str | None = None
    catalog_id: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["last_modified"] = _iso(self.last_modified, "auto") if self.last_modified else None
        data["tags"] = list(self.tags)
        data["in_library"] = self.library_id is not None
        data["in_catalog"] = self.catalog_id is not None
        return data


@dataclass(frozen=True)
class HubSearchResult:
    query: HubQuery
    models: list[HubModel]
    source: str  # "hub" | "cache"
    fetched_at: datetime | None
    offline: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "query": asdict(self.query),
            "source": self.source,
            "offline": self.offline,
            "fetched_at": _iso(self.fetched_at, "auto") if self.fetched_at else None,
            "warnings": list(self.warnings),
            "results": [m.to_dict() for m in self.models],
        }


class HubSearchService:
    def __init__(self, client: HubSearchClient, cache: HubSearchCache, catalog: CatalogProvider, uow_factory,
                 clock: Clock, ttl_seconds: float = 3600.0, offline: Callable[[], bool] = lambda: False) -> None:
        self._client = client
        self._cache = cache
        self._catalog = catalog
        self._uow_factory = uow_factory
        self._clock = clock
        self._ttl = ttl_seconds
        self._offline = offline

    def search(self, query: HubQuery, *, refresh: bool = False) -> HubSearchResult:
        key = query.cache_key()
        cached = self._cache.get(key)
        if self._offline():
            if cached is None:
                return HubSearchResult(query, [], "cache", None, offline=True, warnings=[
                    "offline (MLX_MANAGER_OFFLINE): nothing cached for this search"])
            models, fetched_at = cached
            return self._enriched(HubSearchResult(query, models, "cache", fetched_at, offline=True, warnings=[
                f"offline (MLX_MANAGER_OFFLINE): answered from the cache of {_iso(fetched_at)}"]))
        now = self._clock.now()
        if cached is not None and not refresh and (now - cached[1]).total_seconds() < self._ttl:
            return self._enriched(HubSearchResult(query, cached[0], "cache", cached[1]))
        try:
            models = self._client.search(query)
        except HubSearchError as exc:
            if cached is None:
                raise Unavailable(f"the hub did not answer ({exc}) and nothing is cached for this search") from None
            models, fetched_at = cached
            return self._enriched(HubSearchResult(query, models, "cache", fetched_at, warnings=[
                f"the hub did not answer ({exc}); answered from the cache of "
                f"{_iso(fetched_at)}"]))
        self._cache.put(key, models, now)
        return self._enriched(HubSearchResult(query, models, "hub", now))

    def _enriched(self, result: HubSearchResult) -> HubSearchResult:
        catalog = self._catalog.load_catalog()
        enriched = []
        with self._uow_factory() as uow:
            for model in result.models:
                entry = catalog.find(model.repo_id)
                in_library = uow.models.find(model.repo_id) or (uow.models.find(entry.id) if entry else None)
                enriched.append(replace(model, catalog_id=entry.id if entry else None,
                                        library_id=in_library.model_id if in_library else None))
        return replace(result, models=enriched)


__all__ = ["HubModel", "HubQuery", "HubSearchError", "HubSearchResult", "HubSearchService"]


def _iso(moment, timespec: str = "seconds") -> str:
    """ISO 8601 with `Z` for UTC: the one form the CLI and the HTTP API print times in."""
    text = moment.isoformat(timespec=timespec)
    return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text
