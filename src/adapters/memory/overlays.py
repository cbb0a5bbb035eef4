"""In-memory `uow.overlays` (the contract suite runs it beside the SQL adapter)."""

from __future__ import annotations

import copy
from typing import Callable

from domain.library.overlays import ModelOverlays


class InMemoryModelOverlayRepository:
    """Keyed by the model's row id, as the SQL table is: a model removed and added again has none."""

    def __init__(self, models: Callable[[], object]) -> None:
        self._models = models  # the unit of work's current model repository
        self._items: dict[int, ModelOverlays] = {}

    def _pk(self, model_id: str) -> int | None:
        model = self._models().get(model_id)
        return model.id if model is not None else None

    def get(self, model_id: str) -> ModelOverlays:
        pk = self._pk(model_id)
        found = self._items.get(pk) if pk is not None else None
        return copy.deepcopy(found) if found is not None else ModelOverlays(model_id)

    def add(self, overlays: ModelOverlays) -> None:
        pk = self._pk(overlays.model_id)
        if pk is None:
            raise LookupError(f"no model {overlays.model_id!r} to hold overlays")
        if overlays.items:
            self._items[pk] = copy.deepcopy(overlays)
        else:
            self._items.pop(pk, None)

    def list(self) -> list[ModelOverlays]:
        live = {m.id: m.model_id for m in self._models().list()}
        return [copy.deepcopy(o) for pk, o in sorted(self._items.items(), key=lambda kv: live.get(kv[0], ""))
                if pk in live]
