"""`/api/links/{app}/...` and `mlxm link ...` with the real linker and config files under tmp_path."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from tests.support.frontends import fake_container
from tests.support.model_folders import write_model_folder


@pytest.fixture
def env(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("MLX_MANAGER_HOME", str(home))
    container, uow = fake_container(home)
    configs = home / "mapping-configs"
    configs.mkdir(parents=True)
    apps = tmp_path / "apps"
    (configs / "studio.json").write_text(json.dumps({
        "app": "studio", "root": str(apps / "studio"),
        "rules": [{"target": "llm", "model_types": ["text-gen"], "exclude_tags": ["private"]}],
    }))
    (configs / "tomlapp.toml").write_text(f'root = "{apps / "tomlapp"}"\n[[rules]]\ntarget = "all"\n')
    importer = container.import_service()
    from application.library.importing import ImportRequest

    for name, seed in (("alpha", 0), ("beta", 1)):
        importer.import_model(ImportRequest(str(write_model_folder(tmp_path / "src" / name, seed=seed)), name=name))
    with TestClient(create_app(container)) as client:
        yield client, container, uow, apps


def test_preview_apply_preview_clean_over_http(env):
    client, _, _, apps = env
    preview = client.get("/api/links/studio/preview").json()
    assert preview["summary"] == {"create": 6, "exists": 0, "conflict": 0, "broken": 0}
    targets = {e["target"] for e in preview["entries"]}
    assert str(apps / "studio" / "llm" / "alpha" / "model.safetensors") in targets
    assert str(apps / "studio" / "llm" / "beta" / "model.safetensors") in targets

    applied = client.post("/api/links/studio/apply", json={"on_conflict": "skip"}).json()
    assert len(applied["created"]) == 6 and {c["method"] for c in applied["created"]} == {"symlink"}
    assert client.get("/api/links/studio/preview").json()["summary"]["exists"] == 6
    assert "linked:studio" in client.get("/api/models/alpha").json()["tags"]

    link = apps / "studio" / "llm" / "beta" / "config.json"
    target = os.readlink(link)
    os.unlink(target)  # the library file vanishes: the link dangles
    assert os.path.lexists(link) and not os.path.exists(link)
    broken = [e for e in client.get("/api/links/studio/preview").json()["entries"] if e["action"] == "broken"]
    assert [e["target"] for e in broken] == [str(link)]
    cleaned = client.post("/api/links/studio/clean").json()
    assert cleaned["removed"] == [str(link)] and not os.path.lexists(link)


def test_toml_config_and_errors(env):
    client, _, _, apps = env
    assert client.post("/api/links/tomlapp/apply").json()["created"]
    assert (apps / "tomlapp" / "all" / "alpha" / "model.safetensors").is_symlink()
    assert client.get("/api/links/nope/preview").status_code == 404
    assert client.post("/api/links/studio/apply", json={"on_conflict": "explode"}).status_code == 422
    assert client.get("/api/links/Bad%20Name/preview").status_code == 400


def test_delete_removes_the_models_links(env):
    client, _, _, apps = env
    client.post("/api/links/studio/apply")
    assert client.delete("/api/models/alpha").status_code == 200
    assert not (apps / "studio" / "llm" / "alpha").exists()
    assert (apps / "studio" / "llm" / "beta" / "model.safetensors").is_symlink()


def test_cli_link_commands(env):
    _, container, _, apps = env
    runner = CliRunner()
    conflict = apps / "studio" / "llm" / "alpha" / "model.safetensors"
    conflict.parent.mkdir(parents=True)
    conflict.write_bytes(b"someone else's")
    preview = runner.invoke(cli, ["link", "preview", "studio"], obj=container)
    assert preview.exit_code == 0 and "5 create, 0 exists, 1 conflict, 0 broken" in preview.output
    renamed = runner.invoke(cli, ["link", "apply", "studio", "--on-conflict", "rename", "--json"], obj=container)
    data = json.loads(renamed.output)
    assert data["renamed"] == {"alpha@llm": "alpha.2"} and conflict.read_bytes() == b"someone else's"
    assert (apps / "studio" / "llm" / "alpha.2" / "model.safetensors").is_symlink()
    listed = runner.invoke(cli, ["link", "list", "--json"], obj=container)
    assert [a["app"] for a in json.loads(listed.output)] == ["studio", "tomlapp"]
    cleaned = runner.invoke(cli, ["link", "clean", "studio"], obj=container)
    assert "0 broken links removed" in cleaned.output
    bad = runner.invoke(cli, ["link", "apply", "ghost"], obj=container)
    assert bad.exit_code != 0 and bad.output.startswith("Error: no mapping config for app 'ghost'")


def test_an_app_root_that_is_a_file_is_flagged_and_refused_not_a_500(env):
    client, container, _, apps = env
    apps.mkdir(parents=True, exist_ok=True)
    (apps / "studio").write_text("a file, not a folder")
    preview = client.get("/api/links/studio/preview")
    assert preview.status_code == 200
    assert preview.json()["problem"] == f"{apps / 'studio'} is a file, not a folder"
    refused = client.post("/api/links/studio/apply", json={})
    assert refused.status_code == 400, refused.text
    assert str(apps / "studio") in refused.json()["error"]["message"]
    result = CliRunner().invoke(cli, ["link", "apply", "studio"], obj=container)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.startswith("Error:") and str(apps / "studio") in result.output
    assert "unusable" in CliRunner().invoke(cli, ["link", "preview", "studio"], obj=container).output
    assert (apps / "studio").read_text() == "a file, not a folder"


def test_a_file_inside_the_app_folder_where_a_model_folder_goes_is_a_400(env):
    client, _, _, apps = env
    (apps / "studio" / "llm").mkdir(parents=True)
    (apps / "studio" / "llm" / "alpha").write_text("the user's file")
    refused = client.post("/api/links/studio/apply", json={})
    assert refused.status_code == 400, refused.text
    assert str(apps / "studio" / "llm" / "alpha") in refused.json()["error"]["message"]
    assert not any(p.is_symlink() for p in (apps / "studio" / "llm").rglob("*")), "nothing half-applied"


@pytest.mark.parametrize("broken", [("broken.json", "{not json"), ("broken.toml", "root = ["),
                                    ("studio.toml", 'root = "/y"\n[[rules]]\ntarget = "b"\n')])
def test_link_list_shows_the_good_configs_and_warns_about_a_broken_one(env, broken):
    # One damaged file (or two files for one app) used to fail the whole listing.
    _, container, _, apps = env
    name, content = broken
    configs = apps.parent / "home" / "mapping-configs"
    (configs / name).write_text(content)
    app = name.split(".")[0]
    good = ["tomlapp"] if app == "studio" else ["studio", "tomlapp"]
    runner = CliRunner()
    listed = runner.invoke(cli, ["link", "list", "--json"], obj=container)
    assert listed.exit_code == 0, listed.output
    assert [a["app"] for a in json.loads(listed.stdout)] == good
    warning = listed.stderr.splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"Warning: mapping config '{app}'"), listed.stderr
    assert "Traceback" not in listed.output
    table = runner.invoke(cli, ["link", "list"], obj=container)
    assert table.exit_code == 0 and all(a in table.stdout for a in good) and "Warning" in table.stderr
    # Another app's broken config (or its two files) does not stop this one's preview.
    assert runner.invoke(cli, ["link", "preview", "tomlapp"], obj=container).exit_code == 0
