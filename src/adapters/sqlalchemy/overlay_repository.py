"""`uow.overlays` on SQLAlchemy: write-through Core statements in the unit of work's transaction."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from adapters.sqlalchemy.overlay_tables import ModelOverlayRecord
from adapters.sqlalchemy.tables import ModelRecord
from domain.library.overlays import ModelOverlays, overlay_to_dict, overlays_from_list

_TABLE = ModelOverlayRecord.__table__
_MODELS = ModelRecord.__table__


class SqlAlchemyModelOverlayRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def save_changes(self) -> None:
        pass  # write-through

    def get(self, model_id: str) -> ModelOverlays:
        rows = self._session.execute(
            select(_TABLE.c.data).join(_MODELS, _MODELS.c.id == _TABLE.c.model_pk)
            .where(_MODELS.c.model_id == model_id).order_by(_TABLE.c.field)
        ).scalars().all()
        return overlays_from_list(model_id, rows)

    def add(self, overlays: ModelOverlays) -> None:
        model_pk = self._session.scalar(select(_MODELS.c.id).where(_MODELS.c.model_id == overlays.model_id))
        if model_pk is None:
            raise LookupError(f"no model {overlays.model_id!r} to hold overlays")
        self._session.execute(delete(_TABLE).where(_TABLE.c.model_pk == model_pk))
        if overlays.items:
            self._session.execute(_TABLE.insert(), [
                {"model_pk": model_pk, "field": name, "data": overlay_to_dict(overlay),
                 "updated_at": overlay.updated_at}
                for name, overlay in sorted(overlays.items.items())
            ])

    def list(self) -> list[ModelOverlays]:
        rows = self._session.execute(
            select(_MODELS.c.model_id, _TABLE.c.data).join(_MODELS, _MODELS.c.id == _TABLE.c.model_pk)
            .order_by(_MODELS.c.model_id, _TABLE.c.field)
        ).all()
        by_model: dict[str, list] = {}
        for model_id, data in rows:
            by_model.setdefault(model_id, []).append(data)
        return [overlays_from_list(model_id, items) for model_id, items in by_model.items()]
