"""Ports of the catalog context: where the catalog comes from (embedded, or the signed remote catalog:
fetching bytes, checking signatures, signing, the local cache), and the settings that hold the selection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from application.errors import ApplicationError
from domain.catalog.model import Catalog

if TYPE_CHECKING:  # the hub search's value objects live beside its use case
    from datetime import datetime

    from application.catalog.hub_search import HubModel, HubQuery


class CatalogProvider(Protocol):
    """Where the catalog comes from: embedded in the package, or (later) a signed remote file."""

    def load_catalog(self) -> Catalog: ...


class SettingsRepository(Protocol):
    """Key/value settings, including the persisted model selection."""

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str) -> None: ...


class CatalogFetchFailed(ApplicationError):
    """The catalog (or its signature) could not be fetched: timeout, size cap, HTTP error..."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SignatureRejected(ApplicationError):
    """A signature that is missing, malformed, made by another key, or not over these bytes."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class KeyFileRefused(ApplicationError):
    """A key file that must not be used (a private key readable by others, an unreadable format)."""


class CatalogFetcher(Protocol):
    def fetch(self, url: str) -> bytes:
        """The body at `url`, within the adapter's timeout and size cap; else `CatalogFetchFailed`."""
        ...


class SignatureVerifier(Protocol):
    """Checks detached signatures against the one trusted public key (`MLX_CATALOG_PUBKEY`)."""

    @property
    def key_id(self) -> str: ...

    def verify(self, data: bytes, signature: bytes) -> None:
        """Return if `signature` (a signature file's bytes) is the trusted key's over exactly `data`;
        else raise `SignatureRejected`."""
        ...


@dataclass(frozen=True)
class KeyPair:
    private_key_path: str
    public_key_path: str
    public_key: str  # the text to put in MLX_CATALOG_PUBKEY
    key_id: str


class CatalogSigner(Protocol):
    """The publisher's side: make a key pair, sign a catalog file's bytes."""

    def generate(self, private_key_path: str) -> KeyPair:
        """Write a new private key (mode 0600, never over an existing file) and `<path>.pub`."""
        ...

    def public_key_id(self, private_key_path: str) -> str: ...

    def sign(self, private_key_path: str, data: bytes) -> bytes:
        """The signature file's bytes for `data`; `KeyFileRefused` for a key readable by others."""
        ...


@dataclass(frozen=True)
class CachedCatalog:
    data: bytes
    signature: bytes


class CatalogCache(Protocol):
    """The last accepted catalog (with its signature) and what was accepted before, under the home."""

    def read(self) -> CachedCatalog | None: ...

    def write(self, entry: CachedCatalog) -> None:
        """Replace the cached catalog atomically (never a half-written file)."""
        ...

    def read_state(self) -> dict: ...

    def write_state(self, state: dict) -> None: ...


# -- Hugging Face search (issue 16) ---------------------------------------------------------
class HubSearchClient(Protocol):
    def search(self, query: "HubQuery") -> "list[HubModel]":
        """Ask the hub. Raises `HubSearchError` when it cannot answer."""
        ...


class HubSearchCache(Protocol):
    """Search answers by query key, in a store of their own (never the library database)."""

    def get(self, key: str) -> "tuple[list[HubModel], datetime] | None": ...
    def put(self, key: str, models: "list[HubModel]", fetched_at: "datetime") -> None: ...


class HubSearchError(Exception):
    """The hub could not answer (connection, HTTP error, bad reply)."""
