"""A disk that fills while mlxm writes (ENOSPC at the write, injected): one CLI line with exit 10 saying what
to do, and a 507 JSON error over HTTP, never "internal error" (exit 70) or a 500. The user's files stay."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

import adapters.filesystem.file_tree as file_tree
from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from tests.support.frontends import fake_container
from tests.support.full_disk import FillingDisk
from tests.support.model_folders import write_model_folder

ROOM = 100  # bytes of the copied weights that fit before the disk is full


@pytest.fixture
def env(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("MLX_MANAGER_HOME", str(home))
    container, uow = fake_container(home, allowed_model_dirs=(tmp_path,))
    disk = FillingDisk(ROOM, "model.safetensors")
    monkeypatch.setattr(file_tree, "open", disk, raising=False)  # the import's copy writes through it
    source = write_model_folder(tmp_path / "src" / "Some Model")
    return container, uow, home, source, disk


def _untouched(source, before):
    return {p.name: p.read_bytes() for p in source.iterdir()} == before


def test_cli_import_copy_on_a_full_disk_is_one_line_naming_the_home_exit_10(env):
    container, uow, home, source, disk = env
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    result = CliRunner().invoke(cli, ["import", str(source)], obj=container)
    assert disk.refused == 1  # the write under test did fail
    assert result.exit_code == 10, result.output  # was exit 70, "internal error: OSError: [Errno 28] ..."
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output and "internal error" not in lines[0]
    assert lines[0] == (f"Error: No space left on device; free space under MLX_MANAGER_HOME ({home}), "
                        "or point MLX_MANAGER_HOME at a disk with room")
    assert _untouched(source, before)
    with uow:
        assert uow.models.list() == []


def test_http_import_on_a_full_disk_is_a_507_json_error(env):
    container, uow, home, source, disk = env
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    with TestClient(create_app(container)) as client:
        response = client.post("/api/models/import", json={"path": str(source)})
        assert disk.refused == 1
        assert response.status_code == 507, response.text  # was a 500 "internal server error"
        assert response.json() == {"error": {
            "type": "insufficient_storage",
            "message": f"No space left on device; free space under MLX_MANAGER_HOME ({home}), "
                       "or point MLX_MANAGER_HOME at a disk with room"}}
        assert client.get("/api/models").json()["total"] == 0
        documented = client.get("/openapi.json").json()["paths"]["/api/models/import"]["post"]["responses"]
        assert "507" in documented
    assert _untouched(source, before)
