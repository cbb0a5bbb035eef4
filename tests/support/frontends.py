"""Test helpers for the frontends: a container whose providers are swapped for fakes."""

from __future__ import annotations

from pathlib import Path

from dependency_injector import providers

from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from domain.enums import ModelType
from domain.models import Model
from entrypoints.container import Container
from entrypoints.settings import ManagerSettings, ServerSettings, Settings


def fake_container(home: Path, *, max_body_bytes: int = 1024 * 1024, **server) -> tuple[Container, InMemoryUnitOfWork]:
    """A real container with settings under `home` and an in-memory unit of work."""
    container = Container()
    settings = Settings(
        manager=ManagerSettings(home=home),
        server=ServerSettings(max_body_bytes=max_body_bytes, **server),
    )
    uow = InMemoryUnitOfWork()
    container.settings.override(providers.Object(settings))
    container.uow_factory.override(providers.Object(uow))
    container.clock.override(providers.Object(FakeClock()))
    if hasattr(container, "database_upgrade"):
        container.database_upgrade.override(providers.Object(None))
    return container, uow


def add_models(uow: InMemoryUnitOfWork, root: Path, *specs: tuple[str, ModelType]) -> None:
    with uow:
        for model_id, model_type in specs:
            folder = root / model_id
            folder.mkdir(parents=True, exist_ok=True)
            uow.models.add(Model(model_id, model_type=model_type, local_path=str(folder), size_bytes=10))
        uow.commit()
