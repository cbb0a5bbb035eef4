"""`mlxm service`: the generated LaunchAgent plist / systemd unit, read back by `status`.

The launchctl/systemctl runner is replaced by a recorder: nothing is loaded into the host's services.
"""

import json
import plistlib
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import entrypoints.cli.service as service_cli
from adapters.system.login_service import LABEL, parse_unit
from entrypoints.cli.main import cli


@pytest.fixture
def svc(tmp_path, monkeypatch):
    user_home = tmp_path / "user"
    user_home.mkdir()
    mlx_home = tmp_path / "mlx home"
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.setenv("MLX_MANAGER_HOME", str(mlx_home))
    monkeypatch.setenv("MLX_MANAGER_PORT", "10555")
    monkeypatch.setenv("MLX_SERVER_MAX_MODELS", "2")
    monkeypatch.setenv("UNRELATED_SECRET", "x")
    calls: list[list[str]] = []
    answers: dict[str, tuple[int, str]] = {}

    def runner(argv):
        calls.append(list(argv))
        return answers.get(argv[1] if argv[0] == "launchctl" else argv[2], (0, ""))

    monkeypatch.setattr(service_cli, "command_runner", lambda: runner)

    def invoke(*args, ok=True):
        result = CliRunner().invoke(cli, list(args))
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke, calls, answers, user_home, mlx_home


def test_macos_plist_runs_serve_with_this_home_and_settings_and_status_reads_it_back(svc):
    invoke, calls, answers, user_home, mlx_home = svc
    invoke("service", "install", "--platform", "macos")
    path = user_home / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == LABEL
    assert plist["ProgramArguments"][1:] == ["serve"]
    assert plist["ProgramArguments"][0] == str(Path(sys.executable).with_name("mlxm"))
    env = plist["EnvironmentVariables"]
    assert env["MLX_MANAGER_HOME"] == str(mlx_home)
    assert env["MLX_MANAGER_PORT"] == "10555" and env["MLX_SERVER_MAX_MODELS"] == "2"
    assert "UNRELATED_SECRET" not in env
    assert plist["RunAtLoad"] is True
    assert plist["StandardOutPath"] == str(mlx_home / "logs" / "serve.out.log")
    assert plist["StandardErrorPath"] == str(mlx_home / "logs" / "serve.err.log")
    assert (mlx_home / "logs").is_dir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the environment may hold keys
    assert calls == [["launchctl", "load", "-w", str(path)]]

    answers["list"] = (0, '{ "PID" = 123; }')
    report = json.loads(invoke("service", "status", "--platform", "macos", "--json").output)
    assert report["installed"] is True and report["loaded"] is True
    assert report["home"] == str(mlx_home) and report["program"][1:] == ["serve"]
    assert "MLX_MANAGER_PORT" in report["settings"]
    assert calls[-1] == ["launchctl", "list", LABEL]
    assert "loaded:    yes" in invoke("service", "status", "--platform", "macos").output

    assert "removed" in invoke("service", "uninstall", "--platform", "macos").output
    assert not path.exists()
    assert ["launchctl", "unload", "-w", str(path)] in calls
    answers["list"] = (113, "Could not find service")
    assert "Not installed" in invoke("service", "status", "--platform", "macos").output


def test_linux_unit_runs_serve_and_status_reads_it_back(svc):
    invoke, calls, answers, user_home, mlx_home = svc
    invoke("service", "install", "--platform", "linux")
    path = user_home / ".config" / "systemd" / "user" / "mlxm.service"
    text = path.read_text()
    assert "WantedBy=default.target" in text and "Restart=on-failure" in text
    assert f"StandardOutput=append:{mlx_home / 'logs' / 'serve.out.log'}" in text
    unit = parse_unit(text)
    assert unit["program"][1:] == ["serve"]
    assert unit["environment"]["MLX_MANAGER_HOME"] == str(mlx_home)  # a path with a space survives quoting
    assert unit["environment"]["MLX_SERVER_MAX_MODELS"] == "2"
    assert calls == [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", "mlxm.service"]]

    answers["is-active"] = (3, "inactive")
    report = json.loads(invoke("service", "status", "--platform", "linux", "--json").output)
    assert report["installed"] is True and report["loaded"] is False and report["detail"] == "inactive"
    assert report["home"] == str(mlx_home) and report["stderr_log"].endswith("serve.err.log")
    invoke("service", "uninstall", "--platform", "linux")
    assert not path.exists() and ["systemctl", "--user", "disable", "--now", "mlxm.service"] in calls


def test_no_load_writes_only_and_a_failed_load_is_an_error(svc):
    invoke, calls, answers, user_home, _ = svc
    out = invoke("service", "install", "--platform", "linux", "--no-load").output
    assert calls == [] and "not loaded; to start it" in out
    answers["enable"] = (1, "Failed to connect to bus")
    failed = invoke("service", "install", "--platform", "linux", ok=False)
    assert failed.exit_code != 0 and "Traceback" not in failed.output
    assert "Failed to connect to bus" in failed.output
    assert (user_home / ".config" / "systemd" / "user" / "mlxm.service").exists()  # the file stays


def test_uninstall_when_nothing_is_installed(svc):
    invoke, calls, *_ = svc
    assert "No service installed" in invoke("service", "uninstall", "--platform", "macos").output
    assert calls == []


def test_launchd_installed_on_auto_start_profiles_follows_the_service(svc, tmp_path, monkeypatch):
    from starlette.testclient import TestClient

    from adapters.system.login_service import current_platform
    from entrypoints.composition.container import Container
    from entrypoints.http.app import create_app
    from tests.support.model_folders import write_model_folder

    invoke, calls, answers, user_home, mlx_home = svc
    platform = current_platform()
    if platform not in ("macos", "linux"):
        pytest.skip(f"no login service on {platform}")
    invoke("import", str(write_model_folder(tmp_path / "tiny")), "--name", "tiny")
    invoke("profile", "create", "boot", "tiny", "--auto-start")
    invoke("profile", "create", "plain", "tiny")

    def flags() -> dict:
        cli_view = {p["name"]: p["launchd_installed"] for p in json.loads(invoke("profile", "list", "--json").output)}
        http = TestClient(create_app(Container())).get("/api/profiles")
        assert http.status_code == 200
        assert {p["name"]: p["launchd_installed"] for p in http.json()["data"]} == cli_view
        return cli_view

    assert flags() == {"boot": False, "plain": False}
    assert "no login service for this home" in invoke("profile", "show", "boot").output
    invoke("service", "install", "--platform", platform, "--no-load")
    assert flags() == {"boot": True, "plain": False}  # only an auto_start profile starts with the service
    assert json.loads(invoke("profile", "show", "boot", "--json").output)["launchd_installed"] is True
    assert json.loads(invoke("show", "boot", "--json").output)["profile"]["launchd_installed"] is True
    assert "(login service installed)" in invoke("profile", "show", "boot").output

    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path / "another home"))  # a service for another home
    invoke("service", "install", "--platform", platform, "--no-load")
    monkeypatch.setenv("MLX_MANAGER_HOME", str(mlx_home))
    assert flags() == {"boot": False, "plain": False}
    invoke("service", "uninstall", "--platform", platform, "--no-unload")
    assert flags() == {"boot": False, "plain": False}


def test_the_linux_unit_is_one_systemd_accepts_for_a_home_with_a_space_and_a_percent(svc, tmp_path, monkeypatch):
    import shutil
    import subprocess

    invoke, calls, answers, user_home, _ = svc
    mlx_home = tmp_path / "50% of my models"
    monkeypatch.setenv("MLX_MANAGER_HOME", str(mlx_home))
    invoke("service", "install", "--platform", "linux", "--no-load")
    path = user_home / ".config" / "systemd" / "user" / "mlxm.service"
    text = path.read_text()
    # systemd takes WorkingDirectory= unquoted, and expands `%` specifiers (a literal one is `%%`)
    assert f"WorkingDirectory={str(mlx_home).replace('%', '%%')}\n" in text
    unit = parse_unit(text)
    assert unit["home"] == str(mlx_home) and unit["environment"]["MLX_MANAGER_HOME"] == str(mlx_home)
    assert unit["stdout_log"] == str(mlx_home / "logs" / "serve.out.log")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the unit was checked by its text only")
    checked = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "mlxm.service" not in checked.stderr, checked.stderr


def test_status_of_a_hand_edited_unit_with_an_unclosed_quote_reads_it_as_it_stands(svc):
    invoke, calls, answers, user_home, _ = svc
    path = user_home / ".config" / "systemd" / "user" / "mlxm.service"
    path.parent.mkdir(parents=True)
    path.write_text('[Service]\nExecStart="/opt/mlxm serve\nEnvironment="MLX_MANAGER_PORT=1\n')
    result = invoke("service", "status", "--platform", "linux")  # was ValueError: No closing quotation (exit 70)
    assert 'runs:      "/opt/mlxm serve' in result.output


@pytest.mark.parametrize("content", [b"garbage", plistlib.dumps(["not", "a", "dict"])])
def test_status_of_a_plist_that_is_not_ours_says_so(svc, content):
    invoke, calls, answers, user_home, _ = svc
    path = user_home / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    result = invoke("service", "status", "--platform", "macos")  # was InvalidFileException (exit 70)
    assert "is not a readable property list" in result.output
