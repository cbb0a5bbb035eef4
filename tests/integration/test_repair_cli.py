"""`mlxm verify --repair`, `mlxm pull --repair` and `POST /api/downloads {"repair": true}`: the real
container (SQLite under tmp_path), the real HF client and the loopback hub, whose request log shows
which files were fetched again."""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from tests.support.fake_hub import FakeHub, Fault
from tests.support.hub_container import hub_container
from tests.support.model_folders import write_model_folder

CONFIG = b'{"model_type": "llama"}'
WEIGHTS = os.urandom(200_000)
TOKENIZER = b'{"version": "1.0"}'


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS, "tokenizer.json": TOKENIZER})
        yield h


@pytest.fixture
def container(hub, tmp_path, monkeypatch):
    return hub_container(hub, tmp_path / "home", monkeypatch, {
        "default_model": "tiny-v1",
        "models": [{"id": "tiny-v1", "type": "text-gen", "family": "llama", "aliases": ["tiny"],
                    "sources": [{"kind": "huggingface_repo", "value": "org/tiny"}]}],
    })


def run(container, *args):
    return CliRunner().invoke(cli, list(args), obj=container, catch_exceptions=False)


def _installed(tmp_path):
    return tmp_path / "home" / "models" / "tiny-v1"


def _fetched(hub) -> list[str]:
    return sorted(r.path.rsplit("/", 1)[-1] for r in hub.requests_for("/resolve/", "GET"))


def _corrupt(path) -> bytes:
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF  # one flipped byte: same size, another sha256
    path.write_bytes(bytes(data))
    return bytes(data)


def test_verify_repair_refetches_only_the_damaged_file(container, hub, tmp_path) -> None:
    assert run(container, "pull", "tiny", "--quiet").exit_code == 0
    folder = _installed(tmp_path)
    good_inodes = {name: (folder / name).stat().st_ino for name in ("config.json", "tokenizer.json")}
    _corrupt(folder / "model.safetensors")

    found = run(container, "verify")
    assert found.exit_code == 6
    assert "model.safetensors: expected sha256" in found.output
    assert "repair: mlxm verify --repair tiny-v1" in found.output  # verify says how to repair
    assert "already installed" in run(container, "pull", "tiny").output  # a pull does not rehash

    hub.clear_log()
    repaired = run(container, "verify", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert _fetched(hub) == ["model.safetensors"]  # only the damaged file came over the wire
    assert "re-fetched model.safetensors" in repaired.output and repaired.output.rstrip().endswith("tiny-v1: ok (3 files)")
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    # The good files were not touched (same inode: not rewritten, not replaced).
    assert {name: (folder / name).stat().st_ino for name in good_inodes} == good_inodes
    assert run(container, "verify").exit_code == 0
    assert not list((tmp_path / "home" / "staging").rglob("*.part"))


def test_verify_repair_json_and_a_corrupt_download_keeps_the_file(container, hub, tmp_path) -> None:
    assert run(container, "pull", "tiny", "--quiet").exit_code == 0
    folder = _installed(tmp_path)
    damaged = _corrupt(folder / "model.safetensors")
    hub.inject("model.safetensors", Fault.corrupt())  # the source serves wrong bytes, every time
    failed = run(container, "verify", "--repair", "--json")
    assert failed.exit_code == 6
    report = json.loads(failed.output)[0]
    assert report["ok"] is False and report["repaired"] == [] and "expected sha256" in report["repair_error"]
    assert (folder / "model.safetensors").read_bytes() == damaged  # a corrupt download replaced nothing
    assert (folder / "config.json").read_bytes() == CONFIG

    hub.clear_faults()
    fixed = run(container, "verify", "--repair", "--json")
    assert fixed.exit_code == 0, fixed.output
    report = json.loads(fixed.output)[0]
    assert report["ok"] is True and report["repaired"] == ["model.safetensors"] and report["repair_error"] is None
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS


def test_pull_repair_restores_a_deleted_file(container, hub, tmp_path) -> None:
    assert run(container, "pull", "tiny", "--quiet").exit_code == 0
    folder = _installed(tmp_path)
    (folder / "tokenizer.json").unlink()
    hub.clear_log()
    result = run(container, "pull", "--repair", "tiny")
    assert result.exit_code == 0, result.output
    assert "tiny-v1 repaired at" in result.output and "tokenizer.json" in result.output
    assert _fetched(hub) == ["tokenizer.json"]
    assert (folder / "tokenizer.json").read_bytes() == TOKENIZER
    nothing = run(container, "pull", "--repair", "tiny")
    assert nothing.exit_code == 0 and "nothing to repair" in nothing.output


def test_an_imported_model_says_to_reimport(container, hub, tmp_path) -> None:
    source = write_model_folder(tmp_path / "mine")
    imported = run(container, "import", str(source), "--name", "mine")
    assert imported.exit_code == 0, imported.output
    with container.uow_factory() as uow:
        local = uow.models.get("mine").local_path
    (tmp_path / local / "tokenizer.json").write_text('{"version": "2.0"}')  # damage the imported copy
    found = run(container, "verify", "mine")
    assert found.exit_code == 6 and "repair: re-import mine from a good copy" in found.output
    attempt = run(container, "verify", "--repair", "mine")
    assert attempt.exit_code == 6 and "cannot repair: re-import mine" in attempt.output
    assert hub.requests_for("/resolve/", "GET") == []


def test_http_repair_starts_a_download_that_fetches_only_the_damaged_file(container, hub, tmp_path) -> None:
    assert run(container, "pull", "tiny", "--quiet").exit_code == 0
    _corrupt(_installed(tmp_path) / "model.safetensors")
    hub.clear_log()
    client = TestClient(create_app(container))
    response = client.post("/api/downloads", json={"model": "tiny", "repair": True})
    assert response.status_code == 202, response.text
    download_id = response.json()["id"]
    deadline = time.monotonic() + 30
    while (body := client.get(f"/api/downloads/{download_id}").json())["status"] != "completed":
        assert body["status"] not in ("failed", "cancelled") and time.monotonic() < deadline, body
        time.sleep(0.05)
    assert body["files"] == ["model.safetensors"] and body["source"] == "repair"
    assert _fetched(hub) == ["model.safetensors"]
    assert run(container, "verify").exit_code == 0
    missing = client.post("/api/downloads", json={"model": "not-a-model-anywhere", "repair": True})
    assert missing.status_code == 404 and missing.json()["error"]["type"]
