"""Stored backend mappings that fail today's vetting (legacy rows) never block routing or management."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from application.routing.backend_mappings import BackendMappingService
from application.errors import NotFound
from domain.enums import BackendType
from domain.errors import InvalidPattern
from tests.support.database import SqliteUnitOfWorks, migrated_database


@pytest.fixture
def legacy(tmp_path, tmp_path_factory):
    uows = SqliteUnitOfWorks(migrated_database(tmp_path, tmp_path_factory.getbasetemp() / "mappings-template"))
    service = BackendMappingService(uows)
    good = service.add("gpt-", "openai", pattern_type="prefix", priority=1)
    with uows.engine.begin() as connection:  # rows an older version stored, unvetted, in upper case
        for pattern, pattern_type, backend in (("(a+)+$", "REGEX", "ANTHROPIC"), ("x", "EXACT", "HUGGINGFACE")):
            connection.execute(text(
                "INSERT INTO backend_mappings (model_pattern, pattern_type, backend_type, priority, enabled) "
                "VALUES (:p, :t, :b, 9, 1)"), {"p": pattern, "t": pattern_type, "b": backend})
        ids = dict(connection.execute(text("SELECT model_pattern, id FROM backend_mappings")).all())
    yield service, good, ids["(a+)+$"], ids["x"]
    uows.dispose()


def test_a_bad_row_loads_disabled_and_routing_still_works(legacy):
    service, good, redos_id, _ = legacy
    listed = {m.id: m for m in service.list()}
    assert set(listed) == {good.id, redos_id}  # the unknown-backend row is skipped, not fatal
    flagged = listed[redos_id]
    assert flagged.enabled is False and "not allowed" in flagged.problem
    assert flagged.backend_type is BackendType.ANTHROPIC and not flagged.matches("aaaa")
    assert service.get(redos_id).problem == flagged.problem
    assert service.resolve("gpt-4o").backend_type is BackendType.OPENAI
    assert service.resolve("aaaa").backend_type is BackendType.LOCAL


def test_bad_rows_can_be_fixed_or_deleted(legacy):
    service, good, redos_id, unknown_id = legacy
    with pytest.raises(InvalidPattern):
        service.update(redos_id, enabled=True)  # re-enabling needs a pattern that passes today's rules
    fixed = service.update(redos_id, model_pattern="a+", enabled=True)
    assert fixed.enabled and fixed.problem is None
    assert service.resolve("aaaa").mapping_id == redos_id
    service.remove(unknown_id)  # never loadable, still deletable by id
    with pytest.raises(NotFound):
        service.remove(unknown_id)
    service.remove(redos_id)
    assert [m.id for m in service.list()] == [good.id]
