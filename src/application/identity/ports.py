"""Ports for users and API keys. Repositories act like collections and never commit."""

from __future__ import annotations

from typing import Protocol

from domain.identity.model import ApiKey, User


class UserRepository(Protocol):
    def add(self, user: User) -> User:
        """Insert, or update when `user.id` is set."""
        ...

    def get(self, user_id: int) -> User | None: ...
    def get_by_email(self, email: str) -> User | None: ...
    def list(self) -> list[User]: ...


class ApiKeyRepository(Protocol):
    def add(self, key: ApiKey) -> ApiKey:
        """Insert, or update when `key.id` is set."""
        ...

    def get(self, key_id: int) -> ApiKey | None: ...
    def get_by_hash(self, key_hash: str) -> ApiKey | None: ...
    def list(self, user_id: int | None = None) -> list[ApiKey]: ...
    def count_active(self) -> int:
        """Keys not revoked (whatever their user's status)."""
        ...
