"""Ports for cloud credentials: encryption at rest and their storage."""

from __future__ import annotations

from typing import Protocol

from domain.credentials import CloudCredential
from domain.enums import BackendType


class SecretCipher(Protocol):
    def encrypt(self, plaintext: str) -> str: ...
    def decrypt(self, token: str) -> str:
        """Raises application.errors.SecretUnreadable when the key changed or the token is corrupt."""
        ...


class CredentialRepository(Protocol):
    def add(self, credential: CloudCredential) -> CloudCredential:
        """Insert, or replace the credential of the same backend type."""
        ...

    def get(self, backend_type: BackendType) -> CloudCredential | None: ...
    def list(self) -> list[CloudCredential]: ...
    def remove(self, backend_type: BackendType) -> None: ...
