"""`mlxm serve` as users start it: a fresh process on loopback answers /v1/models and /openapi.json."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mlxm_serve_answers_and_stops_cleanly(tmp_path):
    port = _free_port()
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path), "MLX_MANAGER_LOG_FORMAT": "json"}
    exe = Path(sys.executable).with_name("mlxm")
    process = subprocess.Popen([str(exe), "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlxm serve did not come up"
            time.sleep(0.1)
        models = httpx.get(f"{url}/v1/models", headers={"X-Request-ID": "smoke-1"}, timeout=10)
        assert models.status_code == 200 and models.json() == {"object": "list", "data": []}
        assert models.headers["x-request-id"] == "smoke-1"
        assert "/v1/chat/completions" in httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]
        missing = httpx.post(f"{url}/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]})
        assert missing.status_code == 404 and missing.json()["error"]["type"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    assert process.returncode == 0, stderr
    # JSON logs: the request line carries the request id the client sent.
    import json

    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "request" and line.get("request_id") == "smoke-1" for line in lines), stderr[-2000:]
