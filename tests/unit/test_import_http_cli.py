"""`POST /api/models/import` and `mlxm import` on a container with the in-memory unit of work."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from tests.support.frontends import fake_container
from tests.support.model_folders import kept_folder_note, write_model_folder, write_safetensors


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path / "home"))
    container, uow = fake_container(tmp_path / "home", allowed_model_dirs=(tmp_path,))
    with TestClient(create_app(container)) as client:
        yield client, container, uow, tmp_path


def error(response, status):
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_import_created_then_same_content_reports_the_existing_id(env):
    client, _, _, tmp_path = env
    folder = write_model_folder(tmp_path / "src" / "Some Model")
    first = client.post("/api/models/import", json={"path": str(folder)})
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["id"], body["type"], body["family"], body["mode"], body["managed"], body["files"]) == (
        "some-model", "text-gen", "llama", "copy", True, 3)
    assert 0 < body["confidence"] <= 1 and len(body["content_sha256"]) == 64
    again = client.post("/api/models/import", json={"path": str(folder), "name": "other-name"})
    assert again.status_code == 200 and again.json()["id"] == "some-model" and again.json()["created"] is False
    shown = client.get("/api/models/some-model").json()
    assert {f["path"] for f in shown["files"]} == {"config.json", "model.safetensors", "tokenizer.json"}
    assert all(len(f["sha256"]) == 64 for f in shown["files"])


def test_import_refusals_are_4xx(env):
    client, _, _, tmp_path = env
    pickled = write_model_folder(tmp_path / "pickled")
    (pickled / "weights.pt").write_bytes(b"\x80\x04")
    assert "allow-pickle" in error(client.post("/api/models/import", json={"path": str(pickled)}), 400)["message"]
    assert client.post("/api/models/import", json={"path": str(pickled), "allow_pickle": True}).status_code == 201
    escaping = write_model_folder(tmp_path / "escaping")
    os.symlink("/etc/hostname", escaping / "extra.txt")
    assert "escape" in error(client.post("/api/models/import", json={"path": str(escaping)}), 400)["message"]
    assert "absolute" in error(client.post("/api/models/import", json={"path": "relative/dir"}), 400)["message"]
    assert error(client.post("/api/models/import", json={"path": str(tmp_path / "x"), "colour": 1}), 422)
    fine = write_model_folder(tmp_path / "fine", seed=9)
    assert "reserved" in error(client.post("/api/models/import", json={"path": str(fine), "name": "con"}), 400)["message"]
    assert error(client.post("/api/models/import", json={"path": str(pickled), "name": "qwen3-0.6b",
                                                         "allow_pickle": True, "in_place": True}), 409)


def test_in_place_and_move_over_http(env):
    client, _, _, tmp_path = env
    here = write_model_folder(tmp_path / "here", seed=3)
    body = client.post("/api/models/import", json={"path": str(here), "in_place": True}).json()
    assert body["mode"] == "in-place" and body["managed"] is False and body["local_path"] == str(here)
    moving = write_model_folder(tmp_path / "moving", seed=4)
    moved = client.post("/api/models/import", json={"path": str(moving), "move": True}).json()
    assert moved["mode"] == "move" and not moving.exists()


def test_cli_import_single_file_shows_review_reasons(env):
    _, container, _, tmp_path = env
    weights = write_safetensors(tmp_path / "lonely.safetensors")
    result = CliRunner().invoke(cli, ["import", str(weights)], obj=container)
    assert result.exit_code == 0, result.output
    assert "Imported lonely (text-gen" in result.output
    assert "Needs review:" in result.output and "no config.json" in result.output
    as_json = CliRunner().invoke(cli, ["import", str(weights), "--json"], obj=container)
    data = json.loads(as_json.output)
    assert data["id"] == "lonely" and data["created"] is False and "needs-review" in data["tags"]


def test_cli_import_errors_are_one_line(env):
    _, container, _, tmp_path = env
    folder = write_model_folder(tmp_path / "p")
    (folder / "x.ckpt").write_bytes(b"\x80")
    result = CliRunner().invoke(cli, ["import", str(folder)], obj=container)
    assert result.exit_code != 0
    assert result.output.startswith("Error: refusing pickle-based weights") and "Traceback" not in result.output
    both = CliRunner().invoke(cli, ["import", str(folder), "--move", "--in-place"], obj=container)
    assert both.exit_code != 0 and "exclude each other" in both.output


def test_malformed_architectures_is_a_review_reason_not_a_500(env):
    client, container, _, tmp_path = env
    config = {"model_type": "llama", "architectures": 5}
    folder = write_model_folder(tmp_path / "odd-arch", config=config, seed=11)
    response = client.post("/api/models/import", json={"path": str(folder)})
    assert response.status_code == 201, response.text
    assert any("architectures" in r for r in response.json()["review_reasons"])
    again = write_model_folder(tmp_path / "odd-arch-cli", config=config, seed=12)
    result = CliRunner().invoke(cli, ["import", str(again)], obj=container)
    assert result.exit_code == 0, result.output
    assert "architectures is not a list of names" in result.output


def test_http_delete_says_which_of_the_users_files_it_kept(env):
    """`DELETE /api/models/{id}` leaves the user's own folder that replaced mlxm's link, as `mlxm rm` does, and
    its response lists it under `kept` (the CLI prints `Kept ...`); an ordinary delete has no `kept`."""
    import shutil

    client, _, _, tmp_path = env
    source = write_model_folder(tmp_path / "src" / "swapped")
    assert client.post("/api/models/import", json={"path": str(source)}).status_code == 201
    link = tmp_path / "home" / "models" / "swapped"
    assert link.is_symlink()
    link.unlink()
    shutil.copytree(source, link)  # the user's own copy in place of mlxm's link
    (link / "notes.txt").write_text("mine")

    note = kept_folder_note(link)
    response = client.delete("/api/models/swapped")
    assert response.status_code == 200, response.text
    assert response.json() == {"id": "swapped", "deleted": True, "kept": [note]}
    assert (link / "notes.txt").read_text() == "mine"
    assert client.get("/api/models/swapped").status_code == 404

    plain = write_model_folder(tmp_path / "src" / "plain", seed=5)
    assert client.post("/api/models/import", json={"path": str(plain)}).status_code == 201
    assert client.delete("/api/models/plain").json() == {"id": "plain", "deleted": True}
    document = client.get("/openapi.json").json()
    answer = document["paths"]["/api/models/{name}"]["delete"]["responses"]["200"]["content"]["application/json"]
    schema = document["components"]["schemas"][answer["schema"]["$ref"].rsplit("/", 1)[1]]
    assert schema["properties"]["kept"]["items"] == {"type": "string"}  # documented in the API
