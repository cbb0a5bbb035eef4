"""The backend-mapping repository (routing context)."""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from adapters.sqlalchemy.routing_tables import BackendMappingRecord
from adapters.sqlalchemy.tracking import _flush, _now
from domain.enums import BackendType, PatternType
from domain.errors import DomainError
from domain.routing.model import BackendMapping


_mapping_log = logging.getLogger("mlxm.db")


def _mapping_from_record(record: BackendMappingRecord) -> BackendMapping | None:
    """A stored row as a mapping. Rows are vetted on write; one that fails today's rules (a legacy regex)
    loads disabled with its `problem`, and one naming an unknown backend is skipped: either way one bad
    row never blocks routing or the listing (a skipped row can still be deleted by id)."""
    try:
        values = dict(
            model_pattern=record.model_pattern or "", pattern_type=PatternType((record.pattern_type or "").lower()),
            backend_type=BackendType((record.backend_type or "").lower()), backend_model=record.backend_model,
            fallback_backend=BackendType(record.fallback_backend.lower()) if record.fallback_backend else None,
            priority=record.priority or 0, enabled=bool(record.enabled), id=record.id,
            fallback_model=record.fallback_model,
        )
    except ValueError as exc:
        _mapping_log.warning("skipping backend mapping %s: %s (delete it by id)", record.id, exc)
        return None
    try:
        return BackendMapping(**values)
    except DomainError as exc:
        _mapping_log.warning("backend mapping %s is disabled: %s", record.id, exc)
        return BackendMapping(**values, problem=str(exc))


class SqlAlchemyBackendMappingRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, mapping: BackendMapping) -> BackendMapping:
        record = self._session.get(BackendMappingRecord, mapping.id) if mapping.id is not None else None
        if record is None:
            record = BackendMappingRecord(id=mapping.id, created_at=_now())
            self._session.add(record)
        record.model_pattern = mapping.model_pattern
        record.pattern_type = PatternType(mapping.pattern_type).value
        record.backend_type = BackendType(mapping.backend_type).value
        record.backend_model = mapping.backend_model
        record.fallback_backend = BackendType(mapping.fallback_backend).value if mapping.fallback_backend else None
        record.fallback_model = mapping.fallback_model
        record.priority = mapping.priority
        record.enabled = mapping.enabled
        record.updated_at = _now()
        _flush(self._session)
        return replace(mapping, id=record.id)

    def get(self, mapping_id: int) -> BackendMapping | None:
        record = self._session.get(BackendMappingRecord, mapping_id)
        return _mapping_from_record(record) if record is not None else None

    def find_same(self, mapping: BackendMapping) -> BackendMapping | None:
        # Narrowed by the indexed pattern in SQL, compared field by field as domain values (NULLs, enums).
        records = self._session.scalars(select(BackendMappingRecord).where(
            BackendMappingRecord.model_pattern == mapping.model_pattern).order_by(BackendMappingRecord.id))
        found = (m for m in map(_mapping_from_record, records) if m is not None and m.id != mapping.id)
        return next((m for m in found if m.same_rule(mapping)), None)

    def list(self) -> list[BackendMapping]:
        records = self._session.scalars(select(BackendMappingRecord).order_by(BackendMappingRecord.id))
        return [m for m in map(_mapping_from_record, records) if m is not None]

    def remove(self, mapping_id: int) -> bool:
        result = self._session.execute(delete(BackendMappingRecord).where(BackendMappingRecord.id == mapping_id))
        return bool(result.rowcount)

    def save_changes(self) -> None:
        """Mappings are immutable values: written by `add`."""
