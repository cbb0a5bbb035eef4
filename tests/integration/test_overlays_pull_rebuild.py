"""Overlays across a real pull, an update to a new revision and a lost database (in-process CLI, the real
container on SQLite, real files, the HF client against the loopback hub)."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import pytest
from click.testing import CliRunner
from dependency_injector import providers

from adapters.catalog.embedded import StaticCatalogProvider
from domain.catalog.model import catalog_from_dict
from entrypoints.cli.main import cli
from entrypoints.composition.container import Container
from entrypoints.composition.settings import ManagerSettings, Settings
from tests.support.fake_hub import FakeHub
from tests.support.model_folders import write_model_folder

CONFIG = b'{"model_type": "llama"}'


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": os.urandom(20_000)})
        yield h


def container_for(home):
    c = Container()
    c.settings.override(providers.Object(Settings(manager=ManagerSettings(home=home))))
    c.catalog_provider.override(providers.Object(StaticCatalogProvider(catalog_from_dict({
        "default_model": "tiny-v1",
        "models": [{"id": "tiny-v1", "type": "text-gen", "family": "llama", "aliases": ["tiny"], "tags": ["chat"],
                    "sources": [{"kind": "huggingface_repo", "value": "org/tiny"}]}],
    }))))
    return c


def run(container, *args, code=0):
    result = CliRunner().invoke(cli, list(args), obj=container, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def test_overlays_survive_an_update_and_a_lost_database(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("MLX_MIRROR_BASE_URL", raising=False)
    home = tmp_path / "home"
    container = container_for(home)
    run(container, "pull", "tiny")
    run(container, "edit", "tiny", "--type", "vision", "--family", "qwen2_vl", "--tag", "coding")
    hub.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": os.urandom(20_000)})
    run(container, "update", "tiny")
    shown = json.loads(run(container, "show", "tiny", "--json").output)
    new_revision = shown["revision"]
    assert (shown["type"], shown["family"], shown["tags"]) == ("vision", "qwen2_vl", ["chat", "coding"])
    manifest = json.loads((home / "models" / "tiny-v1" / ".mlxm.json").read_text())
    assert manifest["revision"] == new_revision
    assert {o["field"] for o in manifest["overlays"]} == {"model_type", "family", "tags"}
    container.database_engine().dispose()

    for path in home.glob("mlxm.db*"):
        path.unlink()  # the database is lost; the library folder stays
    rebuilt = container_for(home)
    source = write_model_folder(tmp_path / "src" / "other")
    run(rebuilt, "import", str(source), "--name", "other")  # a library change runs recovery first
    shown = json.loads(run(rebuilt, "show", "tiny", "--json").output)
    assert (shown["id"], shown["repo_id"], shown["revision"]) == ("tiny-v1", "org/tiny", new_revision)
    assert (shown["type"], shown["family"], shown["tags"]) == ("vision", "qwen2_vl", ["chat", "coding"])
    assert shown["overrides"]["type"]["inferred"] == "text-gen"  # the catalog's type lies beneath
    assert run(rebuilt, "verify", "tiny").exit_code == 0
