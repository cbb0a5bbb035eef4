"""Catalog use cases."""

from __future__ import annotations

from application.catalog.ports import CatalogProvider
from domain.catalog.model import CatalogModel


class CatalogService:
    def __init__(self, provider: CatalogProvider) -> None:
        self._provider = provider

    @property
    def catalog(self):
        return self._provider.load_catalog()

    def list_models(self) -> list[CatalogModel]:
        """Every catalog entry, in catalog order."""
        return self.catalog.models

    def show(self, name: str) -> CatalogModel:
        """Resolve a canonical ID, alias or repo id to its entry."""
        return self.catalog.resolve(name)
