"""The program every rank of a sharded model runs: `mlx.launch ... -m adapters.mlx.distributed.rank`.

Each rank loads only its shard with mlx-lm's `sharded_load` (tensor: `model.shard`; pipeline: only the
local stage's files) and then all ranks run the same engine loop in lockstep, as `mlx_lm.server` does
in distributed mode: rank 0 takes the next command and shares it with the others through
`mx.distributed.all_sum` (its bytes, the others' zeros — `mlx_lm.server`'s `_share_object`), then every
rank runs the same generation steps, whose collectives carry the activations between the ranks. The
ranks never talk over anything but MLX's own backend (ring / JACCL / MPI, chosen by `mlx.launch`).

Rank 0 also holds the *local channel* to the `mlxm serve` process that started the group (a loopback
TCP connection to its parent on this machine, JSON lines; see `adapters.mlx.distributed.group` for why
the HTTP server is not rank 0 itself). On it rank 0 receives generate / cancel / shutdown commands and
sends back tokens, prefill progress and heartbeats. A heartbeat is only sent after a collective
completed, so a hung rank stops them and the server's watchdog notices in bounded time.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import socket
import sys
import threading
import time
from collections import deque

IDLE_POLL_SECONDS = 0.1  # rank 0 waits this long for a command before the (empty) shared round
HEARTBEAT_SECONDS = 0.5  # at most one heartbeat per this interval


class Channel:
    """Rank 0's end of the local channel: a reader thread queues commands; sends are JSON lines."""

    def __init__(self, address: str, token: str) -> None:
        host, port = address.rsplit(":", 1)
        self._sock = socket.create_connection((host, int(port)), timeout=30)
        self._sock.settimeout(None)
        self._lock = threading.Lock()
        self.commands: queue.Queue = queue.Queue()
        self.send({"op": "hello", "token": token})
        threading.Thread(target=self._read, name="mlxm-rank0-channel", daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        try:
            while True:
                data = self._sock.recv(65536)
                if not data:
                    break
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        self.commands.put(json.loads(line))
        except OSError:
            pass
        # The server went away: the whole group shuts down (cleanly, through the shared loop).
        self.commands.put({"op": "shutdown", "reason": "the mlxm server closed the channel"})

    def send(self, message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        with self._lock:
            self._sock.sendall(data)


def _all_sum(x):
    """`all_sum` on mlx-lm's generation stream: the collectives of the model's steps (evaluated
    asynchronously by `generate_step`) and ours then run in one program order on every rank."""
    import mlx.core as mx
    from mlx_lm.generate import generation_stream

    return mx.distributed.all_sum(x, stream=generation_stream)


def share(obj, rank: int):
    """Rank 0's `obj` on every rank (None stays None): `mlx_lm.server`'s `_share_object` pattern
    (its size, then its bytes, summed with the other ranks' zeros); JSON instead of pickle."""
    import mlx.core as mx

    if rank == 0:
        if obj is None:
            mx.eval(_all_sum(mx.array(0)))
            return None
        data = mx.array(list(json.dumps(obj).encode()), dtype=mx.uint8)
        mx.eval(_all_sum(mx.array(data.size)))
        mx.eval(_all_sum(data))
        return obj
    size = _all_sum(mx.array(0)).item()
    if size == 0:
        return None
    data = _all_sum(mx.zeros(size, dtype=mx.uint8))
    return json.loads(bytes(data.tolist()).decode())


def agree(flag: bool) -> bool:
    """True on every rank when any rank says so (the stop decision, taken at the same step everywhere)."""
    import mlx.core as mx

    return _all_sum(mx.array(1 if flag else 0)).item() > 0


class Rank:
    def __init__(self, args: argparse.Namespace) -> None:
        import mlx.core as mx
        from mlx_lm.utils import sharded_load

        self.group = mx.distributed.init()
        self.rank = self.group.rank()
        self.size = self.group.size()
        self.args = args
        # Rank 0 connects first, so the server learns at once that the group started.
        self.channel = Channel(args.server, os.environ.get("MLXM_DISTRIBUTED_TOKEN", "")) if self.rank == 0 else None
        pipeline = args.mode == "pipeline"
        self.model, self.tokenizer = sharded_load(args.model, pipeline_group=self.group if pipeline else None,
                                                  tensor_group=None if pipeline else self.group)
        self.eos = set(self.tokenizer.eos_token_ids)
        self.pending: deque = deque()  # generate commands rank 0 received while busy
        self.cancelled: set = set()
        self.shutdown = False
        self._last_beat = 0.0

    # -------------------------------------------------------------- rank 0's side of the channel

    def _send(self, message: dict) -> None:
        if self.channel is not None:
            self.channel.send(message)

    def _beat(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.channel is not None and (force or now - self._last_beat >= HEARTBEAT_SECONDS):
            self._last_beat = now
            self._send({"op": "heartbeat"})

    def _take(self, message: dict) -> None:
        op = message.get("op")
        if op == "generate":
            self.pending.append(message)
        elif op == "cancel":
            self.cancelled.add(message["id"])
        elif op == "shutdown":
            self.shutdown = True

    def _drain(self) -> None:
        assert self.channel is not None
        while True:
            try:
                self._take(self.channel.commands.get_nowait())
            except queue.Empty:
                return

    def _next_command(self) -> dict | None:
        """Rank 0: the next command to share (None: nothing to do this round)."""
        assert self.channel is not None
        if self.shutdown:
            return {"op": "shutdown"}
        if not self.pending:
            try:
                self._take(self.channel.commands.get(timeout=IDLE_POLL_SECONDS))
            except queue.Empty:
                pass
            self._drain()
        if self.shutdown:
            return {"op": "shutdown"}
        while self.pending:
            command = self.pending.popleft()
            if command["id"] in self.cancelled:  # cancelled while queued: never started
                self.cancelled.discard(command["id"])
                self._send({"op": "done", "id": command["id"]})
                continue
            return command
        return None

    # -------------------------------------------------------------- the shared loop

    def run(self) -> None:
        import mlx.core as mx

        sizes = mx.zeros(self.size, dtype=mx.int64)
        sizes[self.rank] = _weights_nbytes(self.model)
        sizes = _all_sum(sizes).tolist()
        self._send({"op": "ready", "ranks": self.size, "rank_bytes": sizes, "mode": self.args.mode})
        while True:
            command = share(self._next_command() if self.rank == 0 else None, self.rank)
            self._beat()
            if command is None:
                continue
            if command["op"] == "shutdown":
                return
            if command["op"] == "generate":
                self._generate(command)

    def _generate(self, command: dict) -> None:
        import mlx.core as mx
        from mlx_lm.generate import generate_step

        from adapters.mlx.engine import _token_logprobs
        from adapters.mlx.sampling import build_logits_processors, build_sampler
        from domain.profiles.params import InferenceParams

        request_id = command["id"]
        params = InferenceParams(**command["params"])  # the seed is fixed by the server: every rank agrees
        max_tokens = int(command["max_tokens"])
        top_logprobs = command.get("top_logprobs")

        def progress(done: int, total: int) -> None:  # after each prefill chunk (a collective completed)
            self._send({"op": "progress", "id": request_id, "done": done, "total": total})

        steps = generate_step(mx.array(command["prompt"]), self.model, max_tokens=max_tokens,
                              sampler=build_sampler(params), logits_processors=build_logits_processors(params),
                              prefill_step_size=self.args.prefill_step_size, prompt_progress_callback=progress)
        count = 0
        for token, logprobs in steps:
            token = int(token)
            count += 1
            finish = "stop" if token in self.eos else ("length" if count >= max_tokens else None)
            stop = finish is not None
            if self.rank == 0:
                message = {"op": "token", "id": request_id, "token": token, "finish": finish}
                if top_logprobs is not None:
                    message["logprob"], message["top"] = _token_logprobs(logprobs, token, int(top_logprobs))
                self._send(message)
                self._drain()
                stop = stop or request_id in self.cancelled or self.shutdown
            # Every rank stops at the same step (a cancel is only known to rank 0).
            if agree(stop):
                break
        self.cancelled.discard(request_id)
        self._send({"op": "done", "id": request_id})
        self._beat(force=True)


def _weights_nbytes(model) -> int:
    from mlx.utils import tree_flatten

    return int(sum(v.nbytes for _, v in tree_flatten(model.parameters())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adapters.mlx.distributed.rank")
    parser.add_argument("--model", required=True)
    parser.add_argument("--mode", choices=("tensor", "pipeline"), default="tensor")
    parser.add_argument("--server", required=True, help="HOST:PORT of the mlxm server's local channel")
    parser.add_argument("--prefill-step-size", type=int, default=512)
    args = parser.parse_args(argv)
    rank = Rank(args)
    rank.run()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
