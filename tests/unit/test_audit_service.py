"""Audit rows: filters, pagination, summary, retention, and the background writer."""

from datetime import timedelta

import pytest

from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from adapters.threads.audit_writer import ThreadedAuditWriter
from application.audit.service import AuditService
from domain.audit.model import AuditEntry, AuditQuery, AuditStatus
from domain.errors import InvalidParameter


def entry(clock, i, model="m1", status=AuditStatus.SUCCESS, **kw):
    return AuditEntry(request_id=f"r{i}", timestamp=clock.now(), model=model, backend="local",
                      endpoint="/v1/chat/completions", duration_ms=10 * i, status=status,
                      prompt_tokens=kw.get("p", 3), completion_tokens=kw.get("c", 5),
                      error_type="BackendError" if status is AuditStatus.ERROR else None)


@pytest.fixture
def audit():
    uow, clock = InMemoryUnitOfWork(), FakeClock()
    return uow, clock, AuditService(lambda: uow, clock, retention_days=7)


def test_query_filters_before_paging_newest_first(audit):
    _, clock, service = audit
    rows = []
    for i in range(10):
        clock.advance(60)
        rows.append(entry(clock, i, model="m1" if i % 2 else "m2",
                          status=AuditStatus.ERROR if i in (3, 7) else AuditStatus.SUCCESS))
    service.write(rows)
    page = service.query(AuditQuery(model="m1", limit=2))
    assert page.total == 5 and [e.request_id for e in page.items] == ["r9", "r7"]
    second = service.query(AuditQuery(model="m1", limit=2, offset=2))
    assert [e.request_id for e in second.items] == ["r5", "r3"]
    errors = service.query(AuditQuery(status="error"))
    assert {e.request_id for e in errors.items} == {"r3", "r7"}
    window = service.query(AuditQuery(since=rows[2].timestamp, until=rows[4].timestamp))
    assert {e.request_id for e in window.items} == {"r2", "r3", "r4"}
    with pytest.raises(InvalidParameter):
        AuditQuery(limit=0)


def test_summary_counts_requests_errors_and_tokens_per_model(audit):
    _, clock, service = audit
    service.write([entry(clock, 1, p=2, c=4), entry(clock, 2, status=AuditStatus.ERROR, p=1, c=0),
                   entry(clock, 3, model="m2", p=7, c=9)])
    summary = {u.model: u for u in service.summary()}
    assert summary["m1"].requests == 2 and summary["m1"].errors == 1 and summary["m1"].error_rate == 0.5
    assert (summary["m1"].prompt_tokens, summary["m1"].completion_tokens) == (3, 4)
    assert (summary["m2"].requests, summary["m2"].error_rate, summary["m2"].completion_tokens) == (1, 0.0, 9)


def test_retention_cleanup_removes_only_old_rows(audit):
    _, clock, service = audit
    service.write([entry(clock, 1)])
    clock.advance(timedelta(days=8).total_seconds())
    service.write([entry(clock, 2)])
    assert service.cleanup() == 1
    assert [e.request_id for e in service.query(AuditQuery()).items] == ["r2"]
    service.retention_days = 0  # 0 keeps everything
    clock.advance(timedelta(days=100).total_seconds())
    assert service.cleanup() == 0 and service.query(AuditQuery()).total == 1


def test_background_writer_batches_rows_and_runs_cleanup(audit):
    _, clock, service = audit
    batches = []
    cleanups = []

    def write(batch):
        batches.append(len(batch))
        service.write(batch)

    writer = ThreadedAuditWriter(write, cleanup=lambda: cleanups.append(1) or 0, flush_interval=0.05)
    for i in range(25):
        writer.record(entry(clock, i))
    writer.flush()
    assert service.query(AuditQuery(limit=100)).total == 25
    assert sum(batches) == 25 and len(batches) < 25  # batched, not one transaction per row
    assert cleanups  # the periodic cleanup ran once on start
    writer.record(entry(clock, 99))
    writer.close()
    assert service.query(AuditQuery(limit=100)).total == 26


def test_background_writer_survives_a_failing_store(audit):
    _, clock, service = audit
    calls = []

    def flaky(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("database locked")
        service.write(batch)

    writer = ThreadedAuditWriter(flaky, flush_interval=0.05)
    writer.record(entry(clock, 1))
    writer.flush()
    writer.record(entry(clock, 2))
    writer.flush()
    writer.close()
    assert [e.request_id for e in service.query(AuditQuery()).items] == ["r2"]
