"""Hub search through the real huggingface_hub client against the loopback test hub, with its own cache."""

import json
import re
import sqlite3

import pytest
from click.testing import CliRunner
from dependency_injector import providers
from starlette.testclient import TestClient

from adapters.catalog.embedded import StaticCatalogProvider
from domain.catalog.model import catalog_from_dict
from domain.enums import ModelType
from domain.library.models import Model
from entrypoints.cli.main import cli
from entrypoints.composition.container import Container
from entrypoints.http.app import create_app
from entrypoints.composition.settings import ManagerSettings, Settings
from tests.support.fake_hub import FakeHub, Fault


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.add_repo("mlx-community/Llama-3.2-1B-Instruct-4bit", {"config.json": b"{}", "w.safetensors": b"x" * 3000},
                   downloads=900, likes=5, pipeline_tag="text-generation", library_name="mlx")
        h.add_repo("mlx-community/Qwen3-0.6B-4bit", {"config.json": b"{}"}, downloads=500, likes=50,
                   pipeline_tag="text-generation", library_name="mlx")
        h.add_repo("mlx-community/Kokoro-82M-bf16", {"config.json": b"{}"}, downloads=100, likes=20,
                   pipeline_tag="text-to-speech", library_name="mlx")
        h.add_repo("someone/llama-gguf", {"config.json": b"{}"}, downloads=5000, likes=1,
                   pipeline_tag="text-generation")
        yield h


def _container(hub, tmp_path, monkeypatch, **manager) -> Container:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    c = Container()
    c.settings.override(providers.Object(Settings(manager=ManagerSettings(home=tmp_path, **manager))))
    c.catalog_provider.override(providers.Object(StaticCatalogProvider(catalog_from_dict({
        "default_model": "qwen3-tiny-v1",
        "models": [{"id": "qwen3-tiny-v1", "type": "text-gen", "family": "qwen3", "aliases": ["q3"],
                    "sources": [{"kind": "huggingface_repo", "value": "mlx-community/Qwen3-0.6B-4bit"}]}],
    }))))
    with c.uow_factory() as uow:
        uow.models.add(Model("llama-1b", repo_id="mlx-community/Llama-3.2-1B-Instruct-4bit",
                             model_type=ModelType.TEXT_GEN, local_path=str(tmp_path / "m"), size_bytes=10))
        uow.commit()
    return c


def _run(container, *args):
    return CliRunner().invoke(cli, list(args), obj=container, catch_exceptions=False)


def _searches(hub):
    return len(hub.requests_for("/api/models", "GET"))


def test_cli_hub_search_reports_library_and_catalog_membership(hub, tmp_path, monkeypatch):
    c = _container(hub, tmp_path, monkeypatch)
    result = _run(c, "search", "--hub", "", "--author", "mlx-community", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["source"] == "hub" and data["warnings"] == []
    by_id = {r["repo_id"]: r for r in data["results"]}
    assert list(by_id) == ["mlx-community/Llama-3.2-1B-Instruct-4bit", "mlx-community/Qwen3-0.6B-4bit",
                           "mlx-community/Kokoro-82M-bf16"]  # by downloads, author filter applied
    llama = by_id["mlx-community/Llama-3.2-1B-Instruct-4bit"]
    assert llama["in_library"] and llama["library_id"] == "llama-1b" and not llama["in_catalog"]
    assert llama["downloads"] == 900 and llama["likes"] == 5 and llama["pipeline_tag"] == "text-generation"
    assert llama["size_bytes"] == 3002 and llama["last_modified"]
    qwen = by_id["mlx-community/Qwen3-0.6B-4bit"]
    assert qwen["in_catalog"] and qwen["catalog_id"] == "qwen3-tiny-v1" and not qwen["in_library"]
    # The real client sent the query to the loopback hub.
    query = hub.requests_for("/api/models", "GET")[-1].path
    assert "author=mlx-community" in query and "sort=downloads" in query


def test_sort_type_and_limit_reach_the_hub(hub, tmp_path, monkeypatch):
    c = _container(hub, tmp_path, monkeypatch)
    likes = json.loads(_run(c, "search", "--hub", "--sort", "likes", "--limit", "2", "--json").output)
    assert [r["repo_id"] for r in likes["results"]] == ["mlx-community/Qwen3-0.6B-4bit", "mlx-community/Kokoro-82M-bf16"]
    audio = json.loads(_run(c, "search", "--hub", "--type", "audio", "--json").output)
    assert [r["repo_id"] for r in audio["results"]] == ["mlx-community/Kokoro-82M-bf16"]
    table = _run(c, "search", "--hub", "llama")
    assert table.exit_code == 0
    assert "someone/llama-gguf" in table.output and "in library as llama-1b" in table.output
    assert "results from the hub" in table.output


def test_answers_are_cached_in_their_own_sqlite_file(hub, tmp_path, monkeypatch):
    c = _container(hub, tmp_path, monkeypatch)
    first = json.loads(_run(c, "search", "--hub", "qwen", "--json").output)
    asked = _searches(hub)
    second = json.loads(_run(c, "search", "--hub", "qwen", "--json").output)
    assert first["source"] == "hub" and second["source"] == "cache"
    assert _searches(hub) == asked  # the hub was not asked again within the TTL
    assert second["results"] == first["results"]
    path = tmp_path / "cache" / "search.sqlite"
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM searches").fetchone()[0]
    assert rows == 1
    library_tables = {r[0] for r in sqlite3.connect(tmp_path / "mlxm.db").execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    assert "searches" not in library_tables


def test_offline_answers_from_the_cache_and_says_so(hub, tmp_path, monkeypatch):
    online = _container(hub, tmp_path, monkeypatch)
    _run(online, "search", "--hub", "kokoro", "--json")
    asked = _searches(hub)
    offline = _container(hub, tmp_path / "again", monkeypatch, offline=True)
    offline.settings().manager.home = tmp_path  # same home, same cache file
    data = json.loads(_run(offline, "search", "--hub", "kokoro", "--json").output)
    assert data["offline"] and data["source"] == "cache"
    assert [r["repo_id"] for r in data["results"]] == ["mlx-community/Kokoro-82M-bf16"]
    assert "offline" in data["warnings"][0] and "cache" in data["warnings"][0]
    assert re.search(r"cache of \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", data["warnings"][0]), data["warnings"]
    assert data["fetched_at"].endswith("Z"), data["fetched_at"]
    nothing = _run(offline, "search", "--hub", "never-searched")
    assert nothing.exit_code == 0 and "nothing cached" in nothing.output
    assert _searches(hub) == asked  # offline never contacts the hub


def test_a_hub_error_falls_back_to_the_cache_with_a_warning(hub, tmp_path, monkeypatch):
    c = _container(hub, tmp_path, monkeypatch, search_cache_ttl_seconds=0)  # every search asks the hub
    _run(c, "search", "--hub", "llama", "--json")
    hub.inject("/api/models", Fault.status(500))
    result = _run(c, "search", "--hub", "llama", "--json")
    data = json.loads(result.stdout)
    assert data["source"] == "cache" and "did not answer" in data["warnings"][0]
    assert {r["repo_id"] for r in data["results"]} == {"mlx-community/Llama-3.2-1B-Instruct-4bit", "someone/llama-gguf"}
    uncached = _run(c, "search", "--hub", "qwen")
    assert uncached.exit_code != 0
    assert uncached.output.startswith("Error: the hub did not answer") and "Traceback" not in uncached.output


def test_http_hub_search(hub, tmp_path, monkeypatch):
    c = _container(hub, tmp_path, monkeypatch)
    with TestClient(create_app(c)) as client:
        body = client.get("/api/hub/search", params={"q": "qwen", "sort": "likes"}).json()
        assert body["source"] == "hub" and body["results"][0]["catalog_id"] == "qwen3-tiny-v1"
        assert client.get("/api/hub/search", params={"sort": "random"}).status_code == 422
        assert client.get("/api/hub/search", params={"limit": 1000}).status_code == 422
        bad = client.get("/api/hub/search", params={"author": "two words"})
        assert bad.status_code == 400 and bad.json()["error"]["message"]


def test_cli_rejects_library_only_flags_with_hub(hub, tmp_path, monkeypatch):
    c = _container(hub, tmp_path, monkeypatch)
    result = _run(c, "search", "--hub", "x", "--capability", "tools")
    assert result.exit_code == 2 and "--capability" in result.output
    assert _run(c, "search", "x", "--sort", "likes").exit_code == 2
    assert _run(c, "search", "x", "--type", "text-generation").exit_code == 2


def test_an_unreachable_hub_falls_back_to_the_cache_without_the_clients_retries(hub, tmp_path, monkeypatch):
    import socket
    import time

    c = _container(hub, tmp_path, monkeypatch, search_cache_ttl_seconds=0)
    _run(c, "search", "--hub", "kokoro", "--json")
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    started = time.monotonic()
    data = json.loads(_run(c, "search", "--hub", "kokoro", "--json").stdout)
    assert time.monotonic() - started < 10  # huggingface_hub's own backoff would take ~23 s
    assert data["source"] == "cache" and "did not answer" in data["warnings"][0]


def test_the_hf_organization_setting_is_the_default_author(hub, tmp_path, monkeypatch):
    c = _container(hub, tmp_path, monkeypatch, hf_organization="mlx-community")
    result = _run(c, "search", "--hub", "", "--json")
    assert result.exit_code == 0, result.output
    assert all(r["repo_id"].startswith("mlx-community/") for r in json.loads(result.output)["results"])
    assert "author=mlx-community" in hub.requests_for("/api/models", "GET")[-1].path
    with TestClient(create_app(c)) as client:
        found = client.get("/api/hub/search", params={"q": "llama"})
        assert found.status_code == 200, found.text
    assert "author=mlx-community" in hub.requests_for("/api/models", "GET")[-1].path
