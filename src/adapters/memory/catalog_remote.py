"""In-memory fakes of the remote-catalog ports (unit tests and contract suites)."""

from __future__ import annotations

import copy
import hashlib
import json

from application.catalog.ports import CachedCatalog, CatalogFetchFailed, SignatureRejected


class InMemoryCatalogFetcher:
    """URL -> bytes, or URL -> exception message (as `CatalogFetchFailed`); counts fetches."""

    def __init__(self, bodies: dict[str, bytes | str] | None = None) -> None:
        self.bodies: dict[str, bytes | str] = dict(bodies or {})
        self.fetched: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        body = self.bodies.get(url)
        if body is None:
            raise CatalogFetchFailed("HTTP 404")
        if isinstance(body, str):
            raise CatalogFetchFailed(body)
        return body


class InMemoryCatalogCache:
    def __init__(self) -> None:
        self.entry: CachedCatalog | None = None
        self.state: dict = {}
        self.writes = 0

    def read(self) -> CachedCatalog | None:
        return self.entry

    def write(self, entry: CachedCatalog) -> None:
        self.entry = entry
        self.writes += 1

    def read_state(self) -> dict:
        return copy.deepcopy(self.state)

    def write_state(self, state: dict) -> None:
        self.state = copy.deepcopy(state)
        self.writes += 1


class FakeSignatures:
    """A keyed-hash stand-in for Ed25519: `sign(data)` makes a signature file `verify` accepts.

    Not cryptography (the 'public' key is the secret): it only has the same observable contract.
    """

    def __init__(self, key: str) -> None:
        self._key = key
        self.key_id = hashlib.sha256(key.encode()).hexdigest()[:16]

    def _digest(self, data: bytes) -> str:
        return hashlib.sha256(self._key.encode() + b"\0" + data).hexdigest()

    def sign(self, data: bytes) -> bytes:
        return json.dumps({"algorithm": "fake", "key_id": self.key_id, "signature": self._digest(data)}).encode()

    def verify(self, data: bytes, signature: bytes) -> None:
        try:
            envelope = json.loads(signature.decode())
            key_id, digest = envelope["key_id"], envelope["signature"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise SignatureRejected("the signature file is not a signature") from None
        if key_id != self.key_id:
            raise SignatureRejected(f"signed with key {key_id}, not with MLX_CATALOG_PUBKEY (key {self.key_id})")
        if digest != self._digest(data):
            raise SignatureRejected("the signature does not verify over these bytes")
