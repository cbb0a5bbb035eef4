"""For writers of inferred metadata (pulls, probes, link bookkeeping): record it under the user's overlays."""

from __future__ import annotations

from domain.library.models import Model
from domain.library.overlays import inferred_of, record_inferred


def record_inferred_in(uow, model: Model, **values) -> None:
    """Set newly inferred `values` on `model`; fields the user overrode keep the user's value, and
    their overlays (saved in the same unit of work) remember the new inferred one."""
    repository = getattr(uow, "overlays", None)
    overlays = repository.get(model.model_id) if repository is not None and model.id is not None else None
    record_inferred(model, overlays, **values)
    if overlays is not None and overlays.overriding():
        repository.add(overlays)


def inferred_value(uow, model: Model, name: str):
    """The inferred value of field `name` (beneath any overlay of the user's)."""
    repository = getattr(uow, "overlays", None)
    overlays = repository.get(model.model_id) if repository is not None and model.id is not None else None
    return getattr(inferred_of(model, overlays), name)
