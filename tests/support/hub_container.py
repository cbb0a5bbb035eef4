"""The composition root wired to a loopback test hub: pulls go to `hub`, the catalog is the test's own."""

from __future__ import annotations

from pathlib import Path

from dependency_injector import providers

from adapters.catalog.embedded import StaticCatalogProvider
from domain.catalog.model import catalog_from_dict
from entrypoints.composition.container import Container
from entrypoints.composition.settings import ManagerSettings, Settings


def hub_container(hub, home: Path, monkeypatch, catalog: dict) -> Container:
    """A real container whose home is `home`, whose catalog is `catalog` (as in a catalog file) and whose
    Hugging Face endpoint is the loopback `hub` (no mirror)."""
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("MLX_MIRROR_BASE_URL", raising=False)
    container = Container()
    container.settings.override(providers.Object(Settings(manager=ManagerSettings(home=home))))
    container.catalog_provider.override(providers.Object(StaticCatalogProvider(catalog_from_dict(catalog))))
    return container
