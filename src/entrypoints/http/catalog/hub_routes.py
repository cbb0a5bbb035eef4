"""`GET /api/hub/search`: Hugging Face search with mlxm's own cache."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from entrypoints.http.openapi import api_route, parse_query

TAGS = ("hub",)


class HubSearchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str = Field(default="", max_length=200, description="words in the repo id")
    author: str | None = Field(default=None, max_length=100, description="e.g. mlx-community")
    type: str | None = Field(default=None, max_length=100, description="an mlxm model type or a hub pipeline tag")
    sort: Literal["downloads", "likes", "updated"] = "downloads"
    limit: int = Field(default=20, ge=1, le=100)
    refresh: bool = Field(default=False, description="ask the hub even when the cache is fresh")


class HubModelDTO(BaseModel):
    repo_id: str
    downloads: int | None
    likes: int | None
    last_modified: datetime | None
    pipeline_tag: str | None
    library_name: str | None
    size_bytes: int | None
    tags: list[str]
    in_library: bool
    library_id: str | None
    in_catalog: bool
    catalog_id: str | None


class HubSearchDTO(BaseModel):
    query: dict
    source: Literal["hub", "cache"]
    offline: bool
    fetched_at: datetime | None
    warnings: list[str]
    results: list[HubModelDTO]


async def hub_search(request: Request) -> JSONResponse:
    """Search the Hugging Face hub (cached; offline answers from the cache)."""
    from application.catalog.hub_search import HubQuery

    params = parse_query(request, HubSearchParams)
    author = params.author or request.app.state.container.settings().manager.hf_organization
    query = HubQuery(text=params.q, author=author, model_type=params.type, sort=params.sort, limit=params.limit)
    service = request.app.state.container.hub_search_service()
    result = await run_in_threadpool(service.search, query, refresh=params.refresh)
    return JSONResponse(HubSearchDTO.model_validate(result.to_dict()).model_dump(mode="json"))


routes = [
    api_route("/api/hub/search", hub_search, "GET", tags=TAGS, query=HubSearchParams, response=HubSearchDTO,
              error_statuses=(400, 422, 503)),
]
