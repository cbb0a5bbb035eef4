"""Issue 12 item 4: connection-level DoS against a real `mlxm serve` on loopback.

The server runs with an open-file limit of 1024 (a common default; this machine's is higher), so
2,200 idle connections with unfinished headers exceed it, as in the report. Bounded: 2,200
sockets, loopback only, about 30 s in all.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

IDLE_CONNECTIONS = 2200
SERVER_FD_LIMIT = 1024
TIMEOUT_SECONDS = 2  # the header and body deadlines the server gets in this test


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (SERVER_FD_LIMIT, SERVER_FD_LIMIT))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = IDLE_CONNECTIONS + 200
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"the test process may open only {hard} files; {needed} needed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    home = tmp_path_factory.mktemp("flood-home")
    port = _free_port()
    env = {**os.environ, "MLX_MANAGER_HOME": str(home), "MLX_MANAGER_LOG_FORMAT": "json",
           "MLX_SERVER_HEADER_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
           "MLX_SERVER_BODY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS)}
    log_path = home / "server.log"
    exe = Path(sys.executable).with_name("mlxm")
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([str(exe), "serve", "--port", str(port)], env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, preexec_fn=_limit_fds)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log_path.read_text()[-2000:]
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlxm serve did not come up"
            time.sleep(0.1)
        yield {"url": url, "port": port, "log": log_path}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _open_idle(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Unfinished: ")
            sockets.append(sock)
        except OSError:
            break  # the backlog is full: the flood is as large as this machine lets it be
    return sockets


def test_idle_connections_with_unfinished_headers_do_not_starve_health(server):
    log_before = server["log"].stat().st_size
    sockets = _open_idle(server["port"], IDLE_CONNECTIONS)
    try:
        assert len(sockets) >= 2000, f"only {len(sockets)} connections opened"
        started = time.monotonic()
        # A liveness check, not a speed assertion: unfixed, this never answers (accept() starves).
        response = httpx.get(f"{server['url']}/api/health", timeout=20)
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        print(f"/api/health answered in {elapsed * 1000:.0f} ms with {len(sockets)} idle connections open")
    finally:
        for sock in sockets:
            sock.close()
    time.sleep(1)
    grown = server["log"].stat().st_size - log_before
    text = server["log"].read_text(errors="replace")
    # Any accept errors left are throttled to a handful of lines (unfixed: a line per accept attempt).
    assert text.count("Too many open files") <= 10
    assert grown < 100_000, f"the log grew by {grown} bytes"


def _seconds_until_closed(sock: socket.socket, drip: bytes, limit: float = 15.0) -> tuple[float, bytes]:
    """Send `drip` one byte every 0.25 s; how long until the server closes, and what it said."""
    started = time.monotonic()
    sock.settimeout(0.25)
    received = b""
    index = 0
    while time.monotonic() - started < limit:
        try:
            chunk = sock.recv(4096)
            if not chunk:
                return time.monotonic() - started, received
            received += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:
            return time.monotonic() - started, received
        try:
            sock.send(drip[index % len(drip):index % len(drip) + 1])
            index += 1
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started, received
    return limit, received


def test_a_connection_dripping_its_headers_is_closed_with_408(server):
    sock = socket.create_connection(("127.0.0.1", server["port"]))
    try:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        seconds, said = _seconds_until_closed(sock, b"X-Drip: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    finally:
        sock.close()
    assert seconds < 15.0, "a header drip kept the connection open"
    assert said.startswith(b"HTTP/1.1 408")


def test_a_connection_dripping_its_body_is_closed(server):
    sock = socket.create_connection(("127.0.0.1", server["port"]))
    try:
        sock.sendall(b"POST /api/profiles HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                     b"content-length: 100000\r\n\r\n{")
        seconds, said = _seconds_until_closed(sock, b" ")
    finally:
        sock.close()
    assert seconds < 15.0, "a body drip kept the connection open"
    assert said == b"" or said.startswith(b"HTTP/1.1 408")


def test_repeated_warnings_are_throttled():
    import logging

    from entrypoints.logging import RepeatThrottle

    throttle = RepeatThrottle(burst=5, window=60)
    records = [logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource",
                                 None, (OSError, OSError(24, "Too many open files"), None)) for _ in range(1000)]
    assert sum(throttle.filter(r) for r in records) == 5
    info = logging.LogRecord("mlxm.http", logging.INFO, __file__, 1, "request", None, None)
    assert all(throttle.filter(info) for _ in range(100))  # access lines are never dropped
