"""Factories the container uses for hub search (kept here so container.py stays declarative)."""

from __future__ import annotations


def hub_search_client():
    from adapters.huggingface.hub_search import HfApiHubSearch

    return HfApiHubSearch()


def hub_search_cache(settings):
    from adapters.sqlite.search_cache import SqliteHubSearchCache

    return SqliteHubSearchCache(settings.manager.cache_dir / "search.sqlite")


def hub_search_service(client, cache, catalog_provider, uow_factory, clock, settings):
    from application.catalog.hub_search import HubSearchService

    return HubSearchService(client, cache, catalog_provider, uow_factory, clock,
                            ttl_seconds=settings.manager.search_cache_ttl_seconds,
                            offline=lambda: bool(settings.manager.offline))
