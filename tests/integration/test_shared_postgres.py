"""Several mlxm servers on ONE PostgreSQL database (each with its own home folder, as on two machines).

- a key revoked on one host is refused on the other at once (keys are read per request, never cached);
- audit rows say which host wrote them;
- a pull of one model by two hosts fetches it once: the model lock also takes a database advisory
  lock, because a flock does not reach the other machine (here: the other home folder).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from entrypoints.http.app import create_app
from tests.support.auth_server import sqlite_container
from tests.support.fake_hub import FakeHub, Fault
from tests.support.frontends import serve_in_thread

MLXM = Path(sys.executable).parent / "mlxm"


@pytest.fixture
def two_hosts(postgres_url, tmp_path):
    servers = {}
    with_stack = []
    for name in ("mac-a", "mac-b"):
        container = sqlite_container(tmp_path / name, auth="on", database_url=postgres_url, host_name=name)
        context = serve_in_thread(create_app(container))
        url = context.__enter__()
        with_stack.append(context)
        servers[name] = {"url": url, "container": container}
    try:
        yield servers
    finally:
        for context in reversed(with_stack):
            context.__exit__(None, None, None)
        for server in servers.values():
            server["container"].database_engine().dispose()


def _call(server, method, path, key, **kw):
    return httpx.request(method, server["url"] + path, headers={"authorization": f"Bearer {key}"}, timeout=30, **kw)


def test_a_key_revoked_on_one_host_is_refused_on_the_other_at_once(two_hosts):
    a, b = two_hosts["mac-a"], two_hosts["mac-b"]
    admin = a["container"].api_key_service().create("admin").secret
    created = _call(a, "POST", "/api/keys", admin, json={"name": "ci-bot"})
    assert created.status_code in (200, 201), created.text
    bot = created.json()["key"]
    assert _call(b, "GET", "/v1/models", bot).status_code == 200  # made on A, accepted on B
    revoked = _call(a, "DELETE", "/api/keys/ci-bot", admin)
    assert revoked.status_code == 200, revoked.text
    refused = _call(b, "GET", "/v1/models", bot)  # the very next request on B
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    assert _call(b, "GET", "/v1/models", admin).status_code == 200


def test_audit_rows_name_the_host_that_served_them(two_hosts):
    a, b = two_hosts["mac-a"], two_hosts["mac-b"]
    admin = a["container"].api_key_service().create("admin").secret
    body = {"model": "tiny-local", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
    for server in (a, b, b):
        assert _call(server, "POST", "/v1/chat/completions", admin, json=body).status_code == 200
    deadline = time.monotonic() + 20  # the audit writer stores rows off the request path, in batches
    while True:
        rows = _call(a, "GET", "/api/audit", admin).json()
        if rows["total"] >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(r["host"] for r in rows["items"]) == ["mac-a", "mac-b", "mac-b"]
    only_b = _call(a, "GET", "/api/audit?host=mac-b", admin).json()
    assert only_b["total"] == 2 and {r["host"] for r in only_b["items"]} == {"mac-b"}


def test_each_host_publishes_its_pool_and_sees_the_others(two_hosts):
    a, b = two_hosts["mac-a"], two_hosts["mac-b"]
    admin = a["container"].api_key_service().create("admin").secret
    assert _call(a, "POST", "/api/pool/load", admin, json={"model": "tiny-local"}).status_code == 200
    assert _call(b, "POST", "/api/pool/load", admin, json={"model": "tiny-fallback"}).status_code == 200
    deadline = time.monotonic() + 20  # each host publishes every couple of seconds
    while True:
        view = _call(b, "GET", "/api/pool/hosts", admin).json()
        seen = {host: [m["model_id"] for m in models] for host, models in view["hosts"].items()}
        if seen == {"mac-a": ["tiny-local"], "mac-b": ["tiny-fallback"]} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert view["this_host"] == "mac-b"
    assert seen == {"mac-a": ["tiny-local"], "mac-b": ["tiny-fallback"]}
    assert _call(a, "POST", "/api/pool/unload", admin, json={"model": "tiny-local"}).status_code == 200
    deadline = time.monotonic() + 20
    while "mac-a" in _call(b, "GET", "/api/pool/hosts", admin).json()["hosts"]:
        assert time.monotonic() < deadline, "mac-a's unload never reached the shared pool state"
        time.sleep(0.2)


def _env(home: Path, hub: FakeHub, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLX_", "HF_"))}
    env.update(MLX_MANAGER_HOME=str(home), MLX_MANAGER_DATABASE_URL=database_url, HF_ENDPOINT=hub.url,
               HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1")
    return env


def _download_rows(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT COUNT(*) FROM downloads")).scalar()
    finally:
        engine.dispose()


@pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")
def test_a_pull_of_one_model_by_two_hosts_fetches_it_once(postgres_url, tmp_path):
    size = 1_500_000
    with FakeHub() as hub:
        hub.add_repo("org/shared", {"config.json": b'{"model_type": "llama"}', "model.safetensors": os.urandom(size)})
        # Slow enough (~15 s) that B's pull surely starts while A is still fetching.
        hub.inject("model.safetensors", Fault.slow(bytes_per_sec=100_000, times=1))
        pulls = {}
        for name in ("mac-a", "mac-b"):
            pulls[name] = subprocess.Popen([str(MLXM), "pull", "org/shared", "--json"],
                                           env=_env(tmp_path / name, hub, postgres_url),
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 60
            # Until this host's pull has opened its download row (or, broken, has already finished).
            while _download_rows(postgres_url) < len(pulls) and pulls[name].poll() is None:
                assert time.monotonic() < deadline, f"the pull on {name} never started"
                time.sleep(0.05)
        assert pulls["mac-a"].poll() is None, "A finished before B started: the test would prove nothing"
        outputs = {name: proc.communicate(timeout=180) for name, proc in pulls.items()}
        served = hub.bytes_served["org/shared/model.safetensors"]
    for name, proc in pulls.items():
        assert proc.returncode == 0, outputs[name][1]
    assert served == size  # fetched once; the other host waited on the database lock, then found it installed
    results = [json.loads(out) for out, _ in outputs.values()]
    assert sorted(bool(r.get("already_installed")) for r in results) == [False, True], results
