"""The server refreshes the signed catalog in the background; requests never wait for it (issue 17)."""

from __future__ import annotations

import threading
import time

from dependency_injector import providers
from starlette.testclient import TestClient

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.memory.catalog_remote import FakeSignatures, InMemoryCatalogCache, InMemoryCatalogFetcher
from application.catalog.remote import RemoteCatalogService
from entrypoints.http.app import create_app
from tests.support.catalog_server import catalog_document, encode
from tests.support.frontends import fake_container

URL = "mem://catalog/catalog.json"


class GatedFetcher(InMemoryCatalogFetcher):
    """Blocks every fetch until the test opens the gate (a catalog server that hangs)."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.gate = threading.Event()

    def fetch(self, url: str) -> bytes:
        self.started.set()
        assert self.gate.wait(30)
        return super().fetch(url)


def test_a_hanging_refresh_does_not_block_requests_and_its_catalog_is_used_once_accepted(tmp_path) -> None:
    container, _ = fake_container(tmp_path)
    keys, fetcher = FakeSignatures("team"), GatedFetcher()
    data = encode(catalog_document(sequence=1, key_id=keys.key_id))
    fetcher.bodies = {URL: data, URL + ".sig": keys.sign(data)}
    # fetch_when_stale=True as the CLI builds it: the server must switch it off (no fetch on a request).
    service = RemoteCatalogService(embedded=EmbeddedCatalogProvider(), fetcher=fetcher, verifier=keys,
                                   cache=InMemoryCatalogCache(), clock=container.clock(), url=URL,
                                   fetch_when_stale=True)
    container.catalog_provider.override(providers.Object(service))
    with TestClient(create_app(container)) as client:
        assert fetcher.started.wait(10)  # the background refresh is stuck in the catalog server
        response = client.get("/api/catalog")
        assert response.status_code == 200
        assert "team-tiny-v1" not in {m["id"] for m in response.json()["data"]}
        assert not fetcher.gate.is_set()  # answered while the refresh was still hanging
        fetcher.gate.set()
        deadline = time.monotonic() + 10
        while "team-tiny-v1" not in {m["id"] for m in client.get("/api/catalog").json()["data"]}:
            assert time.monotonic() < deadline, "the refreshed catalog was never used"
            time.sleep(0.02)
    assert service.status().source == "remote"
