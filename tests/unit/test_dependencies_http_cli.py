"""`GET /api/models/{id}/dependency-requirements` and `mlxm deps ...` on the in-memory unit of work."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from domain.enums import ModelType
from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from entrypoints.http.library.schemas import DependencyRequirementsDTO
from tests.support.frontends import add_models, fake_container

PINS = ['mlx==0.32.4; sys_platform == "darwin"', 'mlx[cpu]==0.32.4; sys_platform == "linux"', "mlx-lm==0.32.2"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN))
    service = container.dependency_service()
    service.add_profile("mlx-lm", 1, PINS, python_requires=">=3.11")
    service.bind("tiny-llama", "mlx-lm", backend_key="mlx-lm")
    with TestClient(create_app(container)) as client:
        yield client, container


def url(name="tiny-llama"):
    return f"/api/models/{name}/dependency-requirements"


def test_contract_over_http(env):
    client, _ = env
    response = client.get(url(), params={"platform": "darwin-arm64", "backend": "mlx-lm"})
    assert response.status_code == 200, response.text
    dto = DependencyRequirementsDTO.model_validate(response.json())
    assert dto.dependency_contract_version == 1 and dto.validation_state == "resolved"
    [group] = dto.requirement_groups
    assert (group.binding_id, group.profile_id, group.profile_version, group.backend_key) == (
        "tiny-llama:mlx-lm", "mlx-lm", 1, "mlx-lm")
    assert [r.applies for r in group.requirements] == [True, False, True]
    other_backend = client.get(url(), params={"backend": "mlx-audio"}).json()
    assert other_backend["requirement_groups"] == [] and other_backend["validation_state"] == "resolved"


def test_contract_version_mismatch_is_409(env):
    client, _ = env
    mismatch = client.get(url(), params={"expected_contract_version": 2})
    assert mismatch.status_code == 409 and mismatch.json()["error"]["type"] == "conflict"
    assert client.get(url(), params={"expected_contract_version": 1}).status_code == 200
    assert client.get(url(), params={"expected_contract_version": "one"}).status_code == 422


def test_unknown_model_is_404_with_suggestions(env):
    client, _ = env
    missing = client.get(url("tiny-lama"))
    assert missing.status_code == 404 and "tiny-llama" in missing.json()["error"]["suggestions"]


def test_unknown_profile_state_over_http(env):
    client, container = env
    container.dependency_service().bind("tiny-llama", "not-yet")
    body = client.get(url(), params={"platform": "linux"}).json()
    assert body["validation_state"] == "unknown_profile"
    assert [e["code"] for e in body["validation_errors"]] == ["unknown_profile"]


@pytest.mark.parametrize("value", ["abc", "3", "3.11rc1", "/usr/bin/python3"])
def test_cli_deps_show_refuses_a_python_value_that_is_not_a_version(env, value):
    _, container = env
    result = CliRunner().invoke(cli, ["deps", "tiny-llama", "--python", value], obj=container)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "tiny-llama: resolved" not in result.output
    assert result.output.splitlines()[-1] == (f"Error: Invalid value for '--python': {value!r} is not a Python "
                                              "version: use MAJOR.MINOR or MAJOR.MINOR.MICRO, e.g. 3.11 or 3.11.7")


@pytest.mark.parametrize("value", ["3.10", "3.11.7", " 3.12 "])
def test_cli_deps_show_takes_a_python_version(env, value):
    _, container = env
    result = CliRunner().invoke(cli, ["deps", "tiny-llama", "--python", value], obj=container)
    assert result.exit_code == 0 and "tiny-llama: resolved" in result.output, result.output


def test_cli_deps_show_bind_and_strict(env):
    _, container = env
    runner = CliRunner()
    shown = runner.invoke(cli, ["deps", "tiny-llama", "--platform", "linux-x86_64"], obj=container)
    assert shown.exit_code == 0, shown.output
    assert "tiny-llama: resolved (platform linux-x86_64" in shown.output
    assert 'mlx==0.32.4; sys_platform == "darwin"  python>=3.11  (not on this platform)' in shown.output
    as_json = json.loads(runner.invoke(cli, ["deps", "tiny-llama", "--json", "--platform", "linux"], obj=container).output)
    assert DependencyRequirementsDTO.model_validate(as_json).validation_state == "resolved"

    bound = runner.invoke(cli, ["deps", "bind", "tiny-llama", "mlx-lm-old", "--backend", "mlx-lm"], obj=container)
    assert bound.exit_code == 0 and "tiny-llama:mlx-lm-old" in bound.output
    added = runner.invoke(cli, ["deps", "add-profile", "mlx-lm-old", "1", "mlx-lm==0.30.0"], obj=container)
    assert added.exit_code == 0, added.output
    strict = runner.invoke(cli, ["deps", "tiny-llama", "--platform", "linux", "--strict"], obj=container)
    assert strict.exit_code == 9 and "profile_conflict" in strict.output and "conflicting_pin" in strict.output

    mismatch = runner.invoke(cli, ["deps", "tiny-llama", "--expected-contract-version", "3"], obj=container)
    assert mismatch.exit_code != 0 and mismatch.output.startswith("Error: dependency contract version mismatch")
    loose = runner.invoke(cli, ["deps", "add-profile", "loose", "1", "mlx>=0.1"], obj=container)
    assert loose.exit_code != 0 and "exact pin" in loose.output
    listed = json.loads(runner.invoke(cli, ["deps", "bindings", "tiny-llama", "--json"], obj=container).output)
    assert sorted(b["binding_id"] for b in listed) == ["tiny-llama:mlx-lm", "tiny-llama:mlx-lm-old:mlx-lm"]
    removed = runner.invoke(cli, ["deps", "unbind", "tiny-llama:mlx-lm-old:mlx-lm"], obj=container)
    assert removed.exit_code == 0
    profiles = json.loads(runner.invoke(cli, ["deps", "profiles", "--json"], obj=container).output)
    assert [(p["profile_id"], p["version"]) for p in profiles] == [("mlx-lm", 1), ("mlx-lm-old", 1)]


PLATFORM_FORMS_TEXT = ("SYSTEM or SYSTEM-MACHINE, SYSTEM one of linux, darwin, win32 (or macos, windows) and MACHINE "
                       "one of arm64, x86_64 (or aarch64, amd64), e.g. darwin-arm64 or linux-x86_64")


@pytest.mark.parametrize("value", ["abc", "3", "3.11rc1", "/usr/bin/python3"])
def test_http_python_query_that_is_not_a_version_is_a_422_naming_the_forms(env, value):
    client, _ = env
    response = client.get(url(), params={"python": value})
    assert response.status_code == 422, response.text  # was a 200 where every python_version marker was "unknown"
    assert response.json()["error"] == {
        "type": "invalid_request_error", "param": "python",
        "message": f"python: {value!r} is not a Python version: use MAJOR.MINOR or MAJOR.MINOR.MICRO, e.g. 3.11 "
                   "or 3.11.7"}


@pytest.mark.parametrize("value", ["beos", "linux-sparc", "darwin-", "*", "linux-*", "darwin_arm64"])
def test_a_platform_the_markers_do_not_know_is_refused_over_http_and_by_the_cli(env, value):
    client, container = env
    response = client.get(url(), params={"platform": value})
    assert response.status_code == 422, response.text  # was a 200 where every platform marker was false
    assert response.json()["error"] == {"type": "invalid_request_error", "param": "platform",
                                        "message": f"platform: {value!r} is not a platform: use {PLATFORM_FORMS_TEXT}"}
    result = CliRunner().invoke(cli, ["deps", "tiny-llama", "--platform", value], obj=container)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "tiny-llama: resolved" not in result.output
    assert result.output.splitlines()[-1] == (f"Error: Invalid value for '--platform': {value!r} is not a platform: "
                                              f"use {PLATFORM_FORMS_TEXT}")


@pytest.mark.parametrize("value, label, applies", [
    ("darwin-arm64", "darwin-arm64", [True, False, True]), ("macos-aarch64", "darwin-arm64", [True, False, True]),
    ("Linux-AMD64", "linux-x86_64", [False, True, True]), ("linux", "linux", [False, True, True]),
    ("win32-x86_64", "win32-x86_64", [False, False, True])])
def test_known_platforms_and_their_other_names_are_taken(env, value, label, applies):
    client, container = env
    body = client.get(url(), params={"platform": value, "python": " 3.12 "}).json()
    assert body["platform"] == label and [r["applies"] for r in body["requirement_groups"][0]["requirements"]] == applies
    shown = CliRunner().invoke(cli, ["deps", "tiny-llama", "--platform", value, "--json"], obj=container)
    assert shown.exit_code == 0 and json.loads(shown.output)["platform"] == label, shown.output


SELECTOR_FORMS_TEXT = ("*, SYSTEM, SYSTEM-MACHINE, SYSTEM-* or *-MACHINE, SYSTEM one of linux, darwin, win32 (or macos, "
                       "windows) and MACHINE one of arm64, x86_64 (or aarch64, amd64), or a wildcard matching one of "
                       "them, e.g. darwin-arm64, linux-* or darwin-arm*")


@pytest.mark.parametrize("value", ["beos", "linx", "linux-sparc", "darwin-arm", "lnx*", "darwin-arm?", "*-i?86",
                                   "[xy]*", "linux-", "darwin_arm64"])
def test_cli_deps_bind_refuses_a_platform_selector_part_that_matches_no_known_name(env, value):
    _, container = env
    result = CliRunner().invoke(cli, ["deps", "bind", "tiny-llama", "other", "--platform", value], obj=container)
    assert result.exit_code == 2, result.output  # was bound: a binding that silently never applies
    assert "Traceback" not in result.output
    assert result.output.splitlines()[-1] == (f"Error: Invalid value for '--platform': {value!r} is not a platform "
                                              f"selector: use {SELECTOR_FORMS_TEXT}")
    assert [b.binding_id for b in container.dependency_service().bindings("tiny-llama")] == ["tiny-llama:mlx-lm"]


@pytest.mark.parametrize("value, stored", [
    ("*", "*"), ("linux", "linux"), ("darwin-arm64", "darwin-arm64"), ("linux-*", "linux-*"), ("*-arm64", "*-arm64"),
    (" Linux-X86_64 ", "linux-x86_64"), ("macos-aarch64", "darwin-arm64"), ("windows", "win32"),
    # wildcards matching some known name, as fnmatch always took them; an empty one is the default `*`
    ("lin*", "lin*"), ("darwin-arm*", "darwin-arm*"), ("Mac*-AARCH??", "mac*-aarch??"), ("*-x86*", "*-x86*"),
    ("", "*"), (" ", "*")])
def test_cli_deps_bind_takes_the_platform_forms_and_wildcards(env, value, stored):
    _, container = env
    result = CliRunner().invoke(cli, ["deps", "bind", "tiny-llama", "other", "--platform", value, "--json"],
                                obj=container)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["platform_selector"] == stored


def test_a_binding_for_macos_applies_on_darwin(env):
    # Stored as `darwin`: the platform `deps show` resolves `--platform macos` to, so the binding really applies.
    _, container = env
    runner = CliRunner()
    assert runner.invoke(cli, ["deps", "bind", "tiny-llama", "mac-only", "--platform", "macos"],
                         obj=container).exit_code == 0
    shown = json.loads(runner.invoke(cli, ["deps", "tiny-llama", "--platform", "macos-arm64", "--json"],
                                     obj=container).output)
    assert "mac-only" in [group["profile_id"] for group in shown["requirement_groups"]], shown


def test_a_wildcard_binding_applies_where_its_pattern_matches(env):
    _, container = env
    runner = CliRunner()
    assert runner.invoke(cli, ["deps", "bind", "tiny-llama", "arm-only", "--platform", "darwin-arm*"],
                         obj=container).exit_code == 0
    profiles = {platform: sorted(g["profile_id"] for g in json.loads(runner.invoke(
        cli, ["deps", "tiny-llama", "--platform", platform, "--json"], obj=container).output)["requirement_groups"])
        for platform in ("macos-aarch64", "darwin-x86_64")}
    assert profiles == {"macos-aarch64": ["arm-only", "mlx-lm"], "darwin-x86_64": ["mlx-lm"]}


def test_an_empty_platform_or_python_is_this_machine_over_http_and_by_the_cli(env):
    # `?platform=` / `--platform ""` meant "not given" (this machine, this Python) before they were checked.
    from application.library.dependencies import current_platform

    client, container = env
    here = current_platform().label
    response = client.get(url(), params={"platform": "", "python": ""})
    assert response.status_code == 200, response.text
    assert response.json()["platform"] == here
    assert client.get(url(), params={"platform": " ", "python": " "}).json()["platform"] == here
    shown = CliRunner().invoke(cli, ["deps", "tiny-llama", "--platform", "", "--python", "", "--json"], obj=container)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["platform"] == here
