"""SQLAlchemy repositories of users, API keys, the audit log and cloud credentials.

They write through on `add` (no change tracking): the unit of work's commit makes it durable.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Iterable

from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session

from adapters.sqlalchemy.auth_tables import ApiKeyRecord, AuditLogRecord, CloudCredentialRecord, UserRecord
from application.ports import Page
from domain.audit.model import AuditEntry, AuditQuery, AuditStatus, ModelUsage
from domain.identity.model import ApiKey, User
from domain.routing.credentials import CloudCredential, api_type_for
from domain.enums import BackendType, UserStatus


class _WriteThrough:
    def save_changes(self) -> None:
        """Everything is written by `add`; nothing to flush at commit."""


# ------------------------------------------------------------------ users


def _user(record: UserRecord) -> User:
    return User(
        email=record.email, password_hash=record.hashed_password or None, is_admin=bool(record.is_admin),
        status=UserStatus.parse(record.status), created_at=record.created_at, approved_at=record.approved_at,
        approved_by=record.approved_by, id=record.id,
    )


class SqlAlchemyUserRepository(_WriteThrough):
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, user: User) -> User:
        record = self._session.get(UserRecord, user.id) if user.id is not None else None
        if record is None:
            record = UserRecord()
            self._session.add(record)
        record.email = user.email
        record.hashed_password = user.password_hash or ""  # the column is NOT NULL; "" means no password
        record.is_admin = user.is_admin
        record.status = user.status.value
        if user.created_at is not None:
            record.created_at = user.created_at
        record.approved_at = user.approved_at
        record.approved_by = user.approved_by
        self._session.flush()
        user.id = record.id
        return user

    def get(self, user_id: int) -> User | None:
        record = self._session.get(UserRecord, user_id)
        return _user(record) if record is not None else None

    def get_by_email(self, email: str) -> User | None:
        record = self._session.scalar(select(UserRecord).where(UserRecord.email == email.lower()))
        return _user(record) if record is not None else None

    def list(self) -> list[User]:
        return [_user(r) for r in self._session.scalars(select(UserRecord).order_by(UserRecord.id))]


# ------------------------------------------------------------------ API keys


def _key(record: ApiKeyRecord) -> ApiKey:
    return ApiKey(name=record.name, user_id=record.user_id, key_hash=record.key_hash, prefix=record.prefix,
                  created_at=record.created_at, revoked_at=record.revoked_at, last_used_at=record.last_used_at,
                  id=record.id, trusted=bool(record.trusted))


class SqlAlchemyApiKeyRepository(_WriteThrough):
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, key: ApiKey) -> ApiKey:
        record = self._session.get(ApiKeyRecord, key.id) if key.id is not None else None
        if record is None:
            record = ApiKeyRecord()
            self._session.add(record)
        record.name, record.user_id, record.key_hash, record.prefix = key.name, key.user_id, key.key_hash, key.prefix
        record.created_at, record.revoked_at, record.last_used_at = key.created_at, key.revoked_at, key.last_used_at
        record.trusted = key.trusted
        self._session.flush()
        return replace(key, id=record.id)

    def get(self, key_id: int) -> ApiKey | None:
        record = self._session.get(ApiKeyRecord, key_id)
        return _key(record) if record is not None else None

    def get_by_hash(self, key_hash: str) -> ApiKey | None:
        record = self._session.scalar(select(ApiKeyRecord).where(ApiKeyRecord.key_hash == key_hash))
        return _key(record) if record is not None else None

    def list(self, user_id: int | None = None) -> list[ApiKey]:
        statement = select(ApiKeyRecord).order_by(ApiKeyRecord.id)
        if user_id is not None:
            statement = statement.where(ApiKeyRecord.user_id == user_id)
        return [_key(r) for r in self._session.scalars(statement)]

    def count_active(self) -> int:
        return self._session.scalar(
            select(func.count()).select_from(ApiKeyRecord).where(ApiKeyRecord.revoked_at.is_(None))
        ) or 0


# ------------------------------------------------------------------ audit log


def _entry(record: AuditLogRecord) -> AuditEntry:
    return AuditEntry(
        request_id=record.request_id, timestamp=record.timestamp, model=record.model, backend=record.backend_type,
        endpoint=record.endpoint, duration_ms=record.duration_ms, status=AuditStatus(record.status),
        prompt_tokens=record.prompt_tokens or 0, completion_tokens=record.completion_tokens or 0,
        error_type=record.error_type, id=record.id, host=record.host,
    )


def _audit_filters(query: AuditQuery) -> list:
    conditions = []
    if query.model is not None:
        conditions.append(AuditLogRecord.model == query.model)
    if query.status is not None:
        conditions.append(AuditLogRecord.status == query.status.value)
    if query.since is not None:
        conditions.append(AuditLogRecord.timestamp >= query.since)
    if query.until is not None:
        conditions.append(AuditLogRecord.timestamp <= query.until)
    if query.host is not None:
        conditions.append(AuditLogRecord.host == query.host)
    return conditions


def _clip(value: str | None, column: str) -> str | None:
    """Fit a client-influenced value (an X-Request-ID, a model name) into its column: a database that
    enforces VARCHAR widths would otherwise reject the whole batch of audit rows."""
    length = AuditLogRecord.__table__.c[column].type.length
    return value[:length] if value is not None and length and len(value) > length else value


class SqlAlchemyAuditRepository(_WriteThrough):
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_many(self, entries: Iterable[AuditEntry]) -> None:
        # Never the prompt or completion text: the record has no column for it, and error_message stays empty.
        self._session.add_all(
            AuditLogRecord(
                request_id=_clip(e.request_id, "request_id"), timestamp=e.timestamp, model=_clip(e.model, "model"),
                backend_type=_clip(e.backend, "backend_type"), endpoint=_clip(e.endpoint, "endpoint"),
                duration_ms=e.duration_ms, status=e.status.value,
                prompt_tokens=e.prompt_tokens, completion_tokens=e.completion_tokens,
                total_tokens=e.prompt_tokens + e.completion_tokens, error_type=_clip(e.error_type, "error_type"),
                host=_clip(e.host, "host"),
            )
            for e in entries
        )
        self._session.flush()

    def query(self, query: AuditQuery) -> Page:
        conditions = _audit_filters(query)
        total = self._session.scalar(select(func.count()).select_from(AuditLogRecord).where(*conditions)) or 0
        records = self._session.scalars(
            select(AuditLogRecord).where(*conditions)
            .order_by(AuditLogRecord.timestamp.desc(), AuditLogRecord.id.desc())
            .limit(query.limit).offset(query.offset)
        )
        return Page(items=[_entry(r) for r in records], total=total)

    def summary(self, since: datetime | None = None, until: datetime | None = None) -> list[ModelUsage]:
        conditions = _audit_filters(AuditQuery(since=since, until=until))
        rows = self._session.execute(
            select(
                AuditLogRecord.model,
                func.count(),
                func.sum(case((AuditLogRecord.status == AuditStatus.ERROR.value, 1), else_=0)),
                func.coalesce(func.sum(AuditLogRecord.prompt_tokens), 0),
                func.coalesce(func.sum(AuditLogRecord.completion_tokens), 0),
            ).where(*conditions).group_by(AuditLogRecord.model).order_by(AuditLogRecord.model)
        )
        return [ModelUsage(model, int(n), int(errors or 0), int(p), int(c)) for model, n, errors, p, c in rows]

    def delete_before(self, cutoff: datetime) -> int:
        result = self._session.execute(delete(AuditLogRecord).where(AuditLogRecord.timestamp < cutoff))
        return result.rowcount or 0


# ------------------------------------------------------------------ cloud credentials


def _credential(record: CloudCredentialRecord) -> CloudCredential:
    return CloudCredential(backend_type=BackendType(record.backend_type), encrypted_api_key=record.encrypted_api_key,
                           base_url=record.base_url, created_at=record.created_at, updated_at=record.updated_at,
                           id=record.id)


class SqlAlchemyCredentialRepository(_WriteThrough):
    def __init__(self, session: Session) -> None:
        self._session = session

    def _record(self, backend_type: BackendType) -> CloudCredentialRecord | None:
        return self._session.scalar(
            select(CloudCredentialRecord).where(CloudCredentialRecord.backend_type == BackendType(backend_type).value)
            .order_by(CloudCredentialRecord.id).limit(1)
        )

    def add(self, credential: CloudCredential) -> CloudCredential:
        record = self._record(credential.backend_type)
        if record is None:
            record = CloudCredentialRecord(name=credential.backend_type.value)
            self._session.add(record)
        record.backend_type = credential.backend_type.value
        record.api_type = api_type_for(credential.backend_type).value
        record.encrypted_api_key = credential.encrypted_api_key
        record.base_url = credential.base_url
        record.created_at = credential.created_at or record.created_at
        record.updated_at = credential.updated_at or record.updated_at
        self._session.flush()
        credential.id = record.id
        return credential

    def get(self, backend_type: BackendType) -> CloudCredential | None:
        record = self._record(backend_type)
        return _credential(record) if record is not None else None

    def list(self) -> list[CloudCredential]:
        records = self._session.scalars(select(CloudCredentialRecord).order_by(CloudCredentialRecord.backend_type))
        return [_credential(r) for r in records]

    def remove(self, backend_type: BackendType) -> None:
        self._session.execute(
            delete(CloudCredentialRecord).where(CloudCredentialRecord.backend_type == BackendType(backend_type).value)
        )
