"""`/api/downloads` over the real app, real container (SQLite in tmp), real HF client, loopback hub."""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import pytest
from dependency_injector import providers
from starlette.testclient import TestClient

from adapters.catalog.embedded import StaticCatalogProvider
from domain.catalog.model import catalog_from_dict
from entrypoints.composition.container import Container
from entrypoints.http.app import create_app
from entrypoints.composition.settings import ManagerSettings, Settings
from tests.support.fake_hub import FakeHub, Fault

WEIGHTS = os.urandom(600_000)


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.add_repo("org/tiny", {"config.json": b'{"model_type": "llama"}', "model.safetensors": WEIGHTS})
        yield h


@pytest.fixture
def client(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("MLX_MIRROR_BASE_URL", raising=False)
    container = Container()
    container.settings.override(providers.Object(Settings(manager=ManagerSettings(home=tmp_path))))
    container.catalog_provider.override(providers.Object(StaticCatalogProvider(catalog_from_dict({
        "default_model": "tiny-v1",
        "models": [{"id": "tiny-v1", "type": "text-gen", "family": "llama", "aliases": ["tiny"],
                    "sources": [{"kind": "huggingface_repo", "value": "org/tiny"}]}],
    }))))
    yield TestClient(create_app(container))


def _events(client, download_id: int) -> list[tuple[str, dict]]:
    events = []
    with client.stream("GET", f"/api/downloads/{download_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: "):])))
                if name == "end":
                    break
    return events


def _wait_status(client, download_id: int, statuses: set[str], timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/api/downloads/{download_id}").json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_start_stream_list_show(client, hub) -> None:
    hub.inject("model.safetensors", Fault.slow(bytes_per_sec=1_000_000))
    response = client.post("/api/downloads", json={"model": "tiny"})
    assert response.status_code == 202
    download_id = response.json()["id"]
    assert response.json()["model_id"] == "tiny-v1"

    events = _events(client, download_id)
    assert events[-1][0] == "end" and events[-1][1]["status"] == "completed"
    progress = [e for name, e in events if name == "progress" and e["status"] == "downloading"]
    assert progress and progress[-1]["total_bytes"] == len(WEIGHTS) + len(b'{"model_type": "llama"}')

    listed = client.get("/api/downloads").json()["data"]
    assert [d["id"] for d in listed] == [download_id]
    shown = client.get(f"/api/downloads/{download_id}").json()
    assert shown["status"] == "completed" and shown["progress"] == 1.0 and shown["revision"]

    again = client.post(f"/api/downloads/{download_id}/pause")
    assert again.status_code == 409 and again.json()["error"]["type"] == "conflict"


def test_pause_resume_cancel(client, hub) -> None:
    hub.inject("model.safetensors", Fault.slow(bytes_per_sec=300_000))
    download_id = client.post("/api/downloads", json={"model": "tiny-v1"}).json()["id"]
    _wait_until_bytes(client, download_id)
    paused = client.post(f"/api/downloads/{download_id}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"

    resumed = client.post(f"/api/downloads/{download_id}/resume")
    assert resumed.status_code == 202
    _wait_status(client, download_id, {"downloading"})
    cancelled = client.post(f"/api/downloads/{download_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_client_mistakes_are_4xx_json(client) -> None:
    assert client.post("/api/downloads", json={}).status_code == 422
    bad_json = client.post("/api/downloads", content=b"{nope", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400
    unknown = client.post("/api/downloads", json={"model": "tiny-vv"})
    assert unknown.status_code == 404 and "tiny" in unknown.json()["error"]["message"]
    missing = client.get("/api/downloads/999")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    assert client.get("/api/downloads/abc/events").status_code == 404


@pytest.mark.parametrize("raw", ["99999999999999999999999", "9223372036854775808", "%C2%B2", "0", "-1"])
def test_out_of_range_or_non_ascii_download_ids_are_404(client, raw) -> None:
    for method, path in [("get", ""), ("get", "/events"), ("post", "/pause"), ("post", "/resume"),
                         ("post", "/cancel")]:
        response = getattr(client, method)(f"/api/downloads/{raw}{path}")
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["type"] == "not_found"


def _wait_until_bytes(client, download_id: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while client.get(f"/api/downloads/{download_id}").json()["downloaded_bytes"] <= 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_progress_events_carry_each_files_bytes(client, hub) -> None:
    hub.inject("model.safetensors", Fault.slow(bytes_per_sec=1_000_000))
    download_id = client.post("/api/downloads", json={"model": "tiny"}).json()["id"]
    events = _events(client, download_id)
    partial = [e for name, e in events if name == "progress" and e["status"] == "downloading"
               and any(f["path"] == "model.safetensors" and 0 < f["downloaded_bytes"] < len(WEIGHTS) for f in e["files"])]
    assert partial, [e["files"] for _, e in events]
    weights = next(f for f in partial[-1]["files"] if f["path"] == "model.safetensors")
    assert weights["total_bytes"] == len(WEIGHTS) and weights["done"] is False
    assert sum(f["downloaded_bytes"] for f in partial[-1]["files"]) == partial[-1]["downloaded_bytes"]
    name, end = events[-1]
    assert name == "end" and end["status"] == "completed"
    assert {f["path"]: (f["downloaded_bytes"], f["total_bytes"], f["done"]) for f in end["files"]} == {
        "config.json": (23, 23, True), "model.safetensors": (len(WEIGHTS), len(WEIGHTS), True)}
