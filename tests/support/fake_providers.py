"""A loopback cloud provider that speaks both OpenAI-style and Anthropic-style chat APIs.

Stdlib only: a ``ThreadingHTTPServer`` on 127.0.0.1 (free port) in a background thread::

    with FakeProvider(api_key="sk-test-123456789") as provider:
        provider.openai_base_url     # http://127.0.0.1:PORT/v1   (POST /v1/chat/completions)
        provider.anthropic_base_url  # http://127.0.0.1:PORT      (POST /v1/messages)
        provider.inject("status_500", times=1)

Replies are the words of ``reply`` (one delta per word, streaming or not). ``usage`` counts the
whitespace-separated words of the request's messages as prompt tokens and the deltas as completion
tokens. Faults: ``status_500`` (a 500 JSON error), ``status_400``, ``drop`` (close the connection
without answering), ``drop_mid_stream`` (send one delta, then close), ``slow`` (hold the request
until the provider stops or ``slow_seconds`` pass).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeProvider", "RecordedRequest"]

FAULTS = ("status_500", "status_400", "drop", "drop_mid_stream", "slow")


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _Fault:
    kind: str
    times: int | None  # None: every request


@dataclass
class FakeProvider:
    reply: str = "Hello from the fake cloud"
    api_key: str | None = None
    slow_seconds: float = 30.0
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._fault: _Fault | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---
    def __enter__(self) -> "FakeProvider":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        provider = self

        class Handler(_Handler):
            owner = provider

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-provider").start()

    def stop(self) -> None:
        self._stopping.set()  # releases "slow" requests at once
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]  # type: ignore[union-attr]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # --- faults ---
    def inject(self, kind: str, times: int | None = None) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULTS}")
        with self._lock:
            self._fault = _Fault(kind, times)

    def clear(self) -> None:
        with self._lock:
            self._fault = None

    def _take_fault(self) -> str | None:
        with self._lock:
            fault = self._fault
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._fault = None
            return fault.kind

    @property
    def deltas(self) -> list[str]:
        words = self.reply.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]


class _Handler(BaseHTTPRequestHandler):
    owner: FakeProvider
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: streams need no length

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._json(400, {"error": {"type": "invalid_request_error", "message": "bad json"}})
        provider = self.owner
        provider.requests.append(RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if self.path == "/v1/chat/completions":
            style = "openai"
        elif self.path == "/v1/messages":
            style = "anthropic"
        else:
            return self._json(404, {"error": {"type": "not_found", "message": self.path}})
        if provider.api_key is not None and self._presented_key(style) != provider.api_key:
            return self._json(401, {"error": {"type": "authentication_error", "message": "invalid x-api-key"}})

        fault = provider._take_fault()
        if fault == "drop":
            return self._drop()
        if fault == "slow":
            provider._stopping.wait(provider.slow_seconds)
            return self._drop()
        if fault == "status_500":
            return self._json(500, {"error": {"type": "api_error", "message": "upstream exploded"}})
        if fault == "status_400":
            return self._json(400, {"error": {"type": "invalid_request_error", "message": "bad request"}})

        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        if isinstance(body.get("system"), str):
            prompt_tokens += len(body["system"].split())
        deltas = provider.deltas
        if body.get("max_tokens"):
            deltas = deltas[: int(body["max_tokens"])]
        finish = "length" if len(deltas) < len(provider.deltas) else "stop"
        model = body.get("model", "unknown")
        stream = bool(body.get("stream"))
        if style == "openai":
            if stream:
                return self._openai_stream(model, deltas, prompt_tokens, finish, body, fault == "drop_mid_stream")
            return self._json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(deltas)},
                             "finish_reason": finish}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(deltas),
                          "total_tokens": prompt_tokens + len(deltas)},
            })
        stop_reason = "max_tokens" if finish == "length" else "end_turn"
        if stream:
            return self._anthropic_stream(model, deltas, prompt_tokens, stop_reason, fault == "drop_mid_stream")
        return self._json(200, {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "".join(deltas)}], "stop_reason": stop_reason,
            "stop_sequence": None, "usage": {"input_tokens": prompt_tokens, "output_tokens": len(deltas)},
        })

    # --- helpers ---
    def _presented_key(self, style: str) -> str | None:
        if style == "anthropic" and self.headers.get("x-api-key"):
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization") or ""
        return auth[7:] if auth.lower().startswith("bearer ") else None

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()

    def _send(self, text: str) -> None:
        self.wfile.write(text.encode())
        self.wfile.flush()

    def _openai_stream(self, model: str, deltas: list[str], prompt_tokens: int, finish: str, body: dict,
                       drop: bool) -> None:
        self._start_stream()
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model}
        self._send("data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {"role": "assistant"},
                                                              "finish_reason": None}]}) + "\n\n")
        for i, delta in enumerate(deltas):
            self._send("data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {"content": delta},
                                                                  "finish_reason": None}]}) + "\n\n")
            if drop and i == 0:
                return self._drop()
        self._send("data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {},
                                                              "finish_reason": finish}]}) + "\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(deltas),
                     "total_tokens": prompt_tokens + len(deltas)}
            self._send("data: " + json.dumps({**base, "choices": [], "usage": usage}) + "\n\n")
        self._send("data: [DONE]\n\n")

    def _anthropic_stream(self, model: str, deltas: list[str], prompt_tokens: int, stop_reason: str,
                          drop: bool) -> None:
        self._start_stream()

        def event(kind: str, payload: dict) -> None:
            self._send(f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n")

        event("message_start", {"message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": prompt_tokens, "output_tokens": 1},
        }})
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        for i, delta in enumerate(deltas):
            event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": delta}})
            if drop and i == 0:
                return self._drop()
        event("content_block_stop", {"index": 0})
        event("message_delta", {"delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                "usage": {"output_tokens": len(deltas)}})
        event("message_stop", {})
