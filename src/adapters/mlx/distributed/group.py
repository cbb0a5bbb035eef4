"""`RankGroup`: one sharded model's ranks, started through `mlx.launch` and supervised by `mlxm serve`.

Why the HTTP server is not rank 0 itself (the issue's literal design): `mlx.launch` terminates every
rank as soon as one exits non-zero — checked here: killing rank 1 made rank 0 raise
"[ring] connection to a peer was lost" and mlx.launch then SIGTERMed rank 0 ("Node with rank 0 exited
with code -15"). An HTTP server running as rank 0 would die with its model, yet the server must stay up,
answer 503 for the broken model and keep serving the others. So `mlxm serve` stays a normal process and
starts `mlx.launch` as its child (in its own process group, so the whole group can be ended); rank 0 runs
on this machine and talks to the server over a local channel (loopback TCP, JSON lines, authenticated
by a per-group token). That channel is IPC between the server and its own co-located child, not a
transport between ranks: the ranks exchange everything through MLX's backend (`mx.distributed`).

Failure detection, bounded in time:
- a rank that dies: mlx.launch ends the group and exits; the channel closes -> failed at once;
- a rank that hangs (or a network that stops): the others block in a collective that has no timeout,
  so rank 0's heartbeats (sent only after a completed collective: each idle round, each prefill chunk,
  each token) stop; the watchdog fails the group after `heartbeat_timeout` seconds without one and ends it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from application.errors import InvalidRequest, Unavailable

log = logging.getLogger("mlxm.distributed")

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_VERDICT = re.compile(r"Node with rank \d+ (exited with code -?\d+|was killed)")
_ERROR = re.compile(r"^[A-Za-z_.]*(Error|Exception): ")


@dataclass(frozen=True)
class Hostfile:
    """The parts of an `mlx.distributed_config` / `mlx.launch --hostfile` file that mlxm needs."""

    path: Path
    hosts: tuple[str, ...]  # ssh names, rank order
    backend: str | None

    @classmethod
    def read(cls, path: Path | str) -> "Hostfile":
        path = Path(path).expanduser()
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise InvalidRequest(f"hostfile {path}: {exc.strerror or exc}") from None
        except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the decoder goes
            raise InvalidRequest(f"hostfile {path} is not JSON: {exc}") from None
        hosts = data.get("hosts") if isinstance(data, dict) else data
        if not isinstance(hosts, list) or not all(isinstance(h, dict) and isinstance(h.get("ssh"), str) for h in hosts):
            raise InvalidRequest(f"hostfile {path}: expected mlx.distributed_config's format, "
                                 '{"hosts": [{"ssh": "HOST", "ips": ["IP"]}, ...]}')
        if len(hosts) < 2:
            raise InvalidRequest(f"hostfile {path} lists {len(hosts)} host(s); sharding needs at least 2")
        if hosts[0]["ssh"] not in LOCAL_HOSTS:
            # Rank 0 talks to this server over loopback, so it must run here (mlx.launch starts 127.0.0.1 without ssh).
            raise InvalidRequest(f"hostfile {path}: the first host (rank 0) must be this machine, "
                                 f"\"ssh\": \"127.0.0.1\"; it is {hosts[0]['ssh']!r}")
        backend = data.get("backend") if isinstance(data, dict) else None
        return cls(path, tuple(h["ssh"] for h in hosts), backend or None)


@dataclass(frozen=True)
class ReadyInfo:
    ranks: int
    rank_bytes: tuple[int, ...]
    mode: str


def _free_port_run(count: int) -> int:
    """A first port of `count` consecutive free loopback ports (ring backend: one per rank and IP)."""
    for _ in range(200):
        start = random.randint(20000, 60000 - count)
        socks = []
        try:
            for port in range(start, start + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise Unavailable("no free ports for the ring backend")


class RankGroup:
    """Starts the ranks, holds rank 0's channel, watches for death and hangs. Thread-safe."""

    def __init__(self, model_id: str, path: Path, hostfile: Hostfile, *, mode: str = "tensor",
                 backend: str | None = None, heartbeat_timeout: float = 30.0, load_timeout: float = 600.0,
                 starting_port: int = 0, prefill_step_size: int = 512,
                 on_message: Callable[[dict], None] | None = None,
                 on_failure: Callable[[str], None] | None = None) -> None:
        self.model_id = model_id
        self.path = Path(path)
        self.hostfile = hostfile
        self.mode = mode
        self.backend = backend or hostfile.backend or "ring"
        self.heartbeat_timeout = heartbeat_timeout
        self.load_timeout = load_timeout
        self.starting_port = starting_port
        self.prefill_step_size = prefill_step_size
        self.on_message = on_message or (lambda message: None)
        self.on_failure = on_failure or (lambda reason: None)
        self.error: str | None = None
        self.ready = threading.Event()
        self.info: ReadyInfo | None = None
        self._process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._stopping = False
        self._last_seen = time.monotonic()
        self._output: deque[str] = deque(maxlen=200)  # the ranks' last output lines, for error messages
        self._verdicts: list[str] = []  # mlx.launch's "Node with rank N exited ..." lines, never dropped
        self._done = threading.Event()

    @property
    def ranks(self) -> int:
        return len(self.hostfile.hosts)

    @property
    def available(self) -> bool:
        return self.ready.is_set() and self.error is None and not self._stopping

    # ------------------------------------------------------------------ start

    def start(self) -> ReadyInfo:
        """Launch the ranks and wait until every rank has loaded its shard (or raise `Unavailable`)."""
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(1.0)
        token = secrets.token_hex(16)
        port = self.starting_port or _free_port_run(self.ranks * 4)
        launcher = Path(sys.executable).with_name("mlx.launch")
        command = [str(launcher) if launcher.exists() else "mlx.launch", "--hostfile", str(self.hostfile.path),
                   "--backend", self.backend, "--starting-port", str(port), "--python", sys.executable,
                   "--env", f"MLXM_DISTRIBUTED_TOKEN={token}", "--",
                   "-m", "adapters.mlx.distributed.rank", "--model", str(self.path), "--mode", self.mode,
                   "--server", f"127.0.0.1:{listener.getsockname()[1]}",
                   "--prefill-step-size", str(self.prefill_step_size)]
        shown = " ".join(part if not part.startswith("MLXM_DISTRIBUTED_TOKEN=") else "MLXM_DISTRIBUTED_TOKEN=***"
                         for part in command)
        log.info("starting %s sharded over %d ranks (%s, %s backend): %s", self.model_id, self.ranks, self.mode,
                 self.backend, shown)
        # Own session: ending the group ends mlx.launch and the local ranks it started (its process group).
        # stdin is a pipe we never write: mlx.launch selects on its stdin (/dev/null would make it spin).
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self._pump = threading.Thread(target=self._pump_output, name=f"mlxm-ranks-{self.model_id}", daemon=True)
        self._pump.start()
        deadline = time.monotonic() + self.load_timeout
        try:
            self._sock = self._accept(listener, token, deadline)
        finally:
            listener.close()
        threading.Thread(target=self._read, name=f"mlxm-rank0-{self.model_id}", daemon=True).start()
        threading.Thread(target=self._watch_process, name=f"mlxm-launch-{self.model_id}", daemon=True).start()
        while not self.ready.wait(0.2):
            if self.error is not None:
                break
            if time.monotonic() > deadline:
                self.fail(f"the ranks did not load {self.model_id} within {self.load_timeout:.0f} s")
        if self.error is not None:
            self.stop()
            raise Unavailable(f"{self.model_id}: starting the sharded model failed: {self.error}")
        threading.Thread(target=self._watchdog, name=f"mlxm-watchdog-{self.model_id}", daemon=True).start()
        assert self.info is not None
        return self.info

    def _accept(self, listener: socket.socket, token: str, deadline: float) -> socket.socket:
        while True:
            if self._process is not None and self._process.poll() is not None:
                self._process.wait()
                time.sleep(0.2)  # let the output pump catch the last lines
                self.stop()
                raise Unavailable(f"{self.model_id}: mlx.launch exited ({self._process.returncode}) before rank 0 "
                                  f"connected: {self.last_output()}")
            if time.monotonic() > deadline:
                self.stop()
                raise Unavailable(f"{self.model_id}: rank 0 did not start within {self.load_timeout:.0f} s")
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            conn.settimeout(10)
            try:
                hello = json.loads(conn.makefile("rb").readline() or b"{}")
            except (OSError, ValueError):
                hello = {}
            if hello.get("op") == "hello" and secrets.compare_digest(str(hello.get("token", "")), token):
                conn.settimeout(None)
                return conn
            conn.close()  # not our rank 0

    # ------------------------------------------------------------------ I/O threads

    def _pump_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in self._process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self._output.append(line)
                verdict = _VERDICT.search(_ANSI.sub("", line))
                if verdict is not None:
                    self._verdicts.append(verdict.group(0))
                log.info("[%s ranks] %s", self.model_id, line)

    def _drain_output(self, timeout: float = 3.0) -> None:
        """mlx.launch has exited: let the pump read its last lines (the verdicts on each rank) before they are
        quoted (the pipe ends when mlx.launch does; logging each line can lag on a loaded machine)."""
        pump = getattr(self, "_pump", None)
        if pump is not None:
            pump.join(timeout)

    def last_output(self) -> str:
        """What the ranks' output says went wrong: mlx.launch's verdicts on ranks and the last error line."""
        lines = [_ANSI.sub("", line).strip() for line in self._output]
        verdicts = list(self._verdicts)
        errors = [line for line in lines if _ERROR.match(line)]
        picked = list(dict.fromkeys(verdicts + errors[-1:]))
        if not picked:
            picked = [line for line in lines if line][-2:]
        return "; ".join(picked) if picked else "no output from the ranks"

    def _read(self) -> None:
        assert self._sock is not None
        buffer = b""
        try:
            while True:
                data = self._sock.recv(65536)
                if not data:
                    break
                self._last_seen = time.monotonic()
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._dispatch(json.loads(line))
        except (OSError, ValueError):
            pass
        if not self._stopping:
            # mlx.launch names the rank that failed when it ends the group (within ~1 s): wait for that.
            try:
                assert self._process is not None
                self._process.wait(timeout=3.0)
                self._drain_output()
            except subprocess.TimeoutExpired:
                pass
            self.fail(f"rank 0 closed its channel: {self.last_output()}")

    def _dispatch(self, message: dict) -> None:
        op = message.get("op")
        if op == "ready":
            self.info = ReadyInfo(int(message["ranks"]), tuple(int(b) for b in message["rank_bytes"]), message["mode"])
            self.ready.set()
        elif op != "heartbeat":
            self.on_message(message)

    def _watch_process(self) -> None:
        assert self._process is not None
        code = self._process.wait()
        if not self._stopping:
            self._drain_output()
            self.fail(f"the ranks stopped (mlx.launch exited, code {code}): {self.last_output()}")
        self._done.set()

    def _watchdog(self) -> None:
        while not self._done.is_set() and self.error is None and not self._stopping:
            silent = time.monotonic() - self._last_seen
            if silent > self.heartbeat_timeout:
                self.fail(f"no heartbeat from rank 0 for {silent:.1f} s (limit {self.heartbeat_timeout:g} s): "
                          "a rank is hung or unreachable")
                return
            time.sleep(min(0.25, self.heartbeat_timeout / 4))

    # ------------------------------------------------------------------ commands

    def send(self, message: dict) -> None:
        if not self.available:
            raise Unavailable(self.unavailable_reason())
        data = (json.dumps(message) + "\n").encode()
        try:
            with self._send_lock:
                assert self._sock is not None
                self._sock.sendall(data)
        except OSError as exc:
            self.fail(f"the channel to rank 0 broke: {exc}")
            raise Unavailable(self.unavailable_reason()) from None

    def unavailable_reason(self) -> str:
        if self.error is not None:
            return (f"{self.model_id} is unavailable: {self.error}. Restart it with `mlxm unload {self.model_id}`; "
                    "the next request starts its ranks again")
        return f"{self.model_id} is unavailable: its ranks are stopping"

    def fail(self, reason: str) -> None:
        """Mark the group failed (once), tell the owner, and end whatever is left of it."""
        with self._state_lock:
            if self.error is not None or self._stopping:
                return
            self.error = reason
        log.error("sharded model %s failed: %s", self.model_id, reason)
        try:
            self.on_failure(reason)
        finally:
            self._kill()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the ranks down: a clean shutdown through rank 0 first, then the process group."""
        with self._state_lock:
            already = self._stopping
            self._stopping = True
        if already:
            return
        if self._sock is not None and self.error is None:
            try:
                with self._send_lock:
                    self._sock.sendall(b'{"op": "shutdown"}\n')
            except OSError:
                pass
            if self._process is not None:
                try:
                    self._process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
        self._kill()

    def _kill(self) -> None:
        """End mlx.launch and every local rank (its process group): TERM, then KILL for whatever is left
        (a hung or stopped rank ignores TERM; mlx.launch itself may already be gone)."""
        process = self._process
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                pass
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
