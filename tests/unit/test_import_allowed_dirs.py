"""`MLX_MANAGER_ALLOWED_MODEL_DIRS`: what `POST /api/models/import` may read on the server's machine."""

from __future__ import annotations

import os

from click.testing import CliRunner
from starlette.testclient import TestClient

from entrypoints.cli.main import cli
from entrypoints.composition.settings import ManagerSettings
from entrypoints.http.app import create_app
from tests.support.frontends import fake_container
from tests.support.model_folders import write_model_folder


def _forbidden(response) -> str:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["type"] == "permission_error"
    return response.json()["error"]["message"]


def test_only_paths_under_the_allowed_folders_are_imported(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path / "home"))
    allowed = tmp_path / "allowed"
    inside = write_model_folder(allowed / "m1")
    outside = write_model_folder(tmp_path / "private" / "m2", seed=2)
    sneaky = allowed / "link"
    os.symlink(outside, sneaky)  # a symlink in an allowed folder must not reach outside it
    container, uow = fake_container(tmp_path / "home", allowed_model_dirs=(allowed,))
    with TestClient(create_app(container)) as client:
        assert client.post("/api/models/import", json={"path": str(inside)}).status_code == 201
        assert "outside the folders" in _forbidden(client.post("/api/models/import", json={"path": str(outside)}))
        _forbidden(client.post("/api/models/import", json={"path": str(sneaky)}))
        _forbidden(client.post("/api/models/import", json={"path": str(allowed / ".." / "private" / "m2")}))
    assert [m.model_id for m in uow.models.list()] == ["m1"]


def test_no_allowed_folders_turns_http_import_off_but_not_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path / "home"))
    folder = write_model_folder(tmp_path / "src" / "m1")
    container, uow = fake_container(tmp_path / "home")
    with TestClient(create_app(container)) as client:
        assert "MLX_MANAGER_ALLOWED_MODEL_DIRS" in _forbidden(client.post("/api/models/import", json={"path": str(folder)}))
    assert uow.models.list() == []
    result = CliRunner().invoke(cli, ["import", str(folder)], obj=container)
    assert result.exit_code == 0, result.output
    assert [m.model_id for m in uow.models.list()] == ["m1"]


def test_no_allowed_folders_with_auth_on_lets_an_admin_key_import(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path / "home"))
    folder = write_model_folder(tmp_path / "src" / "m1")
    container, _ = fake_container(tmp_path / "home", auth="on")
    admin = container.user_service().ensure_local_admin()
    secret = container.api_key_service().create("admin", user=admin.id).secret
    with TestClient(create_app(container)) as client:
        imported = client.post("/api/models/import", json={"path": str(folder)},
                               headers={"Authorization": f"Bearer {secret}"})
        assert imported.status_code == 201, imported.text


def test_the_setting_reads_a_json_list_or_a_path_list(monkeypatch, tmp_path):
    monkeypatch.setenv("MLX_MANAGER_ALLOWED_MODEL_DIRS", f"{tmp_path / 'a'}{os.pathsep}~/models")
    assert ManagerSettings().allowed_model_dirs[0] == tmp_path / "a"
    assert not str(ManagerSettings().allowed_model_dirs[1]).startswith("~")
    monkeypatch.setenv("MLX_MANAGER_ALLOWED_MODEL_DIRS", f'["{tmp_path / "b"}"]')
    assert ManagerSettings().allowed_model_dirs == [tmp_path / "b"]
    monkeypatch.delenv("MLX_MANAGER_ALLOWED_MODEL_DIRS")
    assert ManagerSettings().allowed_model_dirs == []
