"""`mlxm downloads pause|resume|cancel ID` when another process runs the pull: a real `mlxm serve`
subprocess, or a `mlxm pull` in another CLI process. The loopback hub is slowed down so the pull is
still running when the command arrives."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.fake_hub import FakeHub, Fault

MLXM = Path(sys.executable).parent / "mlxm"
SIZE = 3_000_000
pytestmark = pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.add_repo("org/big", {"config.json": b'{"model_type": "llama"}', "model.safetensors": os.urandom(SIZE)})
        h.inject("model.safetensors", Fault.slow(bytes_per_sec=100_000))  # ~30 s per full transfer
        yield h


def _env(home: Path, hub: FakeHub) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLX_", "HF_"))}
    env.update(MLX_MANAGER_HOME=str(home), HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1",
               HF_HUB_DISABLE_TELEMETRY="1")
    return env


def _mlxm(env, *args, timeout=90):
    return subprocess.run([str(MLXM), *args], env=env, capture_output=True, text=True, timeout=timeout)


def _partial_bytes(home: Path) -> int:
    total = 0
    for part in (home / "staging").rglob("*.part"):
        try:
            total += part.stat().st_size
        except FileNotFoundError:  # verified and renamed to its final name since the listing
            pass
    return total


def _wait_for(predicate, what: str, timeout: float = 60, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None:
            assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_pause_resume_cancel_of_a_pull_in_mlxm_serve(hub, tmp_path) -> None:
    env = _env(tmp_path, hub)
    port = _free_port()
    server = subprocess.Popen([str(MLXM), "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: _healthy(url), "mlxm serve did not come up", timeout=120, proc=server)
        started = httpx.post(f"{url}/api/downloads", json={"model": "org/big"}, timeout=30)
        assert started.status_code == 202, started.text
        download_id = started.json()["id"]
        _wait_for(lambda: _partial_bytes(tmp_path) > 100_000, "no partial bytes", proc=server)

        paused = _mlxm(env, "downloads", "pause", str(download_id), "--json")
        assert paused.returncode == 0, paused.stderr  # was: "being downloaded by another mlxm process"
        assert json.loads(paused.stdout)["status"] == "paused"
        row = httpx.get(f"{url}/api/downloads/{download_id}", timeout=10).json()
        assert row["status"] == "paused"  # the server's own view: its transfer stopped
        kept = _partial_bytes(tmp_path)
        assert 0 < kept < SIZE and row["downloaded_bytes"] >= kept

        resumed = httpx.post(f"{url}/api/downloads/{download_id}/resume", timeout=30)
        assert resumed.status_code == 202
        _wait_for(lambda: _partial_bytes(tmp_path) > kept, "the resumed pull did not continue", proc=server)
        same = _mlxm(env, "downloads", "resume", str(download_id), "--json")  # running in the server: no-op
        assert same.returncode == 0 and json.loads(same.stdout)["status"] == "downloading", same.stderr

        cancelled = _mlxm(env, "downloads", "cancel", str(download_id))
        assert cancelled.returncode == 0, cancelled.stderr
        assert cancelled.stdout.strip() == f"download {download_id} (org/big): cancelled"
        assert httpx.get(f"{url}/api/downloads/{download_id}", timeout=10).json()["status"] == "cancelled"
        assert _partial_bytes(tmp_path) == 0 and not (tmp_path / "models" / "org" / "big").exists()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, stderr = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            _, stderr = server.communicate()
    assert server.returncode == 0, stderr[-3000:]


def test_a_pull_in_another_cli_is_cancelled_from_a_second_cli(hub, tmp_path) -> None:
    env = _env(tmp_path, hub)
    puller = subprocess.Popen([str(MLXM), "pull", "org/big", "--quiet"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _partial_bytes(tmp_path) > 100_000, "no partial bytes", proc=puller)
        listed = _mlxm(env, "downloads", "--json")
        assert listed.returncode == 0, listed.stderr
        [row] = [d for d in json.loads(listed.stdout) if d["status"] == "downloading"]

        cancelled = _mlxm(env, "downloads", "cancel", str(row["id"]), "--json")
        assert cancelled.returncode == 0, cancelled.stderr
        assert json.loads(cancelled.stdout)["status"] == "cancelled"
        out, err = puller.communicate(timeout=60)
    finally:
        if puller.poll() is None:
            puller.kill()
            puller.communicate()
    assert puller.returncode == 8, err  # the pulling process stopped and says why, in one line
    assert err.strip() == "Error: the pull of org/big was cancelled from another mlxm command"
    assert _partial_bytes(tmp_path) == 0
    assert json.loads(_mlxm(env, "downloads", "--json").stdout)[-1]["status"] == "cancelled"


def test_a_pull_in_another_cli_is_paused_and_a_pull_continues_it(hub, tmp_path) -> None:
    env = _env(tmp_path, hub)
    puller = subprocess.Popen([str(MLXM), "pull", "org/big", "--quiet"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _partial_bytes(tmp_path) > 100_000, "no partial bytes", proc=puller)
        [row] = [d for d in json.loads(_mlxm(env, "downloads", "--json").stdout) if d["status"] == "downloading"]
        paused = _mlxm(env, "downloads", "pause", str(row["id"]))
        assert paused.returncode == 0 and paused.stdout.strip() == f"download {row['id']} (org/big): paused", paused.stderr
        _, err = puller.communicate(timeout=60)
    finally:
        if puller.poll() is None:
            puller.kill()
            puller.communicate()
    assert puller.returncode == 8 and "was paused from another mlxm command; `mlxm pull org/big` continues it" in err
    kept = _partial_bytes(tmp_path)
    assert kept > 0
    hub.clear_faults()
    hub.clear_log()
    finished = _mlxm(env, "pull", "org/big", "--json")
    assert finished.returncode == 0, finished.stderr
    ranges = [r.headers.get("Range") for r in hub.requests_for("model.safetensors", "GET")]
    assert ranges == [f"bytes={kept}-"]  # only the rest was fetched


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
