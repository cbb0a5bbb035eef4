"""Issue 12 item 8: keys in logs, the account-state oracle, a deleted or replaced database file,
a damaged database file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from entrypoints.http.app import create_app
from tests.support.auth_server import sqlite_container

MLXM = Path(sys.executable).parent / "mlxm"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")
def test_a_raw_key_in_a_path_never_reaches_the_log(tmp_path):
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path), "MLX_MANAGER_LOG_FORMAT": "json"}
    created = subprocess.run([str(MLXM), "keys", "create", "laptop", "--json"], env=env, capture_output=True,
                             text=True, timeout=60)
    raw = json.loads(created.stdout)["key"]
    port = _free_port()
    process = subprocess.Popen([str(MLXM), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        headers = {"authorization": f"Bearer {raw}"}
        assert httpx.delete(f"{url}/api/keys/{raw}", headers=headers, timeout=10).status_code in (200, 401, 403)
        httpx.get(f"{url}/api/nothing/{raw}?api_key={raw}", timeout=10)
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert raw not in stderr
    assert f"/api/keys/{raw[:13]}...[redacted]" in stderr


def test_redaction_covers_paths_queries_and_other_credentials():
    from entrypoints.logging import redact

    key = "mlxm-" + "A" * 43
    assert redact(f"/api/keys/{key}") == f"/api/keys/{key[:13]}...[redacted]"
    assert redact("/v1/models?api_key=secret123&x=1") == "/v1/models?api_key=[redacted]&x=1"
    assert redact("GET https://api.openai.com/v1?key=abc") == "GET https://api.openai.com/v1?key=[redacted]"
    assert "sk-proj" not in redact("credential sk-proj-abcdefghijklmnop")
    assert "hf_abcdefghijklmnopqrst" not in redact("token hf_abcdefghijklmnopqrst")
    assert redact("Authorization: Bearer abcdefghijkl") == "Authorization: Bearer ...[redacted]"
    assert redact("/api/keys/mlxm-abcd1234") == "/api/keys/mlxm-abcd1234"  # a listed prefix is not a secret


@pytest.fixture
def live(tmp_path):
    container = sqlite_container(tmp_path)
    admin = container.api_key_service().create("owner").secret
    with TestClient(create_app(container)) as client:
        yield client, container, tmp_path, {"authorization": f"Bearer {admin}"}


def test_pending_and_disabled_accounts_answer_401_like_a_wrong_password(live):
    client, container, _, _ = live
    users = container.user_service()
    users.register("pending@example.com", "right-password")
    users.register("gone@example.com", "right-password", approved=True)
    users.disable("gone@example.com")
    for email, state in (("pending@example.com", "pending"), ("gone@example.com", "disabled")):
        right = client.post("/api/auth/login", json={"email": email, "password": "right-password"})
        wrong = client.post("/api/auth/login", json={"email": email, "password": "wrong-password"})
        nobody = client.post("/api/auth/login", json={"email": "x" + email, "password": "wrong-password"})
        assert right.status_code == wrong.status_code == nobody.status_code == 401
        assert state in right.json()["error"]["message"]  # the state only for the right password
        assert wrong.json() == nobody.json() and state not in wrong.text


def _write_mapping(client, headers, pattern):
    return client.post("/api/mappings", json={"model_pattern": pattern, "backend_type": "openai"}, headers=headers)


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_vanished_or_replaced_database_file_is_503_until_restart(live, how):
    client, _, home, admin = live
    assert _write_mapping(client, admin, "before").status_code == 201
    db = home / "mlxm.db"
    if how == "replaced":
        shutil.copy(db, home / "copy.db")
    for path in home.glob("mlxm.db*"):
        path.unlink()
    if how == "replaced":
        os.replace(home / "copy.db", db)  # same content, another file
    for _ in range(2):  # and it stays so
        refused = _write_mapping(client, admin, "after")
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["type"] == "unavailable" and ("deleted" if how == "deleted" else "replaced") in error["message"]
    assert client.get("/api/models").status_code == 503


def test_a_damaged_database_file_is_503_with_the_reason(live):
    client, container, home, admin = live
    chat = {"model": "tiny-local", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    assert client.post("/v1/chat/completions", json=chat).status_code == 200
    container.audit_sink().flush()
    db = home / "mlxm.db"
    # Close the pooled connections (the last close checkpoints the WAL into the file), then damage every
    # page behind the 100-byte header in place: same inode, so this is damage, not a replacement.
    container.database_engine().dispose()
    size = db.stat().st_size
    with open(db, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x5a" * (size - 100))
    response = client.post("/v1/chat/completions", json=chat)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "unavailable" and "damaged" in error["message"]
    assert "not a database" in error["message"] or "malformed" in error["message"]


@pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")
def test_a_database_damaged_before_start_is_a_clear_error_not_an_internal_one(tmp_path):
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path)}
    assert subprocess.run([str(MLXM), "list"], env=env, capture_output=True, timeout=60).returncode == 0
    db = tmp_path / "mlxm.db"
    size = db.stat().st_size
    with open(db, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x5a" * (size - 100))
    for argv in (["list"], ["serve", "--port", str(_free_port())]):
        result = subprocess.run([str(MLXM), *argv], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 7, result.stderr  # unavailable, not 70 (internal error)
        assert "damaged" in result.stderr and "internal error" not in result.stderr
