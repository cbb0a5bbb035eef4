"""`/api/pool`: what is loaded; load; unload."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from application.errors import Unavailable
from entrypoints.http.openapi import api_route, parse_body
from entrypoints.http.inference.pool_schemas import (
    HostLoadedModelDTO,
    LoadedModelDTO,
    PoolActionRequest,
    PoolActionResponse,
    PoolDTO,
    PoolHostsDTO,
    PromptCacheDTO,
    ShardingDTO,
)

TAGS = ("pool",)


def _pool(container):
    provider = getattr(container, "model_pool", None)
    if provider is None:
        raise Unavailable("no model pool is configured in this build")
    return provider()


def pool_status(container) -> PoolDTO:
    pool = _pool(container)
    limits = getattr(pool, "limits", None)
    infos = pool.loaded()
    loaded = [
        LoadedModelDTO(
            model_id=info.model_id,
            type=getattr(info.model_type, "value", info.model_type),
            size_bytes=info.size_bytes,
            loaded_at=info.loaded_at,
            last_used_at=info.last_used_at,
            use_count=info.use_count,
            pinned=info.pinned,
            in_use=getattr(info, "in_use", 0),
            sharding=_sharding(getattr(info, "sharding", None)),
            available=getattr(getattr(info, "sharding", None), "unavailable", None) is None,
            prompt_cache=_prompt_cache(getattr(info, "cache", None)),
        )
        for info in infos
    ]
    return PoolDTO(
        loaded=loaded,
        max_models=getattr(limits, "max_models", None),
        max_memory_bytes=getattr(limits, "max_memory_bytes", None) or None,
        # As the pool counts it against max_memory_bytes: weights plus prompt caches.
        used_bytes=sum((i.size_bytes or 0) + (getattr(i, "cache_bytes", 0) or 0) for i in infos),
        eviction_policy=str(getattr(limits, "policy", "")) or None,
    )


def _prompt_cache(stats) -> PromptCacheDTO | None:
    if stats is None:
        return None
    return PromptCacheDTO(bytes=stats.bytes, entries=stats.entries, max_entries=stats.max_entries,
                          max_bytes=stats.max_bytes)


def _sharding(sharding) -> ShardingDTO | None:
    if sharding is None:
        return None
    return ShardingDTO(mode=sharding.mode, ranks=sharding.ranks, hosts=list(sharding.hosts), backend=sharding.backend,
                       rank_bytes=list(sharding.rank_bytes), unavailable=sharding.unavailable)


def load_model(container, name: str) -> PoolActionResponse:
    _pool(container)  # 503 when this build has no pool
    return PoolActionResponse(model_id=container.inference_service().load(name), loaded=True)


def unload_model(container, name: str) -> PoolActionResponse:
    _pool(container)
    model_id, unloaded_now = container.inference_service().unload(name)
    return PoolActionResponse(model_id=model_id, loaded=not unloaded_now)


async def get_pool(request: Request) -> JSONResponse:
    """Loaded models: size, since when, last used, and the pool's limits."""
    dto = await run_in_threadpool(pool_status, request.app.state.container)
    return JSONResponse(dto.model_dump(mode="json"))


async def post_load(request: Request) -> JSONResponse:
    """Load a model (by profile or model name) into the pool."""
    body = await parse_body(request, PoolActionRequest)
    dto = await run_in_threadpool(load_model, request.app.state.container, body.model)
    return JSONResponse(dto.model_dump())


async def post_unload(request: Request) -> JSONResponse:
    """Unload a model now, or when its running requests finish (`loaded: true` until then)."""
    body = await parse_body(request, PoolActionRequest)
    dto = await run_in_threadpool(unload_model, request.app.state.container, body.model)
    return JSONResponse(dto.model_dump())


def hosts_status(container) -> PoolHostsDTO:
    provider = getattr(container, "pool_state_publisher", None)
    if provider is None:
        raise Unavailable("no pool state is configured in this build")
    publisher = provider()
    return PoolHostsDTO(this_host=publisher.host, hosts={
        host: [HostLoadedModelDTO(model_id=e.model_id, type=e.model_type, size_bytes=e.size_bytes,
                                  loaded_at=e.loaded_at, last_used_at=e.last_used_at, use_count=e.use_count,
                                  updated_at=e.updated_at) for e in entries]
        for host, entries in publisher.hosts().items()
    })


async def get_pool_hosts(request: Request) -> JSONResponse:
    """Every host's pool, as published to the shared database (several servers on one PostgreSQL)."""
    dto = await run_in_threadpool(hosts_status, request.app.state.container)
    return JSONResponse(dto.model_dump(mode="json"))


routes = [
    api_route("/api/pool", get_pool, "GET", tags=TAGS, response=PoolDTO, error_statuses=(503,)),
    api_route("/api/pool/hosts", get_pool_hosts, "GET", tags=TAGS, response=PoolHostsDTO, error_statuses=(503,)),
    api_route("/api/pool/load", post_load, "POST", tags=TAGS, body=PoolActionRequest, response=PoolActionResponse,
              error_statuses=(400, 404, 413, 422, 503)),
    api_route("/api/pool/unload", post_unload, "POST", tags=TAGS, body=PoolActionRequest,
              response=PoolActionResponse, error_statuses=(400, 404, 413, 422, 503)),
]
