"""Runtime area wiring: the MLX runtime, the model pool, the probe and the inference service.

Settings (`MLX_SERVER_*`) become the pool's limits and the system layer of the cascade here,
so the core never sees pydantic.
"""

from __future__ import annotations

from adapters.mlx.runtime import MlxRuntime
from application.inference.pool import ModelPool, PoolLimits
from domain.profiles.params import InferenceParams


def model_runtime(settings):
    """The MLX runtime; with a sharding hostfile (`mlxm serve --hosts`), wrapped so the chosen text models
    run sharded over the hostfile's ranks (adapters.mlx.distributed) and the rest stay local."""
    local = local_model_runtime(settings)
    sharding = getattr(settings, "sharding", None)
    if sharding is None or not sharding.hostfile:
        return local
    from adapters.mlx.distributed.runtime import MlxDistributedRuntime, ShardingRuntime

    server = settings.server
    distributed = MlxDistributedRuntime(
        sharding.hostfile, mode=sharding.mode, backend=sharding.backend,
        heartbeat_timeout=sharding.heartbeat_timeout_seconds, load_timeout=server.load_timeout_seconds,
        starting_port=sharding.starting_port, prefill_step_size=server.prefill_step_size,
        max_prompt_tokens=server.max_prompt_tokens,
    )
    return ShardingRuntime(local, distributed, sharding.models)


def local_model_runtime(settings) -> MlxRuntime:
    from adapters.llguidance.grammar import LlguidanceGrammarCompiler

    server = settings.server
    return MlxRuntime(
        enable_batching=server.enable_batching,
        max_batch_size=server.max_batch_size,
        prefill_step_size=server.prefill_step_size,
        prompt_cache_entries=server.prompt_cache_size,
        prompt_cache_bytes=server.prompt_cache_bytes,
        max_prompt_tokens=server.max_prompt_tokens,
        grammar=LlguidanceGrammarCompiler(),
        max_embedding_batch=server.embedding_batch_size,
    )


def pool_limits(settings) -> PoolLimits:
    server = settings.server
    return PoolLimits(
        max_models=server.max_models,
        max_memory_bytes=int(server.max_memory_gb * 2**30),
        policy=server.eviction_policy,
        idle_ttl_seconds=server.idle_ttl_seconds,
        wait_seconds=min(server.load_timeout_seconds, 30.0),
    )


def model_pool(runtime, clock, settings) -> ModelPool:
    return ModelPool(runtime, clock, pool_limits(settings))


def system_params(settings) -> InferenceParams:
    """The last layer of the cascade: request > profile > these `MLX_SERVER_*` defaults."""
    server = settings.server
    return InferenceParams(
        temperature=server.default_temperature,
        max_tokens=server.default_max_tokens,
        top_p=server.default_top_p,
    )


def pool_state_publisher(uow_factory, pool, clock, host):
    from application.inference.pool_state import PoolStatePublisher

    return PoolStatePublisher(uow_factory, pool, clock, host)


def image_resolver(settings):
    """Chat images: remote URLs only with MLX_SERVER_ALLOW_REMOTE_IMAGES, through the SSRF-guarded fetcher."""
    from adapters.stdlib_http.remote_images import GuardedImageFetcher
    from application.inference.images import ImagePolicy, ImageResolver

    server = settings.server
    policy = ImagePolicy(allow_remote=server.allow_remote_images, max_bytes=server.max_image_bytes,
                         timeout_seconds=server.remote_image_timeout_seconds)
    return ImageResolver(policy, GuardedImageFetcher())
