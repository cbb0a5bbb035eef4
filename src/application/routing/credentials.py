"""Cloud credentials: stored encrypted, listed masked, decrypted only to call the backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from application.errors import BackendNotConfigured, InvalidRequest, NotFound
from application.ports import Clock
from application.routing.ports import CloudEndpoint
from application.ports import UnitOfWork
from application.routing.ports import SecretCipher
from domain.routing.credentials import CloudCredential, api_type_for, header_safe_secret, mask_secret
from domain.enums import BackendType


@dataclass(frozen=True)
class MaskedCredential:
    backend_type: BackendType
    base_url: str
    masked_key: str
    updated_at: object = None


class CredentialService:
    def __init__(self, uow: Callable[[], UnitOfWork], cipher: SecretCipher, clock: Clock) -> None:
        self._uow = uow
        self._cipher = cipher
        self._clock = clock

    def set(self, backend_type: BackendType | str, api_key: str, base_url: str | None = None) -> MaskedCredential:
        """Store (or replace) the key of one cloud backend type, encrypted."""
        if not isinstance(api_key, str) or not api_key.strip():
            raise InvalidRequest("api_key must be a non-empty string")
        api_key = api_key.strip()
        if not header_safe_secret(api_key):
            error = InvalidRequest("api_key: must be printable ASCII without spaces or control characters "
                                   "(it is sent as an HTTP header)")
            error.field = "api_key"  # type: ignore[attr-defined]
            raise error
        now = self._clock.now()
        with self._uow() as uow:
            existing = uow.credentials.get(BackendType(backend_type))
            credential = CloudCredential(
                backend_type=backend_type, encrypted_api_key=self._cipher.encrypt(api_key), base_url=base_url,
                created_at=existing.created_at if existing else now, updated_at=now,
                id=existing.id if existing else None,
            )
            uow.credentials.add(credential)
            uow.commit()
        return self._masked(credential, api_key)

    def list(self) -> list[MaskedCredential]:
        with self._uow() as uow:
            credentials = uow.credentials.list()
        return [self._masked(c, self._cipher.decrypt(c.encrypted_api_key)) for c in credentials]

    def remove(self, backend_type: BackendType | str) -> None:
        with self._uow() as uow:
            if uow.credentials.get(BackendType(backend_type)) is None:
                raise NotFound(f"no credential for {BackendType(backend_type).value}")
            uow.credentials.remove(BackendType(backend_type))
            uow.commit()

    def endpoint_for(self, backend_type: BackendType) -> CloudEndpoint:
        """The decrypted endpoint a cloud runtime calls. Never return this to a client."""
        with self._uow() as uow:
            credential = uow.credentials.get(BackendType(backend_type))
        if credential is None:
            # A backend failure, not a missing resource of the caller's: the route's fallback may answer.
            raise BackendNotConfigured(
                f"no credential for backend {BackendType(backend_type).value}: "
                f"run 'mlxm credentials set {BackendType(backend_type).value}'",
                backend=BackendType(backend_type).value,
            )
        api_key = self._cipher.decrypt(credential.encrypted_api_key)
        if not header_safe_secret(api_key):  # stored before `set` checked it: no request can carry it
            raise BackendNotConfigured(
                f"the stored key of backend {credential.backend_type.value} cannot be sent in an HTTP header; "
                f"set it again with 'mlxm credentials set {credential.backend_type.value}'",
                backend=credential.backend_type.value,
            )
        return CloudEndpoint(
            api_type=api_type_for(credential.backend_type),
            base_url=credential.effective_base_url,
            api_key=api_key,
        )

    @staticmethod
    def _masked(credential: CloudCredential, api_key: str) -> MaskedCredential:
        return MaskedCredential(credential.backend_type, credential.effective_base_url, mask_secret(api_key),
                                credential.updated_at)
