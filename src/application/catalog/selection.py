"""The persisted model selection, kept canonical."""

from __future__ import annotations

from typing import Callable

from application.catalog.ports import CatalogProvider
from application.errors import NotInstalled
from application.ports import UnitOfWork
from domain.catalog.model import SelectionResult, normalise_selection

SELECTION_KEY = "selected_model"


class SelectionService:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], catalog: CatalogProvider) -> None:
        self._uow_factory = uow_factory
        self._catalog = catalog

    def current(self) -> SelectionResult:
        """The selection, normalised; a legacy or unknown value is written back canonical."""
        catalog = self._catalog.load_catalog()
        with self._uow_factory() as uow:
            stored = uow.settings.get(SELECTION_KEY)
            local = uow.models.get(stored) if stored and catalog.find(stored) is None else None
            if local is not None and local.is_installed:
                # A model outside the catalog (imported, or a plain repo id) is a valid selection as is.
                return SelectionResult(local.model_id, False)
            installed = [m for m in uow.models.list() if m.is_installed]
            result = normalise_selection(
                catalog,
                stored,
                [m.canonical_id or m.model_id for m in installed],
                {m.canonical_id or m.model_id: m.size_bytes for m in installed if m.size_bytes is not None},
            )
            if result.changed:
                uow.settings.set(SELECTION_KEY, result.model_id)
                uow.commit()
            return result

    def select(self, name: str) -> SelectionResult:
        """Persist `name` after resolving it (an alias is stored as its canonical ID).

        A name the catalog does not know may still be an installed library model (an import).
        """
        catalog = self._catalog.load_catalog()
        entry = catalog.find(name)
        with self._uow_factory() as uow:
            if entry is not None:
                model_id = entry.id
                installed = [uow.models.find(candidate) for candidate in (entry.id, *entry.repo_ids)]
                if not any(m is not None and m.is_installed for m in installed):
                    # The selection is the default model of every request: it must be one that can run.
                    raise NotInstalled(f"{entry.id} is not installed; `mlxm select {name} --pull` downloads and "
                                       f"selects it (or run `mlxm pull {name}` first)")
            else:
                local = uow.models.find(name)
                if local is None or not local.is_installed:
                    catalog.resolve(name)  # raises UnknownModel with the closest catalog names
                model_id = local.model_id
            previous = uow.settings.get(SELECTION_KEY)
            uow.settings.set(SELECTION_KEY, model_id)
            uow.commit()
        return SelectionResult(model_id, previous != model_id)
