"""`mlxm serve` as users start it: a fresh process on a free loopback port, stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    process: subprocess.Popen
    url: str
    stderr: str = ""  # the server's whole stderr, once it has stopped


@contextmanager
def mlxm_serve(env: dict[str, str], startup_seconds: float = 120.0) -> Iterator[Served]:
    """Start `mlxm serve`, wait until /api/health answers 200 (failing at once if the process dies), and
    stop it with SIGINT on the way out (killed after 30 s). Check `served.process.returncode` afterwards."""
    port = free_port()
    exe = str(Path(sys.executable).with_name("mlxm"))
    process = subprocess.Popen([exe, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    served = Served(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                if httpx.get(f"{served.url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlxm serve did not come up"
            time.sleep(0.1)
        yield served
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, served.stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, served.stderr = process.communicate()
