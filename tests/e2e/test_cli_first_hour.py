"""The first hour of a new user (issue 15): output width, pipes, headers, times, --json, wording, help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from domain.downloads.model import Download
from domain.enums import DownloadStatus, ModelType
from entrypoints.cli.main import cli
from tests.support.frontends import add_models, fake_container

MLXM = str(Path(sys.executable).with_name("mlxm"))


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN), ("tiny-whisper", ModelType.AUDIO))
    runner = CliRunner()

    def invoke(*args, ok=True, input=None, env=None):
        result = runner.invoke(cli, list(args), obj=container, input=input, env=env)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke, container, uow


def test_catalog_fits_an_80_column_terminal_and_names_source_kinds_and_priorities(env):
    invoke, _, _ = env
    out = invoke("catalog", env={"COLUMNS": "80"}).output
    assert out.strip() and max(len(line) for line in out.splitlines()) <= 80, out
    assert "hf:10" in out and "mirror:20" in out
    # Too narrow for every column unfolded: the Repo column (in `catalog show` and --json) goes first,
    # so the sources stay whole on their row.
    assert out.splitlines()[0].split() == ["ID", "Type", "Aliases", "Sources"], out
    assert any(line.startswith("qwen3-0.6b-4bit-v1") and line.rstrip().endswith("hf:10, mirror:20")
               for line in out.splitlines()), out
    # The HF source and the mirror serve the same repo: it appears once per model row, not twice.
    wide = invoke("catalog", env={"COLUMNS": "250"}).output
    assert wide.splitlines()[0].split() == ["ID", "Type", "Aliases", "Repo", "Sources"], wide
    row = next(line for line in wide.splitlines() if line.strip().startswith("qwen3-0.6b-4bit-v1"))
    assert row.count("mlx-community/Qwen3-0.6B-4bit") == 1, row


def test_table_cells_are_text_not_markup(tmp_path):
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path), "COLUMNS": "250"}
    done = subprocess.run([MLXM, "deps", "profiles"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "mlx[cpu]==" in done.stdout, done.stdout  # `[cpu]` was taken for a rich style tag and dropped


def test_a_closed_pipe_ends_quietly(tmp_path):
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path)}
    for args in (["catalog"], ["downloads"], ["--help"]):
        proc = subprocess.Popen([MLXM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        proc.stdout.close()  # like `| head -1` having exited: every write now fails with EPIPE
        _, err = proc.communicate(timeout=120)
        assert b"internal error" not in err and b"Traceback" not in err, err
        assert proc.returncode != 70


def _downloads(uow, count: int) -> None:
    with uow:
        for index in range(count):
            download = Download(f"model-{index}", status=DownloadStatus.COMPLETED, total_bytes=10, downloaded_bytes=10)
            uow.downloads.add(download)
        uow.downloads.add(Download("active-one", status=DownloadStatus.PAUSED, total_bytes=10, downloaded_bytes=4))
        uow.commit()


def test_downloads_have_a_header_and_hide_old_finished_pulls_unless_all(env):
    invoke, _, uow = env
    _downloads(uow, 14)
    out = invoke("downloads", env={"COLUMNS": "120"}).output
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "Status", "Model"]
    shown = [line for line in lines[1:] if line.split() and line.split()[0].isdigit()]
    assert len(shown) == 11 and any("active-one" in line for line in shown)  # 10 recent + the active one
    assert "4 older finished download(s) hidden" in out
    assert len(json.loads(invoke("downloads", "--all", "--json").output)) == 15
    assert len(json.loads(invoke("downloads", "--json").output)) == 11


def test_json_times_use_the_http_form():
    from entrypoints.cli.base import json_value

    moment = datetime(2026, 12, 1, 21, 54, 18, 123456, tzinfo=timezone.utc)
    assert json_value(moment) == "2026-12-01T21:54:18.123456Z"
    from pydantic import TypeAdapter  # the HTTP API's DTOs write times through pydantic

    assert TypeAdapter(datetime).dump_python(moment, mode="json") == "2026-12-01T21:54:18.123456Z"


def test_every_data_command_takes_json(env):
    invoke, _, _ = env
    assert json.loads(invoke("audit", "cleanup", "--json").output) == {"deleted": 0}
    added = json.loads(invoke("deps", "add-profile", "my-env", "1", "numpy==2.0.0", "--json").output)
    assert added["profile_id"] == "my-env" and added["requirements"] == ["numpy==2.0.0"]
    bound = json.loads(invoke("deps", "bind", "tiny-llama", "my-env", "--json").output)
    unbound = json.loads(invoke("deps", "unbind", bound["binding_id"], "--json").output)
    assert unbound["binding_id"] == bound["binding_id"]
    stored = _last_json(invoke("credentials", "set", "openai", "--json", input="sk-test-1234567890abcd\n"))
    assert stored["backend_type"] == "openai" and stored["api_key"].endswith("abcd")
    assert "1234567890" not in json.dumps(stored)
    assert json.loads(invoke("credentials", "rm", "openai", "--json").output) == {"removed": "openai"}


def _last_json(result) -> dict:
    text = result.output
    return json.loads(text[text.index("{"):])


def test_wording(env):
    invoke, _, _ = env
    error = invoke("speak", "tiny-llama", "hi", "-o", "/tmp/never.wav", ok=False).output
    assert "is a text-gen model" in error and "needs an audio model" in error, error
    assert "No models match." in invoke("search", "zzz").output
    assert "No models yet" in invoke("search").output or "tiny-llama" in invoke("search").output


def test_help_texts(env):
    invoke, _, _ = env
    for action in ("pause", "resume", "cancel"):
        text = invoke("downloads", action, "--help").output
        assert "DOWNLOAD_ID" in text and len(text.split("Options:")[0].strip().splitlines()) > 1, text
    search_help = invoke("search", "--help").output
    assert "non-negative number" in search_help and "9223372036854775807" not in search_help
    assert "--name" in invoke("import", "--help").output.split("Options:")[0]


def test_secret_from_a_pipe_prints_no_getpass_warning(tmp_path):
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path)}
    done = subprocess.run([MLXM, "credentials", "set", "openai"], input="sk-test-1234567890abcd\n",
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "GetPassWarning" not in done.stderr and "echo" not in done.stderr, done.stderr


def test_ps_on_401_says_how_to_give_a_key(env, tmp_path):
    from http.server import BaseHTTPRequestHandler, HTTPServer
    import threading

    class Refuse(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b'{"error": {"type": "authentication_error", "message": "missing API key"}}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        invoke, _, _ = env
        result = invoke("ps", "--url", f"http://127.0.0.1:{server.server_port}", ok=False,
                        env={"MLX_MANAGER_API_KEY": ""})
    finally:
        server.shutdown()
    assert result.exit_code != 0 and "MLX_MANAGER_API_KEY" in result.output and "Traceback" not in result.output


def test_profile_api_accepts_and_returns_model_and_model_id(env):
    from starlette.testclient import TestClient

    from entrypoints.http.app import create_app

    _, container, _ = env
    with TestClient(create_app(container), base_url="http://127.0.0.1") as client:
        made = client.post("/api/profiles", json={"name": "chatty", "model": "tiny-llama"})
        assert made.status_code == 201, made.text
        assert made.json()["model"] == made.json()["model_id"] == "tiny-llama"
        again = client.post("/api/profiles", json={"name": "chatty-2", "model_id": "tiny-llama"})
        assert again.status_code == 201 and again.json()["model"] == "tiny-llama"


def test_the_selection_is_the_default_model_everywhere(env):
    from starlette.testclient import TestClient

    from entrypoints.http.app import create_app

    invoke, container, _ = env
    invoke("select", "tiny-llama")
    ran = json.loads(invoke("run", "hello there", "--max-tokens", "3", "--json").output)
    assert ran["text"] and ran["usage"]["completion_tokens"] > 0
    assert "give [NAME] PROMPT" in invoke("run", "a", "b", "c", ok=False).output
    with TestClient(create_app(container), base_url="http://127.0.0.1") as client:
        for body in ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
                     {"model": "default", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}):
            answer = client.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["message"]["content"]
        chat = client.post("/api/chat", json={"messages": [{"role": "user", "content": "hi"}],
                                              "overrides": {"max_tokens": 3}})
        assert chat.status_code == 200, chat.text
        anthropic = client.post("/v1/messages", json={"max_tokens": 3, "messages": [{"role": "user",
                                                                                       "content": "hi"}]})
        assert anthropic.status_code == 200, anthropic.text
        assert client.post("/v1/chat/completions", json={"model": "", "messages": [
            {"role": "user", "content": "hi"}]}).status_code == 400


def test_with_nothing_selected_and_nothing_installed_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, _ = fake_container(tmp_path)
    result = CliRunner().invoke(cli, ["run", "hello"], obj=container)
    assert result.exit_code != 0 and "mlxm pull" in result.output and "Traceback" not in result.output


def test_show_takes_a_profile_name(env):
    invoke, _, _ = env
    invoke("profile", "create", "chatty", "tiny-llama", "--temperature", "0.2")
    shown = invoke("show", "chatty").output
    assert shown.splitlines()[0].startswith("profile chatty (inference) -> tiny-llama")
    assert "temperature=0.2" in shown.splitlines()[0]
    data = json.loads(invoke("show", "chatty", "--json").output)
    assert data["id"] == "tiny-llama" and data["profile"]["name"] == "chatty"


def test_rm_unloads_the_model_from_the_running_server(tmp_path, monkeypatch):
    import httpx

    from dependency_injector import providers

    from entrypoints.composition.settings import ManagerSettings
    from entrypoints.http.app import create_app
    from tests.support.frontends import serve_in_thread

    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN))
    with serve_in_thread(create_app(container)) as base:
        loaded = httpx.post(f"{base}/api/pool/load", json={"model": "tiny-llama"}, timeout=30)
        assert loaded.status_code == 200, loaded.text
        assert [m["model_id"] for m in httpx.get(f"{base}/api/pool").json()["loaded"]] == ["tiny-llama"]
        # The CLI is another process: its own container and pool over the same library, and it finds the
        # server where the settings say it serves.
        cli_container, _ = fake_container(tmp_path)
        cli_container.uow_factory.override(providers.Object(uow))
        cli_container.settings().manager = ManagerSettings(home=tmp_path, port=int(base.rsplit(":", 1)[1]))
        result = CliRunner().invoke(cli, ["rm", "tiny-llama"], obj=cli_container)
        assert result.exit_code == 0, result.output
        assert httpx.get(f"{base}/api/pool").json()["loaded"] == []
    # With no server at all, rm still works (the unload request is best effort).
    add_models(uow, tmp_path / "models", ("other-model", ModelType.TEXT_GEN))
    assert CliRunner().invoke(cli, ["rm", "other-model"], obj=cli_container).exit_code == 0
