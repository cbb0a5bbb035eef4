"""Ports of the routing context: cloud runtimes, the secret cipher, credentials and backend mappings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from application.inference.ports import ModelRuntime
from domain.routing.credentials import CloudCredential
from domain.enums import ApiType, BackendType
from domain.routing.model import BackendMapping


@dataclass(frozen=True)
class CloudEndpoint:
    api_type: ApiType
    base_url: str
    api_key: str = field(repr=False)  # never in reprs, hence never in logs or tracebacks


class CloudRuntimeFactory(Protocol):
    def __call__(self, endpoint: CloudEndpoint) -> ModelRuntime:
        """A runtime whose `generate` calls the endpoint; errors are BackendError / BackendTimeout."""
        ...


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


class BackendMappingRepository(Protocol):
    def add(self, mapping: BackendMapping) -> BackendMapping:
        """Insert, or replace the mapping with the same id; returns it with its id."""
        ...
    def get(self, mapping_id: int) -> BackendMapping | None: ...
    def find_same(self, mapping: BackendMapping) -> BackendMapping | None:
        """A stored mapping other than `mapping` itself (by id) with the same fields (`same_rule`), if any."""
        ...
    def list(self) -> list[BackendMapping]:
        """Every stored mapping; a row failing today's pattern vetting comes back disabled with its `problem`."""
        ...
    def remove(self, mapping_id: int) -> bool:
        """Delete by id (even a row that cannot be loaded); False when there was none."""
        ...
