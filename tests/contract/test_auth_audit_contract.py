"""Auth, audit and credential repositories through the unit of work (fake and SQLAlchemy),
and the AuditSink contract (synchronous and background writer)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adapters.memory.repositories import FakeClock
from adapters.threads.audit_writer import ThreadedAuditWriter
from application.audit.service import AuditService, ImmediateAuditSink
from application.identity.service import ApiKeyService, ScryptPasswordHasher, UserService
from domain.audit.model import AuditEntry, AuditQuery, AuditStatus
from domain.identity.model import ApiKey, User
from domain.routing.credentials import CloudCredential
from domain.enums import BackendType

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)


def test_nothing_is_kept_without_commit(uow_factory):
    with uow_factory() as uow:
        user = uow.users.add(User(email="a@example.com", created_at=T0))
        uow.api_keys.add(ApiKey("k", user.id, "f" * 64, "mlxm-ffff", T0))
        uow.audit.add_many([AuditEntry("r", T0, "m", "local", "/e", 1, AuditStatus.SUCCESS)])
        uow.credentials.add(CloudCredential(BackendType.OPENAI, "cipher"))
    with uow_factory() as uow:
        assert uow.users.list() == [] and uow.api_keys.list() == [] and uow.credentials.list() == []
        assert uow.audit.query(AuditQuery()).total == 0


def test_committed_rows_survive_and_a_later_rollback_keeps_them(uow_factory):
    with uow_factory() as uow:
        user = uow.users.add(User(email="a@example.com", created_at=T0))
        uow.api_keys.add(ApiKey("k", user.id, "f" * 64, "mlxm-ffff", T0))
        uow.commit()
        uow.audit.add_many([AuditEntry("r", T0, "m", "local", "/e", 1, AuditStatus.SUCCESS)])
        uow.rollback()
    with uow_factory() as uow:
        assert uow.users.get_by_email("a@example.com").id == user.id
        assert uow.api_keys.get_by_hash("f" * 64).name == "k"
        assert uow.audit.query(AuditQuery()).total == 0


def test_key_lifecycle_on_both_units_of_work(uow_factory):
    clock = FakeClock(T0)
    users = UserService(uow_factory, clock, ScryptPasswordHasher(n=2**8))
    keys = ApiKeyService(uow_factory, clock, users)
    created = keys.create("ci")
    assert keys.authenticate(created.secret).email == "admin@localhost"
    keys.revoke(created.key.id)
    assert keys.count_active() == 0 and keys.list()[0].revoked_at == T0


@pytest.fixture(params=["immediate", "background"])
def sink(request, uow_factory):
    service = AuditService(uow_factory, FakeClock(T0))
    if request.param == "immediate":
        yield ImmediateAuditSink(service), service, lambda: None
        return
    writer = ThreadedAuditWriter(service.write, flush_interval=0.05)
    yield writer, service, writer.flush
    writer.close()


def test_a_recorded_entry_is_stored(sink):
    audit_sink, service, flush = sink
    for i in range(3):
        audit_sink.record(AuditEntry(f"r{i}", T0 + timedelta(seconds=i), "m", "local", "/e", 5, AuditStatus.SUCCESS,
                                     prompt_tokens=i, completion_tokens=2 * i))
    flush()
    page = service.query(AuditQuery())
    assert [e.request_id for e in page.items] == ["r2", "r1", "r0"]
    assert [(e.prompt_tokens, e.completion_tokens) for e in page.items] == [(2, 4), (1, 2), (0, 0)]
