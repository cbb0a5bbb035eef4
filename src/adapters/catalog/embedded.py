from __future__ import annotations

import json
from importlib import resources

from domain.catalog.model import Catalog, catalog_from_dict


class EmbeddedCatalogProvider:
    """The catalog that ships inside the package (`catalog.json`)."""

    def __init__(self, resource: str = "catalog.json") -> None:
        self._resource = resource
        self._catalog: Catalog | None = None

    def load_catalog(self) -> Catalog:
        if self._catalog is None:
            text = resources.files("adapters.catalog").joinpath(self._resource).read_text(encoding="utf-8")
            self._catalog = catalog_from_dict(json.loads(text))
        return self._catalog


class StaticCatalogProvider:
    """A catalog given in memory (tests, or a catalog built by another provider)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def load_catalog(self) -> Catalog:
        return self._catalog
