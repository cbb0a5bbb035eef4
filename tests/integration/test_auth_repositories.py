"""One contract suite for the users / API keys / audit / credentials repositories: fake, SQLite and PostgreSQL."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from adapters.memory.auth import (
    InMemoryApiKeyRepository, InMemoryAuditRepository, InMemoryCredentialRepository, InMemoryUserRepository,
)
from domain.audit.model import AuditEntry, AuditQuery, AuditStatus
from domain.identity.model import ApiKey, User
from domain.routing.credentials import CloudCredential
from domain.enums import BackendType, UserStatus

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


@pytest.fixture(params=["memory", "sqlalchemy", "postgresql"])
def repos(request, tmp_path):
    if request.param == "memory":
        yield SimpleNamespace(users=InMemoryUserRepository(), api_keys=InMemoryApiKeyRepository(),
                              audit=InMemoryAuditRepository(), credentials=InMemoryCredentialRepository())
        return
    from adapters.sqlalchemy.auth_repositories import (
        SqlAlchemyApiKeyRepository, SqlAlchemyAuditRepository, SqlAlchemyCredentialRepository,
        SqlAlchemyUserRepository,
    )
    from adapters.sqlalchemy.engine import make_engine, make_session_factory
    from adapters.sqlalchemy.migrate import upgrade_database

    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_templates").empty_database()
    else:
        url = f"sqlite:///{tmp_path / 'mlxm.db'}"
    upgrade_database(url)  # the real migrations, not metadata.create_all
    engine = make_engine(url)
    session = make_session_factory(engine)()
    yield SimpleNamespace(users=SqlAlchemyUserRepository(session), api_keys=SqlAlchemyApiKeyRepository(session),
                          audit=SqlAlchemyAuditRepository(session), credentials=SqlAlchemyCredentialRepository(session))
    session.close()
    engine.dispose()


def test_users_round_trip_and_update(repos):
    admin = repos.users.add(User(email="Root@Example.com", password_hash="scrypt$x", is_admin=True,
                                 status=UserStatus.APPROVED, created_at=T0))
    local = repos.users.add(User(email="admin@localhost", password_hash=None, status="approved", created_at=T0))
    assert admin.id is not None and local.id != admin.id
    got = repos.users.get_by_email("root@example.com")
    assert (got.email, got.is_admin, got.status, got.created_at) == ("root@example.com", True, UserStatus.APPROVED, T0)
    assert repos.users.get(local.id).password_hash is None
    got.status = UserStatus.DISABLED
    repos.users.add(got)
    assert repos.users.get(admin.id).status is UserStatus.DISABLED
    assert [u.email for u in repos.users.list()] == ["root@example.com", "admin@localhost"]
    assert repos.users.get(999) is None and repos.users.get_by_email("nobody@x.y") is None


def test_api_keys_by_hash_user_and_revocation(repos):
    alice = repos.users.add(User(email="alice@example.com", created_at=T0))
    bob = repos.users.add(User(email="bob@example.com", created_at=T0))
    a = repos.api_keys.add(ApiKey("a", alice.id, "h" * 64, "mlxm-aaaa", T0))
    repos.api_keys.add(ApiKey("b", bob.id, "g" * 64, "mlxm-bbbb", T0))
    assert repos.api_keys.get_by_hash("h" * 64).id == a.id and repos.api_keys.get_by_hash("x") is None
    assert [k.name for k in repos.api_keys.list(alice.id)] == ["a"] and len(repos.api_keys.list()) == 2
    assert repos.api_keys.count_active() == 2
    from dataclasses import replace

    repos.api_keys.add(replace(a, revoked_at=T0 + timedelta(hours=1)))
    assert repos.api_keys.get(a.id).revoked_at == T0 + timedelta(hours=1)
    assert repos.api_keys.count_active() == 1


def _entry(i, model, status=AuditStatus.SUCCESS, minutes=0):
    return AuditEntry(f"req-{i}", T0 + timedelta(minutes=minutes), model, "local", "/v1/chat/completions", 12, status,
                      prompt_tokens=i, completion_tokens=2 * i,
                      error_type="BackendError" if status is AuditStatus.ERROR else None)


def test_audit_query_summary_and_retention(repos):
    repos.audit.add_many([_entry(i, "m1" if i < 6 else "m2", AuditStatus.ERROR if i in (2, 7) else AuditStatus.SUCCESS,
                                 minutes=i) for i in range(1, 9)])
    page = repos.audit.query(AuditQuery(model="m1", limit=2, offset=1))
    assert page.total == 5 and [e.request_id for e in page.items] == ["req-4", "req-3"]
    errors = repos.audit.query(AuditQuery(status="error"))
    assert sorted(e.request_id for e in errors.items) == ["req-2", "req-7"] and errors.items[0].error_type
    window = repos.audit.query(AuditQuery(since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=5)))
    assert {e.request_id for e in window.items} == {"req-3", "req-4", "req-5"}
    summary = {u.model: u for u in repos.audit.summary()}
    assert (summary["m1"].requests, summary["m1"].errors, summary["m1"].prompt_tokens) == (5, 1, 15)
    assert (summary["m2"].requests, summary["m2"].completion_tokens) == (3, 42)
    since = {u.model: u.requests for u in repos.audit.summary(since=T0 + timedelta(minutes=6))}
    assert since == {"m2": 3}
    assert repos.audit.delete_before(T0 + timedelta(minutes=4)) == 3
    assert repos.audit.query(AuditQuery()).total == 5
    assert repos.audit.query(AuditQuery()).items[0].timestamp == T0 + timedelta(minutes=8)


def test_audit_rows_keep_their_host_and_filter_by_it(repos):
    from dataclasses import replace

    repos.audit.add_many([replace(_entry(i, "m1", minutes=i), host="mac-a" if i % 2 else "mac-b") for i in range(1, 7)]
                         + [_entry(9, "m1", minutes=9)])  # a row from before hosts were recorded
    on_a = repos.audit.query(AuditQuery(host="mac-a"))
    assert on_a.total == 3 and {e.host for e in on_a.items} == {"mac-a"}
    assert [e.request_id for e in repos.audit.query(AuditQuery(host="mac-b", limit=1)).items] == ["req-6"]
    assert repos.audit.query(AuditQuery()).total == 7
    assert repos.audit.query(AuditQuery()).items[0].host is None
    assert repos.audit.query(AuditQuery(host="mac-z")).total == 0


def test_the_audit_service_stamps_its_host_on_entries(tmp_path):
    from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
    from application.audit.service import AuditService

    uow = InMemoryUnitOfWork()
    AuditService(lambda: uow, FakeClock(T0), host="mac-a").write([_entry(1, "m1")])
    assert [e.host for e in uow.audit.query(AuditQuery()).items] == ["mac-a"]


def test_credentials_one_per_backend_type(repos):
    repos.credentials.add(CloudCredential(BackendType.OPENAI, "cipher-1", created_at=T0, updated_at=T0))
    repos.credentials.add(CloudCredential(BackendType.ANTHROPIC_COMPATIBLE, "cipher-2", "http://127.0.0.1:9/",
                                          created_at=T0, updated_at=T0))
    repos.credentials.add(CloudCredential(BackendType.OPENAI, "cipher-3", created_at=T0, updated_at=T0))
    got = repos.credentials.get(BackendType.OPENAI)
    assert got.encrypted_api_key == "cipher-3" and got.effective_base_url == "https://api.openai.com/v1"
    assert [c.backend_type for c in repos.credentials.list()] == [BackendType.ANTHROPIC_COMPATIBLE, BackendType.OPENAI]
    assert repos.credentials.get(BackendType.ANTHROPIC_COMPATIBLE).base_url == "http://127.0.0.1:9"
    repos.credentials.remove(BackendType.OPENAI)
    assert repos.credentials.get(BackendType.OPENAI) is None


def test_single_alembic_head_and_api_keys_migration_round_trip(tmp_path):
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, inspect

    from adapters.sqlalchemy.migrate import alembic_config, upgrade_database

    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade_database(url)
    engine = create_engine(url)
    assert {"api_keys", "users", "audit_logs", "cloud_credentials"} <= set(inspect(engine).get_table_names())
    from alembic import command

    command.downgrade(alembic_config(url=url), "0002_redesign")
    assert "api_keys" not in inspect(engine).get_table_names()
    assert "users" in inspect(engine).get_table_names()
    engine.dispose()


def test_services_on_the_sqlalchemy_unit_of_work(tmp_path):
    """The use cases end to end on SqlAlchemyUnitOfWork: commits persist, uncommitted work does not."""
    from adapters.system.clock import SystemClock
    from adapters.fernet.secrets import FernetSecretCipher
    from adapters.sqlalchemy.engine import make_engine, make_session_factory
    from adapters.sqlalchemy.migrate import upgrade_database
    from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
    from application.audit.service import AuditService
    from application.identity.service import ApiKeyService, ScryptPasswordHasher, UserService
    from application.routing.credentials import CredentialService

    url = f"sqlite:///{tmp_path / 'mlxm.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    uow = lambda: SqlAlchemyUnitOfWork(sessions)  # noqa: E731
    clock = SystemClock()
    users = UserService(uow, clock, ScryptPasswordHasher(n=2**8))
    keys = ApiKeyService(uow, clock, users)
    created = keys.create("ci")
    assert keys.authenticate(created.secret).is_admin and keys.count_active() == 1
    keys.revoke("ci")
    assert keys.count_active() == 0
    credentials = CredentialService(uow, FernetSecretCipher(home=tmp_path), clock)
    credentials.set("anthropic", "sk-ant-secret-99998888")
    assert credentials.list()[0].masked_key == "sk-...8888"
    with engine.connect() as connection:
        from sqlalchemy import text

        stored = connection.execute(text("SELECT encrypted_api_key FROM cloud_credentials")).scalar_one()
        assert "sk-ant-secret" not in stored
    audit = AuditService(uow, clock, retention_days=1)
    audit.write([_entry(1, "m1", minutes=0)])  # T0 is long past: the cleanup removes it
    assert audit.query(AuditQuery()).total == 1 and audit.cleanup() == 1
    with uow() as work:
        work.users.add(User(email="ghost@example.com"))  # never committed
    assert users.list()[-1].email == "admin@localhost"
    engine.dispose()
