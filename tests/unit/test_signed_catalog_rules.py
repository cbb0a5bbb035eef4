"""Signed-catalog rules and the catalog-source use case on in-memory fakes (issue 17)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.memory.catalog_remote import FakeSignatures, InMemoryCatalogCache, InMemoryCatalogFetcher
from adapters.memory.repositories import FakeClock
from application.catalog.remote import RemoteCatalogService
from domain.catalog.model import catalog_from_dict
from domain.catalog.signed import CatalogRefused, newer_ids, parse_signed_catalog
from tests.support.catalog_server import catalog_document, encode, team_model

URL = "mem://catalog/catalog.json"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make(fetch_when_stale=False, verifier=True):
    keys = FakeSignatures("team")
    fetcher, cache, clock = InMemoryCatalogFetcher(), InMemoryCatalogCache(), FakeClock(NOW)
    service = RemoteCatalogService(embedded=EmbeddedCatalogProvider(), fetcher=fetcher,
                                   verifier=keys if verifier else None, cache=cache, clock=clock, url=URL,
                                   refresh_seconds=600, fetch_when_stale=fetch_when_stale)
    return service, keys, fetcher, cache, clock


def publish(keys, fetcher, sequence, **kwargs):
    data = encode(catalog_document(sequence=sequence, key_id=keys.key_id, issued_at=NOW - timedelta(hours=1),
                                   **kwargs))
    fetcher.bodies[URL] = data
    fetcher.bodies[URL + ".sig"] = keys.sign(data)
    return data


def test_without_a_fetch_the_embedded_catalog_is_in_use() -> None:
    service, *_ = make()
    assert service.status().source == "embedded"
    assert len(service.load_catalog()) == len(EmbeddedCatalogProvider().load_catalog())


def test_the_cli_fetches_on_first_use_when_there_is_no_fresh_cache_then_uses_the_cache() -> None:
    service, keys, fetcher, cache, clock = make(fetch_when_stale=True)
    publish(keys, fetcher, 1)
    assert "team-tiny-v1" in service.load_catalog()
    assert fetcher.fetched == [URL, URL + ".sig"]

    again = RemoteCatalogService(embedded=EmbeddedCatalogProvider(), fetcher=fetcher, verifier=keys, cache=cache,
                                 clock=clock, url=URL, refresh_seconds=600, fetch_when_stale=True)
    assert "team-tiny-v1" in again.load_catalog() and again.status().source == "cache"
    assert len(fetcher.fetched) == 2  # fresh enough: no fetch

    clock.advance(601)
    stale = RemoteCatalogService(embedded=EmbeddedCatalogProvider(), fetcher=fetcher, verifier=keys, cache=cache,
                                 clock=clock, url=URL, refresh_seconds=600, fetch_when_stale=True)
    stale.load_catalog()
    assert len(fetcher.fetched) == 4 and stale.status().source == "remote"


def test_an_expired_cache_is_not_used() -> None:
    service, keys, fetcher, cache, clock = make()
    publish(keys, fetcher, 1, expires_in=timedelta(days=2))
    service.refresh()
    clock.advance(3 * 86400)
    later = RemoteCatalogService(embedded=EmbeddedCatalogProvider(), fetcher=fetcher, verifier=keys, cache=cache,
                                 clock=clock, url=URL, fetch_when_stale=False)
    assert later.status().source == "embedded" and "expired at" in later.status().problem


def test_without_a_public_key_nothing_is_fetched_and_refresh_says_why() -> None:
    service, keys, fetcher, cache, _ = make(fetch_when_stale=True, verifier=False)
    publish(keys, fetcher, 1)
    assert service.status().source == "embedded"
    with pytest.raises(CatalogRefused, match="MLX_CATALOG_PUBKEY is not set"):
        service.refresh()
    assert fetcher.fetched == [] and cache.writes == 0


def test_a_refusal_writes_nothing() -> None:
    service, keys, fetcher, cache, _ = make()
    publish(keys, fetcher, 2)
    service.refresh()
    writes = cache.writes
    publish(keys, fetcher, 1)
    with pytest.raises(CatalogRefused, match="rollback"):
        service.refresh()
    assert cache.writes == writes and service.status().sequence == 2


@pytest.mark.parametrize("field, value, reason", [
    ("sequence", 0, "sequence is missing"), ("sequence", "2", "sequence is missing"),
    ("key_id", "", "key_id is missing"), ("issued_at", "yesterday", "not an RFC 3339"),
    ("expires_at", "2020-01-01T00:00:00", "has no time zone"),
])
def test_a_malformed_header_is_refused(field, value, reason) -> None:
    document = catalog_document(sequence=1, key_id="k")
    document[field] = value
    with pytest.raises(CatalogRefused, match=reason):
        parse_signed_catalog(encode(document))


def test_newer_ids_are_the_same_stem_with_a_higher_version_or_a_supersedes_in_the_family() -> None:
    catalog = catalog_from_dict({"default_model": "team-tiny-v1", "models": [
        team_model("team-tiny-v1", "o/a"), team_model("team-tiny-v2", "o/b"), team_model("team-tiny-v3", "o/c"),
        team_model("team-tiny-big-v1", "o/d"), team_model("other-tiny-v2", "o/e", family="other"),
        team_model("tiny-remix-v1", "o/f", family="other", supersedes=["team-tiny-v1"]),
    ]})
    assert newer_ids(catalog, "team-tiny-v1") == ["team-tiny-v2", "team-tiny-v3", "tiny-remix-v1"]
    assert newer_ids(catalog, "team-tiny-v3") == []
