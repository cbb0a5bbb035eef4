"""Contract suites of the remote-catalog ports, each run against the fake AND the real adapter."""

from __future__ import annotations

import pytest

from adapters.catalog.ed25519_signatures import Ed25519CatalogSigner, Ed25519SignatureVerifier
from adapters.catalog.filesystem_cache import FilesystemCatalogCache
from adapters.catalog.httpx_fetcher import HttpxCatalogFetcher
from adapters.memory.catalog_remote import FakeSignatures, InMemoryCatalogCache, InMemoryCatalogFetcher
from application.catalog.ports import CachedCatalog, CatalogFetchFailed, SignatureRejected
from tests.support.catalog_server import CatalogServer


# -- SignatureVerifier: (verifier, sign(data) with the trusted key, sign(data) with another key) ----------
@pytest.fixture(params=["fake", "ed25519"])
def signatures(request, tmp_path):
    if request.param == "fake":
        trusted, other = FakeSignatures("team"), FakeSignatures("someone-else")
        return trusted, trusted.sign, other.sign
    signer = Ed25519CatalogSigner()
    trusted = signer.generate(str(tmp_path / "team.key"))
    other = signer.generate(str(tmp_path / "other.key"))
    return (Ed25519SignatureVerifier(trusted.public_key),
            lambda data: signer.sign(trusted.private_key_path, data),
            lambda data: signer.sign(other.private_key_path, data))


def test_verifier_accepts_the_trusted_keys_signature_over_the_same_bytes(signatures) -> None:
    verifier, sign, _ = signatures
    verifier.verify(b"catalog bytes", sign(b"catalog bytes"))
    assert len(verifier.key_id) == 16


@pytest.mark.parametrize("case", ["other bytes", "other key", "empty", "garbage", "one byte changed"])
def test_verifier_rejects(signatures, case) -> None:
    verifier, sign, sign_other = signatures
    data = b'{"sequence": 1}'
    signature = {"other bytes": lambda: sign(b'{"sequence": 2}'),
                 "other key": lambda: sign_other(data),
                 "empty": lambda: b"",
                 "garbage": lambda: b"\x00\xffnot json",
                 "one byte changed": lambda: sign(data)}[case]()
    if case == "one byte changed":
        data = data.replace(b"1", b"7")
    with pytest.raises(SignatureRejected):
        verifier.verify(data, signature)


# -- CatalogCache ------------------------------------------------------------------------------------------
@pytest.fixture(params=["memory", "filesystem"])
def cache(request, tmp_path):
    return InMemoryCatalogCache() if request.param == "memory" else FilesystemCatalogCache(tmp_path / "c")


def test_cache_starts_empty_then_round_trips_and_replaces(cache) -> None:
    assert cache.read() is None and cache.read_state() == {}
    cache.write(CachedCatalog(b"one", b"sig-one"))
    cache.write_state({"sequence": 1, "pins": {"a-v1": {"repos": ["o/a"], "revision": None}}})
    cache.write(CachedCatalog(b"two", b"sig-two"))
    assert cache.read() == CachedCatalog(b"two", b"sig-two")
    assert cache.read_state()["pins"]["a-v1"]["repos"] == ["o/a"]


def test_cache_state_is_a_copy(cache) -> None:
    cache.write_state({"sequence": 1})
    state = cache.read_state()
    state["sequence"] = 99
    assert cache.read_state() == {"sequence": 1}


# -- CatalogFetcher ----------------------------------------------------------------------------------------
@pytest.fixture(params=["memory", "httpx"])
def fetcher_world(request):
    if request.param == "memory":
        fetcher = InMemoryCatalogFetcher()
        yield fetcher, (lambda path, body: fetcher.bodies.__setitem__("mem://x" + path, body)), "mem://x"
        return
    with CatalogServer() as server:
        yield HttpxCatalogFetcher(timeout_seconds=5), server.put, server.url


def test_fetcher_returns_the_exact_bytes(fetcher_world) -> None:
    fetcher, put, base = fetcher_world
    put("/catalog.json", b'{"a": 1}\n')
    assert fetcher.fetch(base + "/catalog.json") == b'{"a": 1}\n'


def test_fetcher_fails_on_a_missing_file(fetcher_world) -> None:
    fetcher, _, base = fetcher_world
    with pytest.raises(CatalogFetchFailed, match="404"):
        fetcher.fetch(base + "/nothing.json")
