from __future__ import annotations

from typing import Protocol

from domain.catalog import Catalog


class CatalogProvider(Protocol):
    """Where the catalog comes from: embedded in the package, or (later) a signed remote file."""

    def load_catalog(self) -> Catalog: ...
