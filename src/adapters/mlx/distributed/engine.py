"""`RemoteEngine`: the text runtime's engine interface (submit / cancel / close) for a sharded model.

`MlxTextRuntime` drives an engine through `EngineRequest`s and reads `(index, token, finish, logprob,
top)` events from their queues (`TextStream`): the chat template, stop strings, detokenizing, tool-call
and thinking parsing all stay in the server process, unchanged. This engine forwards each request to
rank 0 of the group (which shares it with the other ranks) and turns rank 0's messages back into those
events. The group serves one request at a time, in order (batching across ranks is not implemented:
every rank would have to take the same batching decisions at the same step).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import replace

from adapters.mlx.engine import EngineRequest
from adapters.mlx.distributed.group import RankGroup
from application.errors import Unavailable


class RemoteEngine:
    prompt_cache = None  # no prompt cache across ranks (yet): `warm` is a no-op for sharded models

    def __init__(self, group: RankGroup) -> None:
        self.group = group
        self._lock = threading.Lock()
        self._requests: dict[int, EngineRequest] = {}
        self._ids: dict[int, int] = {}  # id(EngineRequest) -> request id
        self._next = 1

    def submit_all(self, requests: list[EngineRequest]) -> None:
        for request in requests:  # each request runs on the ranks on its own
            self.submit(request)

    def submit(self, request: EngineRequest) -> None:
        if request.warm_only:  # not reached (prompt_cache is None), but never send a warm-up to the ranks
            request.events.put((request.index, None, "warm", None, None))
            request.finished.set()
            return
        params = request.params
        if params is None:
            raise Unavailable("a sharded model needs the request's parameters")
        if params.temperature and params.seed is None:
            # Every rank samples with the same key, so they pick the same token.
            params = replace(params, seed=secrets.randbits(62))
        fields = ("temperature", "top_p", "top_k", "min_p", "seed", "repetition_penalty", "presence_penalty",
                  "frequency_penalty")
        with self._lock:
            request_id = self._next
            self._next += 1
            self._requests[request_id] = request
            self._ids[id(request)] = request_id
        try:
            self.group.send({
                "op": "generate", "id": request_id, "prompt": list(request.prompt), "max_tokens": request.max_tokens,
                "top_logprobs": request.top_logprobs,
                "params": {name: getattr(params, name) for name in fields},
            })
        except Unavailable:
            self._forget(request_id)
            raise

    def cancel(self, request: EngineRequest) -> None:
        with self._lock:
            request_id = self._ids.get(id(request))
            if request_id is None or request.finished.is_set() or request.cancelled:
                return
            request.cancelled = True
        try:
            self.group.send({"op": "cancel", "id": request_id})
        except Unavailable:
            pass  # the group failed: `fail` has ended every request already

    def on_message(self, message: dict) -> None:
        """Called on the channel's reader thread for every message of rank 0."""
        request_id = message.get("id")
        with self._lock:
            request = self._requests.get(request_id)
        if request is None:
            return
        op = message["op"]
        if op == "token":
            request.generated += 1
            top = [tuple(pair) for pair in message["top"]] if message.get("top") is not None else None
            request.events.put((request.index, int(message["token"]), message.get("finish"), message.get("logprob"),
                                top))
            if message.get("finish") is not None:
                self._finish(request_id)
        elif op == "progress":
            request.prefilled = int(message.get("done", 0))
        elif op == "done":
            self._finish(request_id)

    def _finish(self, request_id: int) -> None:
        request = self._forget(request_id)
        if request is not None:
            request.finished.set()

    def _forget(self, request_id: int) -> EngineRequest | None:
        with self._lock:
            request = self._requests.pop(request_id, None)
            if request is not None:
                self._ids.pop(id(request), None)
        return request

    def fail(self, reason: str) -> None:
        """The group failed: every running or queued request ends with a 503 at once."""
        with self._lock:
            requests = list(self._requests.values())
            self._requests.clear()
            self._ids.clear()
        for request in requests:
            request.events.put(Unavailable(reason))
            request.finished.set()

    def close(self, timeout: float = 30.0) -> None:
        self.group.stop(timeout=min(timeout, 10.0))
        self.fail(f"{self.group.model_id} was unloaded")
