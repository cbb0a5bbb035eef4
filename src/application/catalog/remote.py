"""The signed remote catalog in use: fresh verified remote > cached last verified > embedded.

`RemoteCatalogService` is a `CatalogProvider`. It starts from the cached catalog (its signature
re-verified on load) or the embedded one, and `refresh()` replaces it only with a fetched catalog
whose signature, expiry, sequence and canonical IDs are all accepted. A refusal keeps the catalog
in use and writes nothing.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from application.catalog.ports import CatalogProvider
from application.catalog.ports import (
    CachedCatalog,
    CatalogCache,
    CatalogFetcher,
    CatalogFetchFailed,
    SignatureRejected,
    SignatureVerifier,
)
from application.ports import Clock
from domain.catalog.model import Catalog
from domain.catalog.signed import (
    CatalogRefused,
    ModelIdentity,
    SignedCatalog,
    check_acceptance,
    merge_pins,
    parse_signed_catalog,
)

log = logging.getLogger("mlxm.catalog")

SIGNATURE_SUFFIX = ".sig"


@dataclass(frozen=True)
class CatalogStatus:
    source: str  # "remote" (fetched by this process), "cache" (last verified, re-verified), "embedded"
    url: str | None = None
    key_id: str | None = None
    sequence: int | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    fetched_at: datetime | None = None
    models: int = 0
    problem: str | None = None  # why the remote/cached catalog is not the one in use

    def to_dict(self, now: datetime) -> dict:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"source": self.source, "url": self.url, "key_id": self.key_id, "sequence": self.sequence,
                "issued_at": iso(self.issued_at), "expires_at": iso(self.expires_at),
                "fetched_at": iso(self.fetched_at),
                "age_seconds": round((now - self.fetched_at).total_seconds()) if self.fetched_at else None,
                "models": self.models, "problem": self.problem}


@dataclass(frozen=True)
class RefreshResult:
    sequence: int
    previous_sequence: int | None
    changed: bool
    models: int


@dataclass(frozen=True)
class _InUse:
    catalog: Catalog
    source: str
    signed: SignedCatalog | None = None
    fetched_at: datetime | None = None


class RemoteCatalogService:
    def __init__(
        self,
        *,
        embedded: CatalogProvider,
        fetcher: CatalogFetcher,
        verifier: SignatureVerifier | None,
        cache: CatalogCache,
        clock: Clock,
        url: str,
        refresh_seconds: float = 3600.0,
        fetch_when_stale: bool = True,
        config_error: str | None = None,
    ) -> None:
        self._embedded = embedded
        self._fetcher = fetcher
        self._verifier = verifier
        self._cache = cache
        self._clock = clock
        self.url = url
        self.refresh_seconds = refresh_seconds
        # The CLI fetches on first use when the cache is missing or stale; the server never does
        # on a request (it refreshes in the background), so a slow catalog server cannot block it.
        self.fetch_when_stale = fetch_when_stale
        self._config_error = config_error or (None if verifier is not None else "MLX_CATALOG_PUBKEY is not set")
        self._in_use: _InUse | None = None
        self._problem: str | None = None
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()

    # -- CatalogProvider ----------------------------------------------------------------
    def load_catalog(self) -> Catalog:
        return self._current().catalog

    def _current(self) -> _InUse:
        in_use = self._in_use
        if in_use is not None:
            return in_use
        with self._lock:
            if self._in_use is None:
                self._in_use = self._from_cache()
        if self.fetch_when_stale and self._is_stale(self._in_use):
            try:
                self.refresh()
            except CatalogRefused as exc:
                log.warning("remote catalog refused (%s); keeping the %s catalog", exc.reason, self._in_use.source)
        return self._in_use

    def _is_stale(self, in_use: _InUse) -> bool:
        if self._verifier is None:
            return False
        if in_use.fetched_at is None:
            return True
        return (self._clock.now() - in_use.fetched_at).total_seconds() >= self.refresh_seconds

    def _from_cache(self) -> _InUse:
        """The cached catalog, re-verified like a fresh one; the embedded catalog otherwise."""
        embedded = _InUse(self._embedded.load_catalog(), "embedded")
        if self._verifier is None:
            self._problem = self._config_error
            return embedded
        cached = self._cache.read()
        if cached is None:
            return embedded
        state = self._cache.read_state()
        try:
            signed = self._verified(cached.data, cached.signature)
            check_acceptance(signed, now=self._clock.now(), key_id=self._verifier.key_id,
                             accepted_sequence=state.get("sequence"), accepted_data=None,
                             pins=self._pins(state))
        except CatalogRefused as exc:
            self._problem = f"cached catalog not used: {exc.reason}"
            log.warning("cached catalog not used (%s); using the embedded catalog", exc.reason)
            return embedded
        return _InUse(signed.catalog, "cache", signed, _parse_time(state.get("fetched_at")))

    # -- refresh --------------------------------------------------------------------------
    def refresh(self) -> RefreshResult:
        """Fetch, verify and accept the remote catalog; `CatalogRefused` keeps the one in use."""
        if self._verifier is None:
            raise CatalogRefused(self._config_error or "no public key")
        with self._refresh_lock:
            with self._lock:
                if self._in_use is None:
                    self._in_use = self._from_cache()
            try:
                data = self._fetcher.fetch(self.url)
            except CatalogFetchFailed as exc:
                raise self._refused(f"could not fetch {self.url}: {exc.reason}")
            try:
                signature = self._fetcher.fetch(self.url + SIGNATURE_SUFFIX)
            except CatalogFetchFailed as exc:
                raise self._refused(f"no signature at {self.url + SIGNATURE_SUFFIX}: {exc.reason}")
            try:
                signed = self._verified(data, signature)
                state = self._cache.read_state()
                cached = self._cache.read()
                accepted = state.get("sequence")
                cached_signed = _quiet_parse(cached.data) if cached else None
                if cached_signed is not None and (accepted is None or cached_signed.header.sequence > accepted):
                    accepted = cached_signed.header.sequence
                same_sequence = cached_signed is not None and cached_signed.header.sequence == signed.header.sequence
                check_acceptance(signed, now=self._clock.now(), key_id=self._verifier.key_id,
                                 accepted_sequence=accepted,
                                 accepted_data=cached.data if same_sequence else None,
                                 pins=self._pins(state))
            except CatalogRefused as exc:
                raise self._refused(exc.reason)
            now = self._clock.now()
            changed = cached is None or cached.data != data
            if changed:
                self._cache.write(CachedCatalog(data, signature))
            pins = merge_pins(self._pins(state), [signed.catalog])
            self._cache.write_state({
                "sequence": signed.header.sequence,
                "fetched_at": now.isoformat(),
                "pins": {k: v.to_dict() for k, v in sorted(pins.items())},
            })
            with self._lock:
                self._in_use = _InUse(signed.catalog, "remote", signed, now)
                self._problem = None
            log.info("remote catalog accepted: sequence %s (was %s), %d models, changed=%s",
                     signed.header.sequence, accepted, len(signed.catalog), changed)
            return RefreshResult(signed.header.sequence, accepted, changed, len(signed.catalog))

    def _refused(self, reason: str) -> CatalogRefused:
        self._problem = f"last refresh refused: {reason}"
        return CatalogRefused(reason)

    def _verified(self, data: bytes, signature: bytes) -> SignedCatalog:
        try:
            self._verifier.verify(data, signature)  # type: ignore[union-attr]
        except SignatureRejected as exc:
            raise CatalogRefused(exc.reason) from None
        return parse_signed_catalog(data)

    def _pins(self, state: dict) -> dict[str, ModelIdentity]:
        # The embedded catalog counts as accepted: a remote catalog cannot redefine its IDs either.
        stored = {k: ModelIdentity.from_dict(v) for k, v in (state.get("pins") or {}).items()}
        return merge_pins(stored, [self._embedded.load_catalog()])

    # -- status ----------------------------------------------------------------------------
    def status(self) -> CatalogStatus:
        in_use = self._current()
        signed = in_use.signed
        return CatalogStatus(
            source=in_use.source,
            url=self.url,
            key_id=self._verifier.key_id if self._verifier else None,
            sequence=signed.header.sequence if signed else None,
            issued_at=signed.header.issued_at if signed else None,
            expires_at=signed.header.expires_at if signed else None,
            fetched_at=in_use.fetched_at,
            models=len(in_use.catalog),
            problem=self._problem,
        )


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _quiet_parse(data: bytes) -> SignedCatalog | None:
    try:
        return parse_signed_catalog(data)
    except CatalogRefused:
        return None
