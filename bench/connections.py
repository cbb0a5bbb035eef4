"""Connection-flood benchmark (issue 12 item 4): `/api/health` latency under 2,200 idle connections.

Starts `mlxm serve` on loopback with an open-file limit of 1024 (a common default), measures
`/api/health` with no other connection (the baseline), then opens N idle connections with
unfinished headers and measures again. Prints both and their ratio; asserts nothing. Loopback only,
bounded in count (N) and time (each request gives up after --timeout seconds).

    .venv/bin/python bench/connections.py [--idle 2200] [--samples 5] [--timeout 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

FD_LIMIT = 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def _health_ms(url: str, timeout: float) -> float | None:
    started = time.perf_counter()
    try:
        ok = httpx.get(f"{url}/api/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return None
    return (time.perf_counter() - started) * 1000 if ok else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle", type=int, default=2200)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle + 256)), hard))
    home = Path(tempfile.mkdtemp(prefix="mlxm-bench-conn-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = home / "server.log"
    env = {**os.environ, "MLX_MANAGER_HOME": str(home), "MLX_MANAGER_LOG_FORMAT": "json"}
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen([str(Path(sys.executable).with_name("mlxm")), "serve", "--port", str(port)],
                                  env=env, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=_limit)
    sockets: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 120
        while _health_ms(url, 2) is None:
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("mlxm serve did not come up")
            time.sleep(0.1)
        baseline = [_health_ms(url, args.timeout) for _ in range(args.samples)]
        log_before = log_path.stat().st_size
        started = time.monotonic()
        for _ in range(args.idle):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=2)
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Unfinished: ")
                sockets.append(sock)
            except OSError:
                break
        opened_in = time.monotonic() - started
        flooded = [_health_ms(url, args.timeout) for _ in range(args.samples)]
        grown = log_path.stat().st_size - log_before
    finally:
        for sock in sockets:
            sock.close()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    def summary(values):
        done = [v for v in values if v is not None]
        failed = len(values) - len(done)
        median = statistics.median(done) if done else None
        return median, failed

    base_median, _ = summary(baseline)
    flood_median, flood_failed = summary(flooded)
    text = log_path.read_text(errors="replace")
    print(f"server open-file limit {FD_LIMIT}; {len(sockets)} idle connections opened in {opened_in:.1f} s")
    print(f"/api/health baseline median: {base_median:.1f} ms ({args.samples} samples)")
    if flood_median is None:
        print(f"/api/health under the flood: no answer within {args.timeout:g} s ({flood_failed} of {args.samples})")
    else:
        print(f"/api/health under the flood median: {flood_median:.1f} ms, max {max(v for v in flooded if v):.1f} ms, "
              f"{flood_failed} of {args.samples} without an answer; ratio to baseline {flood_median / base_median:.1f}x")
    print(f"server log grew by {grown} bytes; 'Too many open files' lines: {text.count('Too many open files')}")


if __name__ == "__main__":
    main()
