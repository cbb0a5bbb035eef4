"""`mlxm serve --hosts`: a text model sharded over two ranks on localhost (ring backend, CPU), driven by
the real openai / anthropic SDKs against a real `mlxm serve` subprocess.

The same tiny model is imported twice: `m3` is sharded (`--shard m3`), `m3-local` runs in one process.
Greedy output of the two must be equal, in tensor and in pipeline mode (`ministral3` is one of the
architectures mlx-lm 0.32 can pipeline). Then a rank is killed (or stopped) mid-stream: the client gets
an error, the server stays up, `m3` answers 503, `m3-local` keeps serving, and `mlxm unload m3` restarts it.
"""

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

import anthropic
import httpx
import openai
import pytest

from tests.support.tiny_sharded import build_tiny_ministral3

pytestmark = pytest.mark.slow

EXE = str(Path(sys.executable).with_name("mlxm"))
PROMPT = [{"role": "user", "content": "Hello world, tell me a story."}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded")
    model = build_tiny_ministral3(root / "ministral3")
    # The same weights again, as a second library model (an extra file: the library dedups identical folders).
    shutil.copytree(model, root / "ministral3-local")
    (root / "ministral3-local" / "README.md").write_text("the one-process twin of m3\n")
    hostfile = root / "hosts.json"
    hostfile.write_text(json.dumps({"hosts": [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}] * 2}))
    return root, model, root / "ministral3-local", hostfile


class Server:
    def __init__(self, home: Path, hostfile: Path, mode: str, model: Path, twin: Path, **env) -> None:
        self.env = {**os.environ, "MLX_MANAGER_HOME": str(home), **env}
        for name, folder in (("m3", model), ("m3-local", twin)):
            done = subprocess.run([EXE, "import", str(folder), "--name", name], env=self.env, capture_output=True,
                                  text=True, timeout=300)
            assert done.returncode == 0, done.stderr
        self.port = _free_port()
        self.env["MLX_MANAGER_PORT"] = str(self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([EXE, "serve", "--port", str(self.port), "--hosts", str(hostfile), f"--{mode}",
                                         "--shard", "m3"], env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while True:
            assert self.process.poll() is None, self.process.stderr.read()
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlxm serve did not come up"
            time.sleep(0.2)
        self.openai = openai.OpenAI(base_url=f"{self.url}/v1", api_key="local", max_retries=0, timeout=120)

    def rank_pids(self) -> dict[int, int]:
        """This server's rank processes (its own grandchildren), by MLX_RANK."""
        pids = {}
        # Told apart from other servers' ranks by the model path, which lives under this server's home.
        home = self.env["MLX_MANAGER_HOME"].encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"adapters.mlx.distributed.rank" in cmdline and any(home in part for part in cmdline) \
                    and b"python" in cmdline[0]:
                for item in environ:
                    if item.startswith(b"MLX_RANK="):
                        pids[int(item.split(b"=")[1])] = int(pid)
        return pids

    def ranks_gone(self, within: float = 15.0) -> bool:
        """No rank process of this server is left (the group is ended with TERM, then KILL after 2 s)."""
        deadline = time.monotonic() + within
        while self.rank_pids():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def greedy(self, model: str, max_tokens: int = 24) -> str:
        reply = self.openai.chat.completions.create(model=model, messages=PROMPT, max_tokens=max_tokens, temperature=0)
        return reply.choices[0].message.content

    def greedy_stream(self, model: str, max_tokens: int = 24) -> str:
        stream = self.openai.chat.completions.create(model=model, messages=PROMPT, max_tokens=max_tokens,
                                                     temperature=0, stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    def mlxm(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([EXE, *args], env=self.env, capture_output=True, text=True, timeout=120)

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        try:
            _, stderr = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return stderr


def _check_greedy_equality(server: Server, mode: str) -> None:
    local = server.greedy("m3-local")
    sharded = server.greedy("m3")
    print(f"[{mode}] one process: {local!r}\n[{mode}] two ranks:   {sharded!r}")
    assert len(local) > 0 and sharded == local
    assert server.greedy_stream("m3") == local  # streamed, token by token from rank 0
    claude = anthropic.Anthropic(base_url=server.url, api_key="local", max_retries=0, timeout=120)
    message = claude.messages.create(model="m3", max_tokens=24, messages=PROMPT,
                                     extra_body={"temperature": 0})  # this SDK has no sampling arguments
    assert message.content[0].text == local
    pool = {m["model_id"]: m for m in httpx.get(f"{server.url}/api/pool", timeout=10).json()["loaded"]}
    sharding = pool["m3"]["sharding"]
    assert sharding["ranks"] == 2 and sharding["mode"] == mode and sharding["backend"] == "ring"
    assert pool["m3"]["available"] is True and pool["m3-local"]["sharding"] is None
    ps = server.mlxm("ps")
    assert ps.returncode == 0, ps.stderr
    assert f"sharded: {mode} over 2 ranks (ring)" in ps.stdout and "local" in ps.stdout


def test_tensor_parallel_equals_one_process_and_survives_a_killed_rank(library, tmp_path):
    root, model, twin, hostfile = library
    server = Server(tmp_path / "home", hostfile, "tensor", model, twin)
    try:
        _check_greedy_equality(server, "tensor")

        # Profiles and the params cascade: a profile's system prompt, temperature and max_tokens apply alike.
        for name, target in (("story", "m3"), ("story-local", "m3-local")):
            made = server.mlxm("profile", "create", name, target, "--system", "You are terse.", "--temperature", "0",
                               "--max-tokens", "10")
            assert made.returncode == 0, made.stderr
        answers = [server.openai.chat.completions.create(model=name, messages=PROMPT) for name in ("story", "story-local")]
        assert answers[0].choices[0].message.content == answers[1].choices[0].message.content
        assert answers[0].usage.completion_tokens == answers[1].usage.completion_tokens <= 10
        assert answers[0].usage.prompt_tokens == answers[1].usage.prompt_tokens > 8  # the system prompt is in

        # Cancellation: a client that stops reading frees the ranks (one request at a time, so a
        # cancel that did not reach them would keep the next request waiting for 1500 tokens).
        stream = server.openai.chat.completions.create(model="m3", messages=PROMPT, max_tokens=1500, temperature=0,
                                                       stream=True)
        for _, _chunk in zip(range(3), stream):
            pass
        stream.close()
        assert server.greedy("m3", max_tokens=4) == server.greedy("m3-local", max_tokens=4)

        # Kill rank 1 mid-stream.
        stream = server.openai.chat.completions.create(model="m3", messages=PROMPT, max_tokens=1500, temperature=0,
                                                       stream=True)
        received = 0
        with pytest.raises(openai.APIError) as failure:
            for chunk in stream:
                received += 1
                if received == 3:
                    pids = server.rank_pids()
                    assert sorted(pids) == [0, 1], pids
                    os.kill(pids[1], signal.SIGKILL)
                    killed_at = time.monotonic()
        print(f"client error {time.monotonic() - killed_at:.2f} s after the kill: {failure.value}")
        assert "m3 is unavailable" in str(failure.value) and "rank 1" in str(failure.value)

        # The server stays up; the other model serves; the sharded one answers 503 with the reason.
        assert httpx.get(f"{server.url}/api/health", timeout=10).status_code == 200
        assert server.greedy("m3-local", max_tokens=4)
        with pytest.raises(openai.APIStatusError) as refused:
            server.greedy("m3", max_tokens=4)
        assert refused.value.status_code == 503 and "mlxm unload m3" in str(refused.value)
        body = refused.value.response.json()
        assert body["error"]["type"] == "unavailable"
        pool = {m["model_id"]: m for m in httpx.get(f"{server.url}/api/pool", timeout=10).json()["loaded"]}
        assert pool["m3"]["available"] is False and "rank 1" in pool["m3"]["sharding"]["unavailable"]
        ps = server.mlxm("ps")
        assert "UNAVAILABLE" in ps.stdout and "mlxm unload m3" in ps.stderr
        assert server.ranks_gone(), "no rank outlives its group"

        # Restart is one command: unload; the next request starts the ranks again.
        unloaded = server.mlxm("unload", "m3")
        assert unloaded.returncode == 0, unloaded.stderr
        assert server.greedy("m3") == server.greedy("m3-local")
    finally:
        stderr = server.stop()
    assert server.process.returncode == 0, stderr[-3000:]
    assert server.ranks_gone(), "the ranks end with the server"


def test_pipeline_parallel_equals_one_process_and_a_hung_rank_is_detected(library, tmp_path):
    root, model, twin, hostfile = library
    server = Server(tmp_path / "home", hostfile, "pipeline", model, twin, MLX_SHARDING_HEARTBEAT_TIMEOUT_SECONDS="5")
    try:
        _check_greedy_equality(server, "pipeline")
        pool = {m["model_id"]: m for m in httpx.get(f"{server.url}/api/pool", timeout=10).json()["loaded"]}
        # Each stage holds only its layers (plus embeddings, norm and head), not the whole model.
        full = pool["m3-local"]["size_bytes"]
        assert all(0 < share < full for share in pool["m3"]["sharding"]["rank_bytes"])

        # A hung rank (stopped, not dead: no connection drops) blocks the collectives; the heartbeat
        # watchdog fails the model, and the stream ends with an error instead of hanging.
        stream = server.openai.chat.completions.create(model="m3", messages=PROMPT, max_tokens=1500, temperature=0,
                                                       stream=True)
        received = 0
        with pytest.raises(openai.APIError) as failure:
            for chunk in stream:
                received += 1
                if received == 3:
                    os.kill(server.rank_pids()[1], signal.SIGSTOP)
        assert "no heartbeat from rank 0" in str(failure.value)
        assert httpx.get(f"{server.url}/api/health", timeout=10).status_code == 200
        assert server.greedy("m3-local", max_tokens=4)
        with pytest.raises(openai.APIStatusError) as refused:
            server.greedy("m3", max_tokens=4)
        assert refused.value.status_code == 503
        assert server.ranks_gone(), "the hung rank was ended too"
    finally:
        for pid in server.rank_pids().values():  # never leave a stopped process behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        server.stop()
