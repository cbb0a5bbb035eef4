"""An adversarial sweep of the CLI as a careless or unlucky user meets it (the real console script).

Each case ended in "internal error" (exit 70, a multi-line SQLAlchemy message), a misleading line, or exit 0
on failure. Now: one `Error: ...` line, a non-zero exit, and the user's files as they were.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_hub import FakeHub
from tests.support.model_folders import write_model_folder

MLXM = Path(sys.executable).parent / "mlxm"
pytestmark = pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")


def _mlxm(*argv: str, home: Path | str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "MLX_MANAGER_HOME": str(home), "MLX_MANAGER_OFFLINE": "true", **env}
    for name in ("MLX_MANAGER_DATABASE_URL", "HF_ENDPOINT"):
        if name not in env:
            environment.pop(name, None)
    return subprocess.run([str(MLXM), *argv], env=environment, cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


def _one_error_line(result: subprocess.CompletedProcess, exit_code: int) -> str:
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    # click's usage errors come after its two lines of usage help ("Usage: ...", "Try '... --help'")
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not line.startswith(("Usage: ", "Try '"))]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("kind", ["folder", "symlink loop"])
def test_a_database_file_that_cannot_be_opened_is_one_line(tmp_path, kind):
    home = tmp_path / "home"
    home.mkdir()
    database = home / "mlxm.db"
    if kind == "folder":
        database.mkdir()
        (database / "keep.txt").write_text("mine")
    else:
        database.symlink_to(home / "other.db")
        (home / "other.db").symlink_to(database)
    line = _one_error_line(_mlxm("list", home=home), 7)
    assert f"cannot open the database {database}" in line
    if kind == "folder":
        assert (database / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("value, says", [
    ("", "is empty"),
    ("a file", "is not a folder"),
    ("a symlink loop", "is not a folder"),
    ("~no-such-user-mlxm/x", "cannot expand"),
])
def test_a_home_that_cannot_be_a_folder_is_an_invalid_setting(tmp_path, value, says):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    home: str = value
    if value == "a file":
        (tmp_path / "home").write_text("my notes")
        home = str(tmp_path / "home")
    elif value == "a symlink loop":
        (tmp_path / "a").symlink_to(tmp_path / "b")
        (tmp_path / "b").symlink_to(tmp_path / "a")
        home = str(tmp_path / "a")
    line = _one_error_line(_mlxm("list", home=home, cwd=cwd), 2)
    assert line.startswith("Error: invalid setting MLX_MANAGER_HOME=") and says in line, line
    assert list(cwd.iterdir()) == []  # an empty home was the current folder: no mlxm.db or staging here
    if value == "a file":
        assert (tmp_path / "home").read_text() == "my notes"


@pytest.mark.parametrize("url", ["nonsense", "mysql://u@localhost/x", "sqlite:///", "sqlite:///:memory:"])
def test_a_database_url_mlxm_cannot_use_is_an_invalid_setting(tmp_path, url):
    line = _one_error_line(_mlxm("list", home=tmp_path, MLX_MANAGER_DATABASE_URL=url), 2)
    assert line.startswith("Error: invalid setting MLX_MANAGER_DATABASE_URL="), line


def test_a_database_server_that_refuses_is_one_line_without_the_password(tmp_path):
    url = "postgresql+psycopg://mlxm:s3cret@127.0.0.1:1/mlxm"  # loopback port 1: nothing listens
    line = _one_error_line(_mlxm("list", home=tmp_path, MLX_MANAGER_DATABASE_URL=url), 7)
    assert "cannot connect to the database" in line and "s3cret" not in line


@pytest.mark.parametrize("endpoint", ["http://[::1", "http://127.0.0.1:99999", "notaurl"])
def test_a_bad_hf_endpoint_is_a_source_error_naming_it(tmp_path, endpoint):
    result = _mlxm("pull", "org/tiny", home=tmp_path, HF_ENDPOINT=endpoint, MLX_MANAGER_OFFLINE="false")
    line = _one_error_line(result, 6)
    assert f"{endpoint!r} (HF_ENDPOINT) is not an http(s) URL" in line


def test_check_updates_that_could_not_check_exits_non_zero(tmp_path):
    with FakeHub() as hub:
        hub.add_repo("org/tiny", {"config.json": b"{}", "model.safetensors": b"\0" * 64})
        pulled = _mlxm("pull", "-q", "org/tiny", home=tmp_path, HF_ENDPOINT=hub.url, MLX_MANAGER_OFFLINE="false")
        assert pulled.returncode == 0, pulled.stderr
        assert _mlxm("check-updates", home=tmp_path, HF_ENDPOINT=hub.url, MLX_MANAGER_OFFLINE="false").returncode == 0
    result = _mlxm("check-updates", "--json", home=tmp_path, HF_ENDPOINT="http://[::1", MLX_MANAGER_OFFLINE="false")
    assert result.returncode == 6, result.stderr
    assert "not an http(s) URL" in __import__("json").loads(result.stdout)[0]["error"]


def test_run_of_a_model_whose_config_the_architecture_cannot_use_is_one_line(tmp_path):
    folder = write_model_folder(tmp_path / "src" / "tiny")  # a llama config.json without the layer sizes
    assert _mlxm("import", str(folder), "--name", "tiny", home=tmp_path / "home").returncode == 0
    line = _one_error_line(_mlxm("run", "tiny", "hi", home=tmp_path / "home"), 2)
    assert "tiny: mlx-lm cannot load this model" in line
    assert (folder / "config.json").is_file()


@pytest.mark.parametrize("argv, says", [
    (["users", "add", "a@example.com", "--with-password"], "no password on standard input"),
    (["credentials", "set", "openai"], "no api key on standard input"),
])
def test_a_secret_prompt_with_standard_input_closed_is_a_usage_error(tmp_path, argv, says):
    environment = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path)}
    # `mlxm ... <&-`: Python starts with sys.stdin None.
    result = subprocess.run([str(MLXM), *argv], env=environment, capture_output=True, text=True, timeout=60,
                            preexec_fn=lambda: os.close(0))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()][-1].startswith(f"Error: {says}")


def test_a_disk_that_fills_during_a_pull_stops_it_at_once_and_a_resume_finishes_it(tmp_path):
    import resource
    import signal

    def file_size_limit():  # writes past 1 MiB fail with EFBIG, as a full disk fails with ENOSPC
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))

    weights = bytes(range(256)) * 8192  # 2 MiB
    with FakeHub() as hub:
        hub.add_repo("org/big", {"config.json": b"{}", "model.safetensors": weights})
        environment = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path), "HF_ENDPOINT": hub.url}
        environment.pop("MLX_MANAGER_DATABASE_URL", None)
        result = subprocess.run([str(MLXM), "pull", "-q", "org/big"], env=environment, capture_output=True,
                                text=True, timeout=120, stdin=subprocess.DEVNULL, preexec_fn=file_size_limit)
        line = _one_error_line(result, 2)
        assert "model.safetensors: cannot write" in line and "connection failed" not in line, line
        assert len(hub.requests_for("model.safetensors", "GET")) == 1  # not retried as if the network failed
        resumed = _mlxm("downloads", "resume", "1", home=tmp_path, HF_ENDPOINT=hub.url, MLX_MANAGER_OFFLINE="false")
        assert resumed.returncode == 0, resumed.stderr
    assert _mlxm("verify", "org/big", home=tmp_path).returncode == 0


def test_serve_on_a_port_another_process_listens_on_is_one_line_before_start_up(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _mlxm("serve", "--port", str(port), home=tmp_path)
    line = _one_error_line(result, 7)
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in line
    assert "Application startup" not in result.stderr  # refused before the app (and its models) started


@pytest.mark.parametrize("name, value", [("MLX_MANAGER_LOG_LEVEL", "loud"), ("MLX_MANAGER_LOG_FORMAT", "xml")])
def test_serve_with_an_unknown_log_level_or_format_is_an_invalid_setting(tmp_path, name, value):
    import socket

    # MLX_MANAGER_LOG_LEVEL=loud was a KeyError in uvicorn (exit 70); LOG_FORMAT=xml was quietly "console".
    with socket.socket() as taken:  # should the setting pass, the server still cannot start
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = _mlxm("serve", "--port", str(taken.getsockname()[1]), home=tmp_path, **{name: value})
    line = _one_error_line(result, 2)
    assert line.startswith(f"Error: invalid setting {name}='{value}'"), line


@pytest.mark.parametrize("columns", ["0", "1"])
def test_a_tiny_columns_value_still_prints_the_library(tmp_path, columns):
    folder = write_model_folder(tmp_path / "src" / "tiny")
    assert _mlxm("import", str(folder), "--name", "tiny", home=tmp_path / "home").returncode == 0
    result = _mlxm("list", home=tmp_path / "home", COLUMNS=columns)  # COLUMNS=0 printed nothing, exit 0
    assert result.returncode == 0 and "tiny" in result.stdout, result.stdout


def test_output_the_terminal_encoding_cannot_show_is_one_line(tmp_path):
    folder = write_model_folder(tmp_path / "src" / "tiny")
    home = tmp_path / "home"
    assert _mlxm("import", str(folder), "--name", "tiny", home=home).returncode == 0
    assert _mlxm("edit", "tiny", "--description", "fast \N{GRINNING FACE}", home=home).returncode == 0
    line = _one_error_line(_mlxm("show", "tiny", home=home, PYTHONIOENCODING="latin-1"), 2)
    assert "encoding (latin-1) cannot show" in line and "PYTHONIOENCODING=utf-8" in line


def test_a_resume_that_fails_again_exits_non_zero(tmp_path):
    from tests.support.fake_hub import Fault

    with FakeHub() as hub:
        hub.add_repo("org/tiny", {"config.json": b"{}", "model.safetensors": b"\1" * 4096})
        hub.inject("model.safetensors", Fault.drop_connection_after(100))
        env = {"HF_ENDPOINT": hub.url, "MLX_MANAGER_OFFLINE": "false", "MLX_MANAGER_DOWNLOAD_RETRIES": "0"}
        assert _mlxm("pull", "-q", "org/tiny", home=tmp_path, **env).returncode == 6
        line = _one_error_line(_mlxm("downloads", "resume", "1", home=tmp_path, **env), 6)  # was exit 0
        assert line.startswith("Error: download 1 (org/tiny) failed: ") and "connection closed" in line
        hub.clear_faults()
        assert _mlxm("downloads", "resume", "1", home=tmp_path, **env).returncode == 0


@pytest.mark.parametrize("body", [b"<html>hello</html>", b"{}"])
def test_ps_and_unload_against_a_server_that_is_not_mlxm_are_one_line(tmp_path, body):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotMlxm(BaseHTTPRequestHandler):
        def _answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotMlxm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for argv in (["ps", "--url", url], ["unload", "tiny", "--url", url]):
            line = _one_error_line(_mlxm(*argv, home=tmp_path), 7)  # was JSONDecodeError / KeyError, exit 70
            assert f"{url} is not an mlxm server" in line
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("command", [["db", "reports"], ["db", "upgrade"]])
@pytest.mark.parametrize("damage", ["garbage", "folder"])
def test_db_commands_on_a_damaged_or_unopenable_database_are_one_line(tmp_path, command, damage):
    database = tmp_path / "mlxm.db"
    if damage == "garbage":
        database.write_bytes(b"\x13not sqlite\x00" * 400)
    else:
        database.mkdir()
    before = database.read_bytes() if damage == "garbage" else None
    line = _one_error_line(_mlxm(*command, home=tmp_path), 7)  # reports: exit 70; upgrade: exit 1
    assert ("the database is damaged" if damage == "garbage" else "cannot open the database") in line
    assert "sqlalche.me" not in line
    if before is not None:
        assert database.read_bytes() == before


@pytest.mark.parametrize("base_url", ["http://[::1", "http://127.0.0.1:99999", "http://:80"])
def test_credentials_with_a_base_url_that_is_not_a_url_are_refused(tmp_path, base_url):
    result = subprocess.run([str(MLXM), "credentials", "set", "openai_compatible", "--base-url", base_url],
                            env={**os.environ, "MLX_MANAGER_HOME": str(tmp_path)}, input="sk-test\n",
                            capture_output=True, text=True, timeout=60)
    line = _one_error_line(result, 2)  # `http://[::1` was a ValueError (exit 70); the others were stored
    assert line == f"Error: base_url: must be an http(s) URL, got {base_url!r}"


@pytest.mark.parametrize("mirror", ["http://[::1", "http://127.0.0.1:99999"])
def test_a_bad_mirror_base_url_is_a_source_error_naming_it(tmp_path, mirror):
    with FakeHub() as hub:  # holds no repo: the catalog entry's Hugging Face source fails, then its mirror
        result = _mlxm("pull", "-q", "qwen3-0.6b", home=tmp_path, HF_ENDPOINT=hub.url, MLX_MANAGER_OFFLINE="false",
                       MLX_MIRROR_BASE_URL=mirror, MLX_MANAGER_DOWNLOAD_RETRIES="0")
    line = _one_error_line(result, 6)  # was ValueError, exit 70
    assert f"the mirror {mirror!r} (MLX_MIRROR_BASE_URL) is not an http(s) URL" in line


def _deep_json(levels: int = 100_000) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("case", ["safetensors header", "response format", "hostfile", "mapping config"])
def test_json_nested_deeper_than_the_decoder_goes_is_one_line(tmp_path, case):
    import struct

    home = tmp_path / "home"
    if case == "safetensors header":  # a hostile download: was RecursionError, exit 70
        header = _deep_json().encode()
        weights = tmp_path / "evil.safetensors"
        weights.write_bytes(struct.pack("<Q", len(header)) + header)
        argv, says = ["import", str(weights), "--name", "evil"], "not a safetensors file (header nested too deeply)"
    elif case == "response format":
        folder = write_model_folder(tmp_path / "src" / "tiny")
        assert _mlxm("import", str(folder), "--name", "tiny", home=home).returncode == 0
        argv = ["profile", "create", "p", "tiny", "--response-format", '{"a":' * 20_000 + "1" + "}" * 20_000]
        says = "JSON nested deeper than 64 levels"
    elif case == "hostfile":
        (tmp_path / "hosts.json").write_text(_deep_json())
        argv, says = ["serve", "--hosts", str(tmp_path / "hosts.json")], "is not JSON"
    else:
        (home / "mapping-configs").mkdir(parents=True)
        (home / "mapping-configs" / "deep.json").write_text(_deep_json())
        argv, says = ["link", "preview", "deep"], "cannot read"
    line = _one_error_line(_mlxm(*argv, home=home), 2)
    assert says in line, line
