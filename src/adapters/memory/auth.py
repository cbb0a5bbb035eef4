"""In-memory fakes of the auth, audit and credential repositories (for unit tests and the default UoW)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime
from typing import Iterable

from application.ports import Page
from domain.audit.model import AuditEntry, AuditQuery, ModelUsage, summarise
from domain.identity.model import ApiKey, User
from domain.routing.credentials import CloudCredential
from domain.enums import BackendType


class InMemoryUserRepository:
    def __init__(self) -> None:
        self._items: dict[int, User] = {}
        self._ids = itertools.count(1)

    def add(self, user: User) -> User:
        if user.id is None:
            user.id = next(self._ids)
        self._items[user.id] = user
        return user

    def get(self, user_id: int) -> User | None:
        return self._items.get(user_id)

    def get_by_email(self, email: str) -> User | None:
        return next((u for u in self._items.values() if u.email == email.lower()), None)

    def list(self) -> list[User]:
        return sorted(self._items.values(), key=lambda u: u.id or 0)


class InMemoryApiKeyRepository:
    def __init__(self) -> None:
        self._items: dict[int, ApiKey] = {}
        self._ids = itertools.count(1)

    def add(self, key: ApiKey) -> ApiKey:
        if key.id is None:
            key = replace(key, id=next(self._ids))
        self._items[key.id] = key  # type: ignore[index]
        return key

    def get(self, key_id: int) -> ApiKey | None:
        return self._items.get(key_id)

    def get_by_hash(self, key_hash: str) -> ApiKey | None:
        return next((k for k in self._items.values() if k.key_hash == key_hash), None)

    def list(self, user_id: int | None = None) -> list[ApiKey]:
        return [k for k in sorted(self._items.values(), key=lambda k: k.id or 0)
                if user_id is None or k.user_id == user_id]

    def count_active(self) -> int:
        return sum(1 for k in self._items.values() if k.is_active)


class InMemoryAuditRepository:
    def __init__(self) -> None:
        self._items: list[AuditEntry] = []
        self._ids = itertools.count(1)

    def add_many(self, entries: Iterable[AuditEntry]) -> None:
        self._items.extend(replace(e, id=next(self._ids)) for e in entries)

    def query(self, query: AuditQuery) -> Page:
        hits = sorted((e for e in self._items if query.matches(e)), key=lambda e: (e.timestamp, e.id), reverse=True)
        return Page(items=hits[query.offset : query.offset + query.limit], total=len(hits))

    def summary(self, since: datetime | None = None, until: datetime | None = None) -> list[ModelUsage]:
        window = AuditQuery(since=since, until=until)
        return summarise(e for e in self._items if window.matches(e))

    def delete_before(self, cutoff: datetime) -> int:
        before = len(self._items)
        self._items = [e for e in self._items if e.timestamp >= cutoff]
        return before - len(self._items)


class InMemoryCredentialRepository:
    def __init__(self) -> None:
        self._items: dict[BackendType, CloudCredential] = {}
        self._ids = itertools.count(1)

    def add(self, credential: CloudCredential) -> CloudCredential:
        existing = self._items.get(credential.backend_type)
        if credential.id is None:
            credential.id = existing.id if existing else next(self._ids)
        self._items[credential.backend_type] = credential
        return credential

    def get(self, backend_type: BackendType) -> CloudCredential | None:
        return self._items.get(BackendType(backend_type))

    def list(self) -> list[CloudCredential]:
        return sorted(self._items.values(), key=lambda c: c.backend_type.value)

    def remove(self, backend_type: BackendType) -> None:
        self._items.pop(BackendType(backend_type), None)
