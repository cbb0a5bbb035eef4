"""The publisher's use cases: make a key, sign a catalog, verify a catalog as a client would."""

from __future__ import annotations

from typing import Callable

from application.catalog.ports import CatalogProvider
from application.catalog.ports import CatalogSigner, KeyPair, SignatureRejected, SignatureVerifier
from application.ports import Clock
from domain.catalog.signed import (
    CatalogRefused,
    SignedCatalog,
    check_acceptance,
    identities,
    parse_signed_catalog,
)


class CatalogPublisher:
    def __init__(self, signer: CatalogSigner, verifier_for: Callable[[str], SignatureVerifier], clock: Clock,
                 embedded: CatalogProvider | None = None) -> None:
        self._signer = signer
        self._embedded = embedded
        self._verifier_for = verifier_for
        self._clock = clock

    def keygen(self, private_key_path: str) -> KeyPair:
        return self._signer.generate(private_key_path)

    def sign(self, data: bytes, private_key_path: str) -> tuple[bytes, SignedCatalog]:
        """The signature file for `data`, after checking clients would accept the catalog itself."""
        key_id = self._signer.public_key_id(private_key_path)
        signed = parse_signed_catalog(data)
        self._acceptable(signed, key_id, "the signing key")
        return self._signer.sign(private_key_path, data), signed

    def verify(self, data: bytes, signature: bytes, public_key: str) -> SignedCatalog:
        """What a client checks, except rollback (that needs the client's history); IDs are checked
        against the embedded catalog's."""
        verifier = self._verifier_for(public_key)
        try:
            verifier.verify(data, signature)
        except SignatureRejected as exc:
            raise CatalogRefused(exc.reason) from None
        signed = parse_signed_catalog(data)
        self._acceptable(signed, verifier.key_id, "the public key")
        return signed

    def _acceptable(self, signed: SignedCatalog, key_id: str, key_name: str) -> None:
        check_acceptance(signed, now=self._clock.now(), key_id=key_id, accepted_sequence=None,
                         accepted_data=None, pins=identities(self._embedded.load_catalog()) if self._embedded else {},
                         key_name=key_name)
