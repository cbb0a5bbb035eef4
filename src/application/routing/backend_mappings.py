"""Backend mappings CRUD. Patterns are vetted on save (domain.routing.model.validate_pattern)."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from application.errors import Conflict, InvalidRequest, NotFound
from application.ports import UnitOfWork
from domain.enums import BackendType, PatternType
from domain.routing.model import BackendMapping, RouteDecision, route


def split_fallback(fallback: BackendType | str | None,
                   model: str | None = None) -> tuple[BackendType | None, str | None]:
    """`local:qwen3-4b` -> (LOCAL, "qwen3-4b"); a model is only meaningful for the local fallback."""
    if not fallback:
        return None, None
    if isinstance(fallback, str) and not isinstance(fallback, BackendType) and ":" in fallback:
        fallback, _, model = fallback.partition(":")
    backend = BackendType(fallback)
    model = (model or "").strip() or None
    if model is not None and backend is not BackendType.LOCAL:
        raise InvalidRequest("a fallback model can only be named for the local backend (local:NAME)")
    return backend, model


def _refuse_duplicate(uow: UnitOfWork, mapping: BackendMapping) -> None:
    same = uow.backend_mappings.find_same(mapping)
    if same is not None:
        raise Conflict(f"backend mapping {same.id} is already exactly this mapping (same pattern, backend, "
                       "fallback, priority and enabled)")


class BackendMappingService:
    def __init__(self, uow: Callable[[], UnitOfWork]) -> None:
        self._uow = uow

    def add(self, model_pattern: str, backend_type: BackendType | str, *, pattern_type: PatternType | str = "exact",
            backend_model: str | None = None, fallback_backend: BackendType | str | None = None,
            priority: int = 0, enabled: bool = True, fallback_model: str | None = None) -> BackendMapping:
        fallback, fallback_model = split_fallback(fallback_backend, fallback_model)
        mapping = BackendMapping(  # validates the pattern: a ReDoS-prone regex never reaches storage
            model_pattern=model_pattern, pattern_type=PatternType(pattern_type), backend_type=BackendType(backend_type),
            backend_model=backend_model or None, fallback_backend=fallback, fallback_model=fallback_model,
            priority=priority, enabled=enabled,
        )
        with self._uow() as uow:
            _refuse_duplicate(uow, mapping)
            mapping = uow.backend_mappings.add(mapping)
            uow.commit()
            return mapping

    def list(self) -> list[BackendMapping]:
        with self._uow() as uow:
            return sorted(uow.backend_mappings.list(), key=lambda m: (-m.priority, m.id or 0))

    def get(self, mapping_id: int) -> BackendMapping:
        for mapping in self.list():
            if mapping.id == mapping_id:
                return mapping
        raise NotFound(f"no backend mapping {mapping_id}")

    def update(self, mapping_id: int, **changes) -> BackendMapping:
        """Change fields of a mapping; the result is validated like a new one."""
        current = self.get(mapping_id)
        if changes.get("backend_type"):
            changes["backend_type"] = BackendType(changes["backend_type"])
        if "fallback_backend" in changes:
            fallback, model = split_fallback(changes["fallback_backend"], changes.pop("fallback_model", None))
            changes["fallback_backend"], changes["fallback_model"] = fallback, model
        if "pattern_type" in changes:
            changes["pattern_type"] = PatternType(changes["pattern_type"])
        # Vetted again from scratch: a row loaded with a `problem` is saved only once it passes.
        updated = replace(current, problem=None, **changes)
        with self._uow() as uow:
            _refuse_duplicate(uow, updated)
            updated = uow.backend_mappings.add(updated)
            uow.commit()
            return updated

    def remove(self, mapping_id: int) -> None:
        """By id, without loading the row: a row that no longer loads can still be deleted."""
        with self._uow() as uow:
            if not uow.backend_mappings.remove(mapping_id):
                raise NotFound(f"no backend mapping {mapping_id}")
            uow.commit()

    def resolve(self, model: str) -> RouteDecision:
        """Where a request for `model` goes (the highest-priority enabled match, else local)."""
        return route(model, self.list())
