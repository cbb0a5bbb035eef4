"""The composition root: the only place adapters are chosen."""

from __future__ import annotations

from dependency_injector import containers, providers

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.clock import SystemClock
from application.catalog import CatalogService
from entrypoints.settings import Settings


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings)

    clock = providers.Singleton(SystemClock)
    catalog_provider = providers.Singleton(EmbeddedCatalogProvider)

    catalog_service = providers.Factory(CatalogService, provider=catalog_provider)
