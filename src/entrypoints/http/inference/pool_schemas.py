"""DTOs of the model pool API (`/api/pool`): loaded models, their prompt caches, sharding, hosts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


# -- pool --------------------------------------------------------------------------
class ShardingDTO(BaseModel):
    mode: str = Field(description="tensor | pipeline")
    ranks: int
    hosts: list[str] = Field(description="ssh names from the hostfile, rank 0 first")
    backend: str
    rank_bytes: list[int] = Field(default_factory=list, description="Each rank's share of the weights")
    unavailable: str | None = Field(default=None, description="Why the model cannot serve now")


class PromptCacheDTO(BaseModel):
    bytes: int = Field(description="Bytes the cache holds now; counted with the weights against max_memory_bytes")
    entries: int = Field(description="Cached sequences (prompts, or prompt + answer)")
    max_entries: int = Field(description="MLX_SERVER_PROMPT_CACHE_SIZE")
    max_bytes: int = Field(description="MLX_SERVER_PROMPT_CACHE_BYTES")


class LoadedModelDTO(BaseModel):
    model_id: str
    type: str | None = None
    size_bytes: int | None = None
    loaded_at: datetime | None = None
    last_used_at: datetime | None = None
    use_count: int | None = None
    pinned: bool = False
    in_use: int = Field(default=0, description="Requests holding the model right now")
    sharding: ShardingDTO | None = Field(default=None, description="Placement over several ranks (mlxm serve --hosts)")
    available: bool = Field(default=True, description="False: the model cannot serve now (a rank died or hung)")
    prompt_cache: PromptCacheDTO | None = Field(
        default=None, description="The model's prompt (KV) cache; null: it has none (off, audio, embeddings, sharded)")


class PoolDTO(BaseModel):
    loaded: list[LoadedModelDTO]
    max_models: int | None = None
    max_memory_bytes: int | None = None
    used_bytes: int | None = Field(default=None, description="What the pool counts against max_memory_bytes: "
                                   "the loaded models' weights plus their prompt caches")
    eviction_policy: str | None = None


class HostLoadedModelDTO(BaseModel):
    model_id: str
    type: str
    size_bytes: int
    loaded_at: datetime
    last_used_at: datetime
    use_count: int
    updated_at: datetime | None = Field(None, description="When that host last published its pool")


class PoolHostsDTO(BaseModel):
    this_host: str
    hosts: dict[str, list[HostLoadedModelDTO]] = Field(description="Loaded models by host name")


class PoolActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="A profile name, canonical id, alias or repo id")


class PoolActionResponse(BaseModel):
    model_id: str
    loaded: bool
