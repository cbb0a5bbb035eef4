"""Test helpers for the frontends: a container whose providers are swapped for fakes."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

from dependency_injector import providers

from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from adapters.memory.runtime import FakeModelRuntime
from application.audit.service import ImmediateAuditSink
from application.inference.service import InferenceService
from application.inference.pool import ModelPool, PoolLimits
from domain.enums import ModelType
from domain.library.models import Model
from entrypoints.composition.container import Container
from entrypoints.composition.settings import ManagerSettings, ServerSettings, Settings


def fake_container(home: Path, *, max_body_bytes: int = 1024 * 1024, pool_limits: PoolLimits | None = None,
                   auth: str = "auto", allowed_model_dirs: tuple = (), **server) -> tuple[Container, InMemoryUnitOfWork]:
    """A real container with settings under `home` and an in-memory unit of work."""
    container = Container()
    settings = Settings(
        manager=ManagerSettings(home=home, auth=auth, allowed_model_dirs=list(allowed_model_dirs)),
        server=ServerSettings(max_body_bytes=max_body_bytes, **server),
    )
    uow = InMemoryUnitOfWork()
    container.settings.override(providers.Object(settings))
    container.uow_factory.override(providers.Object(uow))
    # The in-memory unit of work is not thread-safe: audit rows are written on the request's thread.
    container.audit_sink.override(providers.Singleton(ImmediateAuditSink, container.audit_service))
    container.clock.override(providers.Object(FakeClock()))
    for name in ("database_engine", "database_upgrade"):
        if hasattr(container, name):
            getattr(container, name).override(providers.Object(None))
    # The real pool and inference service over the in-memory runtime.
    clock = container.clock()
    runtime = FakeModelRuntime()
    pool = ModelPool(runtime, clock, pool_limits or PoolLimits(max_models=2))
    inference = InferenceService(lambda: uow, container.catalog_provider(), pool, runtime, clock)
    for name, value in (("runtime", runtime), ("model_runtime", runtime), ("model_pool", pool),
                        ("inference_service", inference)):
        if hasattr(container, name):
            getattr(container, name).override(providers.Object(value))
        else:
            container.set_provider(name, providers.Object(value))
    return container, uow


def add_models(uow: InMemoryUnitOfWork, root: Path, *specs: tuple[str, ModelType]) -> None:
    with uow:
        for model_id, model_type in specs:
            folder = root / model_id
            folder.mkdir(parents=True, exist_ok=True)
            uow.models.add(Model(model_id, model_type=model_type, local_path=str(folder), size_bytes=10))
        uow.commit()


@contextlib.contextmanager
def serve_in_thread(app, host: str = "127.0.0.1"):
    """Run `app` under real uvicorn on a free loopback port; yields the base URL."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="on", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def real_container(home: Path, **server):
    """The production container (SQLite under `home`), with the MLX runtime wired if the container lacks it."""
    container = Container()
    settings = Settings(manager=ManagerSettings(home=home), server=ServerSettings(**server))
    container.settings.override(providers.Object(settings))
    if hasattr(container, "model_runtime"):
        # Random-weight TTS rarely emits its stop token: cap speech tokens so tests stay fast.
        from adapters.mlx.runtime import MlxRuntime

        server_settings = settings.server
        container.model_runtime.override(providers.Singleton(
            MlxRuntime, enable_batching=True, max_batch_size=server_settings.max_batch_size, max_speech_tokens=8,
            prompt_cache_entries=server_settings.prompt_cache_size, prompt_cache_bytes=server_settings.prompt_cache_bytes,
            max_prompt_tokens=server_settings.max_prompt_tokens, prefill_step_size=server_settings.prefill_step_size))
    if not hasattr(container, "inference_service"):
        from adapters.system.clock import SystemClock
        from adapters.mlx.runtime import MlxRuntime

        runtime = MlxRuntime(max_speech_tokens=8)
        clock = SystemClock()
        pool = ModelPool(runtime, clock, PoolLimits(max_models=settings.server.max_models))
        inference = InferenceService(container.uow_factory, container.catalog_provider(), pool, runtime, clock)
        for name, value in (("runtime", runtime), ("model_pool", pool), ("inference_service", inference)):
            container.set_provider(name, providers.Object(value))
    return container
