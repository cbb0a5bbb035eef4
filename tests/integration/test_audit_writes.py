"""Audit rows on real SQLite: client-sized values fit their columns, and one bad row loses only itself."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from adapters.system.clock import SystemClock
from adapters.sqlalchemy.auth_tables import AuditLogRecord
from adapters.threads.audit_writer import ThreadedAuditWriter
from application.audit.service import AuditService
from domain.audit.model import AuditEntry, AuditQuery, AuditStatus
from tests.support.database import SqliteUnitOfWorks, migrated_database

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


@pytest.fixture
def audit(tmp_path, tmp_path_factory):
    uows = SqliteUnitOfWorks(migrated_database(tmp_path, tmp_path_factory.getbasetemp() / "audit-template"))
    yield AuditService(uows, SystemClock(), retention_days=0)
    uows.dispose()


def _entry(request_id: str, **overrides) -> AuditEntry:
    values = dict(request_id=request_id, timestamp=T0, model="tiny", backend="local", endpoint="/v1/chat/completions",
                  duration_ms=5, status=AuditStatus.SUCCESS)
    return AuditEntry(**{**values, **overrides})


def test_over_long_request_ids_and_model_names_are_clipped_to_their_columns(audit):
    columns = AuditLogRecord.__table__.c
    long_id, long_model = "r" * 128, "m" * 1000  # X-Request-ID allows 128; a model name is any client string
    audit.write([_entry(long_id, model=long_model, endpoint="/" + "e" * 300, error_type="E" * 200)])
    (row,) = audit.query(AuditQuery()).items
    assert row.request_id == long_id[: columns.request_id.type.length]
    assert row.model == long_model[: columns.model.type.length]
    assert len(row.endpoint) == columns.endpoint.type.length and len(row.error_type) == columns.error_type.type.length
    audit.write([_entry("short", model="tiny")])
    assert {r.request_id for r in audit.query(AuditQuery()).items} == {"short", long_id[:64]}


def test_one_unstorable_row_does_not_drop_the_rest_of_its_batch(audit):
    writer = ThreadedAuditWriter(audit.write, batch_size=100, flush_interval=0.05)
    try:
        for index in range(5):
            writer.record(_entry(f"good-{index}"))
        writer.record(_entry("poison", duration_ms=2**70))  # SQLite integers are 64-bit: this row cannot be stored
        for index in range(5, 10):
            writer.record(_entry(f"good-{index}"))
        writer.flush()
    finally:
        writer.close()
    stored = {row.request_id for row in audit.query(AuditQuery(limit=100)).items}
    assert stored == {f"good-{index}" for index in range(10)}
