"""How `mlxm serve` stops, as users stop it: real `mlxm serve` processes, real SIGINTs, a running
stream of a model that never ends its answer (a scripted model whose script loops)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.scripted_models import build_scripted_model

pytestmark = pytest.mark.slow
EXE = str(Path(sys.executable).with_name("mlxm"))
MAX_TOKENS = 120_000  # far more than the stream reaches before the shutdown stops it


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shutdown")
    model = build_scripted_model(root / "loop", {"default": ["tick ", "tock ", "tuck "]}, loops=("default",))
    config = json.loads((model / "config.json").read_text())
    config["max_position_embeddings"] = 1_000_000  # room for MAX_TOKENS
    (model / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "MLX_MANAGER_HOME": str(root / "home")}
    imported = subprocess.run([EXE, "import", str(model), "--name", "loop"], env=env, capture_output=True,
                              text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr
    return root / "home"


class Served:
    """`mlxm serve` with its stderr read as it comes, and one endless stream running against it."""

    def __init__(self, home: Path, grace: float) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        env = {**os.environ, "MLX_MANAGER_HOME": str(home), "MLX_SERVER_SHUTDOWN_GRACE_SECONDS": str(grace)}
        self.process = subprocess.Popen([EXE, "serve", "--port", str(self.port)], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        threading.Thread(target=lambda: self.stderr.extend(self.process.stderr), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}"
        self.events: list[str] = []
        self.stream_error: BaseException | None = None
        deadline = time.monotonic() + 120
        while not self._healthy():
            assert self.process.poll() is None, "".join(self.stderr)
            assert time.monotonic() < deadline, "mlxm serve did not come up"
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start_stream(self) -> threading.Thread:
        def read() -> None:
            body = {"model": "loop", "stream": True, "max_tokens": MAX_TOKENS,
                    "messages": [{"role": "user", "content": "hi"}]}
            try:
                with httpx.stream("POST", f"{self.url}/v1/chat/completions", json=body, timeout=300) as response:
                    for line in response.iter_lines():
                        if line.startswith("data: "):
                            self.events.append(line[len("data: "):])
            except httpx.HTTPError as exc:
                self.stream_error = exc

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + 120
        while len(self.events) < 20:  # the model is loaded and tokens flow
            assert reader.is_alive() and time.monotonic() < deadline, ("".join(self.stderr), self.events[:3])
            time.sleep(0.05)
        return reader

    def wait_for_log(self, text: str) -> None:
        deadline = time.monotonic() + 60
        while not any(text in line for line in self.stderr):
            assert time.monotonic() < deadline, f"no {text!r} in: {''.join(self.stderr)[-2000:]}"
            time.sleep(0.05)

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"mlxm serve did not stop: {''.join(self.stderr)[-2000:]}")
        time.sleep(0.2)  # the reader thread drains the last lines
        return self.process.returncode, "".join(self.stderr)


def _stopped_by_shutdown(served: Served) -> None:
    """The stream ended with the shutdown's error event, long before its max_tokens (generation stopped)."""
    assert served.stream_error is None
    last = json.loads(served.events[-1])
    assert last["error"]["type"] == "unavailable" and "shutting down" in last["error"]["message"]
    tokens = [e for e in served.events[:-1] if e != "[DONE]"]
    assert 20 <= len(tokens) < MAX_TOKENS and "[DONE]" not in served.events


def test_ctrl_c_gives_a_running_stream_the_grace_period_then_cancels_it(home) -> None:
    served = Served(home, grace=1)
    reader = served.start_stream()
    served.process.send_signal(signal.SIGINT)
    code, stderr = served.finish()
    reader.join(30)
    assert code == 0, stderr[-3000:]
    assert "Cancelled 1 running request(s) after the 1 s grace period" in stderr
    assert "Application shutdown complete" in stderr  # the models were unloaded
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    _stopped_by_shutdown(served)


def test_a_second_ctrl_c_cancels_at_once_and_exits_cleanly(home) -> None:
    served = Served(home, grace=600)  # the first Ctrl-C alone would wait for the stream
    reader = served.start_stream()
    served.process.send_signal(signal.SIGINT)
    served.wait_for_log("Shutting down")
    assert served.process.poll() is None  # still waiting for the stream, within its grace period
    served.process.send_signal(signal.SIGINT)
    code, stderr = served.finish()
    reader.join(30)
    assert code == 130, stderr[-3000:]  # forced: documented in README (serve)
    assert "Cancelled 1 running request(s) (second Ctrl-C)" in stderr
    assert "Application shutdown complete" in stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    _stopped_by_shutdown(served)


def test_ctrl_c_after_generations_exits_0_every_time(home) -> None:
    # The abort in MLX's exit path ("terminate called without an active exception") came about 1 run
    # in 4 on this machine after a served generation; each run here is one more chance to see it.
    for _ in range(4):
        served = Served(home, grace=5)
        answer = httpx.post(f"{served.url}/v1/chat/completions", timeout=120, json={
            "model": "loop", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
        assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 50
        served.process.send_signal(signal.SIGINT)
        code, stderr = served.finish()
        assert code == 0, stderr[-3000:]
        assert "terminate called" not in stderr and "Traceback" not in stderr
