"""`mlxm check-updates`, `update`, `verify` and legacy-folder adoption, in-process (CliRunner) with the
real container: SQLite under tmp_path, the real HF client, the loopback hub."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import pytest
from click.testing import CliRunner

from domain.enums import DownloadStatus
from domain.library.models import Model
from entrypoints.cli.main import cli
from tests.support.fake_hub import FakeHub, Fault
from tests.support.hub_container import hub_container

CONFIG = b'{"model_type": "llama"}'
WEIGHTS_V1 = os.urandom(50_000)
WEIGHTS_V2 = os.urandom(50_000)


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS_V1})
        yield h


@pytest.fixture
def container(hub, tmp_path, monkeypatch):
    return hub_container(hub, tmp_path, monkeypatch, {
        "default_model": "tiny-v1",
        "models": [
            {"id": "tiny-v1", "type": "text-gen", "family": "llama", "aliases": ["tiny", "tiny-legacy"],
             "sources": [{"kind": "huggingface_repo", "value": "org/tiny"}]},
            {"id": "tiny-v2", "type": "text-gen", "family": "llama", "supersedes": ["tiny-v1"],
             "sources": [{"kind": "huggingface_repo", "value": "org/tiny-two"}]},
        ],
    })


def run(container, *args):
    result = CliRunner().invoke(cli, list(args), obj=container, catch_exceptions=False)
    return result


def test_check_updates_update_verify_cycle(container, hub, tmp_path) -> None:
    assert run(container, "pull", "tiny", "--quiet").exit_code == 0
    report = json.loads(run(container, "check-updates", "--json").output)
    assert report == [{"model_id": "tiny-v1", "installed_revision": hub.commit_sha("org/tiny"),
                       "available_revision": hub.commit_sha("org/tiny"), "update_available": False,
                       "changed_files": [], "superseded_by": ["tiny-v2"], "newer_ids": ["tiny-v2"], "error": None}]

    text = run(container, "check-updates").output
    assert "tiny-v1: up to date; superseded by tiny-v2; newer catalog IDs: tiny-v2 (suggestion: mlxm pull tiny-v2)" in text

    new_sha = hub.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS_V2})
    report = json.loads(run(container, "check-updates", "--json").output)[0]
    assert report["update_available"] and report["available_revision"] == new_sha
    assert report["changed_files"] == ["model.safetensors"]

    # A corrupt new revision: the update fails, the old one stays installed and verifies.
    hub.inject("model.safetensors", Fault.corrupt(times=1))
    failed = run(container, "update", "tiny")
    assert failed.exit_code != 0 and "expected sha256" in failed.output
    link = tmp_path / "models" / "tiny-v1"
    assert (link / "model.safetensors").read_bytes() == WEIGHTS_V1
    assert run(container, "verify", "tiny").exit_code == 0

    updated = json.loads(run(container, "update", "--all", "--json").output)
    assert updated == [{"model_id": "tiny-v1", "updated": True, "old_revision": report["installed_revision"],
                        "new_revision": new_sha, "error": None, "note": None,
                        # delta update: config.json did not change and was linked from the installed revision
                        "bytes_fetched": len(WEIGHTS_V2), "bytes_reused": len(CONFIG)}]
    assert (link / "model.safetensors").read_bytes() == WEIGHTS_V2
    verify = run(container, "verify", "--json")
    assert verify.exit_code == 0 and json.loads(verify.output)[0]["ok"] is True
    with container.uow_factory() as uow:
        model = uow.models.get("tiny-v1")
    assert model.revision == new_sha and {f.path: f.revision for f in model.files} == {
        "config.json": new_sha, "model.safetensors": new_sha}


def _legacy_folder(tmp_path: Path, weights: bytes) -> Path:
    folder = tmp_path / "models" / "tiny-legacy"
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(CONFIG)
    (folder / "model.safetensors").write_bytes(weights)
    return folder


@pytest.mark.parametrize("matching", [True, False])
def test_legacy_alias_folder_adoption_needs_provenance(container, hub, tmp_path, matching) -> None:
    weights = WEIGHTS_V1 if matching else os.urandom(len(WEIGHTS_V1))
    folder = _legacy_folder(tmp_path, weights)
    with container.uow_factory() as uow:  # the legacy library row: same repo, this folder
        uow.models.add(Model(model_id="org/tiny", repo_id="org/tiny", local_path=str(folder),
                             status=DownloadStatus.COMPLETED))
        uow.commit()
    result = run(container, "pull", "tiny", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    served = hub.bytes_served.get("org/tiny/model.safetensors", 0)
    if matching:
        assert any(n.startswith("adopted") for n in data["notes"]) and served == 0
        assert not folder.exists()
        verified = run(container, "verify")  # the legacy row of the moved folder went with the adoption
        assert verified.exit_code == 0, verified.output
    else:
        assert any(n.startswith(f"left alone {folder}") and "expected sha256" in n for n in data["notes"])
        assert (folder / "model.safetensors").read_bytes() == weights  # never touched
        assert served == len(WEIGHTS_V1)
    assert (Path(data["local_path"]) / "model.safetensors").read_bytes() == WEIGHTS_V1


@pytest.mark.parametrize("action", ["pause", "resume", "cancel"])
def test_download_ids_out_of_range_are_a_usage_error(container, action) -> None:
    result = CliRunner().invoke(cli, ["downloads", action, "99999999999999999999999"], obj=container)
    assert result.exit_code == 2  # click's usage error, not the internal-error path
    assert "99999999999999999999999" in result.output and "Traceback" not in result.output


def test_service_get_refuses_ids_no_row_can_have(container) -> None:
    from application.errors import NotFound

    with pytest.raises(NotFound):
        container.download_service().get(2**63)
