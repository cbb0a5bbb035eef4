"""`mlxm pull` as a real process: kill -9 mid-pull, rerun, only the remainder is fetched.

Uses the console script (`.venv/bin/mlxm`), SQLite under MLX_MANAGER_HOME=tmp and
HF_ENDPOINT pointing at the loopback hub.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.fake_hub import FakeHub, Fault

MLXM = Path(sys.executable).parent / "mlxm"
SIZE = 3_000_000


@pytest.fixture
def hub():
    with FakeHub() as h:
        yield h


def _env(home: Path, hub: FakeHub) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLX_", "HF_"))}
    env.update(MLX_MANAGER_HOME=str(home), HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1",
               HF_HUB_DISABLE_TELEMETRY="1")
    return env


def _mlxm(env, *args, timeout=60):
    return subprocess.run([str(MLXM), *args], env=env, capture_output=True, text=True, timeout=timeout)


def _settled(read, quiet_seconds: float = 0.3):
    value = read()
    while True:
        time.sleep(quiet_seconds)
        now = read()
        if now == value:
            return value
        value = now


def _partial_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in (home / "staging").rglob("*.part")) if (home / "staging").exists() else 0


@pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")
def test_kill_9_mid_pull_then_rerun_resumes(hub, tmp_path) -> None:
    weights = os.urandom(SIZE)
    hub.add_repo("org/big", {"config.json": b'{"model_type": "llama"}', "model.safetensors": weights})
    hub.inject("model.safetensors", Fault.slow(bytes_per_sec=1_500_000, times=1))
    env = _env(tmp_path, hub)

    proc = subprocess.Popen([str(MLXM), "pull", "org/big", "--quiet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while _partial_bytes(tmp_path) < 500_000:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no partial bytes appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    kept = _partial_bytes(tmp_path)
    assert 0 < kept < SIZE
    assert not (tmp_path / "models" / "org" / "big").exists()  # nothing looks installed after the crash
    served_first = _settled(lambda: hub.bytes_served["org/big/model.safetensors"])  # last write to the dead socket
    hub.clear_log()

    result = _mlxm(env, "pull", "org/big", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert Path(data["local_path"], "model.safetensors").read_bytes() == weights
    refetched = hub.bytes_served["org/big/model.safetensors"]
    assert refetched <= SIZE - kept + SIZE // 100  # only the remainder (+ <1%) came over the wire
    resumed = [r.headers.get("Range") for r in hub.requests_for("model.safetensors", "GET")]
    assert resumed == [f"bytes={kept}-"]  # asked for exactly the bytes that were not on disk

    # The crashed run's row was reconciled (downloading -> paused) and reused; it is completed now.
    with sqlite3.connect(tmp_path / "mlxm.db") as db:
        assert [r[0] for r in db.execute("SELECT status FROM downloads")] == ["completed"]
    assert [f["sha256"] for f in data["files"] if f["path"] == "model.safetensors"] == [
        hashlib.sha256(weights).hexdigest()]


@pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")
def test_cli_verify_reports_tampering_with_nonzero_exit(hub, tmp_path) -> None:
    hub.add_repo("org/tiny", {"config.json": b'{"model_type": "llama"}', "model.safetensors": os.urandom(4096)})
    env = _env(tmp_path, hub)
    assert _mlxm(env, "pull", "org/tiny", "--quiet").returncode == 0
    target = tmp_path / "models" / "org" / "tiny" / "model.safetensors"
    target.write_bytes(b"\0" * 4096)
    result = _mlxm(env, "verify", "--json")
    assert result.returncode != 0
    report = json.loads(result.stdout)
    assert report[0]["ok"] is False and "model.safetensors: expected sha256" in report[0]["problems"][0]


@pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")
def test_cli_errors_are_one_line(hub, tmp_path) -> None:
    env = _env(tmp_path, hub)
    result = _mlxm(env, "pull", "org/does-not-exist")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "repository org/does-not-exist not found" in lines[0]
    result = _mlxm(env, "update")
    assert result.returncode != 0 and "NAME or --all" in result.stderr


@pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")
def test_two_processes_pulling_one_model_fetch_it_once(hub, tmp_path) -> None:
    weights = os.urandom(1_000_000)
    hub.add_repo("org/shared", {"config.json": b'{"model_type": "llama"}', "model.safetensors": weights})
    hub.inject("model.safetensors", Fault.slow(bytes_per_sec=1_000_000))
    env = _env(tmp_path, hub)
    first = subprocess.Popen([str(MLXM), "pull", "org/shared", "--quiet"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while _partial_bytes(tmp_path) == 0:  # the first process is writing before the second starts
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    second = _mlxm(env, "pull", "org/shared", "--json")
    assert first.wait(30) == 0, first.stderr.read()
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["already_installed"] is True  # it waited for the lock, then found it
    assert hub.bytes_served["org/shared/model.safetensors"] == len(weights)  # one writer, fetched once
    installed = tmp_path / "models" / "org" / "shared" / "model.safetensors"
    assert installed.read_bytes() == weights
