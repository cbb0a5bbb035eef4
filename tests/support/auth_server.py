"""A production container on real SQLite with a fake local runtime, for the auth / routing / audit e2e tests."""

from __future__ import annotations

from pathlib import Path

from dependency_injector import providers

from adapters.system.clock import SystemClock
from adapters.memory.runtime import FakeModelRuntime
from application.inference.service import InferenceService
from application.inference.pool import ModelPool, PoolLimits
from domain.enums import ModelType
from domain.library.models import Model
from entrypoints.composition.container import Container
from entrypoints.composition.settings import ManagerSettings, ServerSettings, Settings

LOCAL_MODELS = ("tiny-local", "tiny-fallback")


def sqlite_container(home: Path, *, auth: str = "auto", host: str = "127.0.0.1", database_url: str | None = None,
                     host_name: str = "test-host", **server) -> Container:
    """Container() with settings under `home` (SQLite unless `database_url`, key file) and a FakeModelRuntime
    behind the real pool and InferenceService; the models in LOCAL_MODELS are installed text models."""
    container = Container()
    settings = Settings(manager=ManagerSettings(home=home, auth=auth, host=host, database_url=database_url,
                                                host_name=host_name),
                        server=ServerSettings(**server))
    container.settings.override(providers.Object(settings))
    runtime = FakeModelRuntime()
    clock = SystemClock()
    pool = ModelPool(runtime, clock, PoolLimits(max_models=2))
    inference = InferenceService(container.uow_factory, container.catalog_provider(), pool, runtime, clock)
    for name, value in (("runtime", runtime), ("model_pool", pool), ("inference_service", inference)):
        if hasattr(container, name):
            getattr(container, name).override(providers.Object(value))
        else:
            container.set_provider(name, providers.Object(value))
    with container.uow_factory() as uow:
        for model_id in LOCAL_MODELS:
            folder = home / "models" / model_id
            folder.mkdir(parents=True, exist_ok=True)
            uow.models.add(Model(model_id, model_type=ModelType.TEXT_GEN, local_path=str(folder), size_bytes=10))
        uow.commit()
    return container
