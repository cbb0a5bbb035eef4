"""`MLX_SERVER_TIMEOUT_{CHAT,COMPLETIONS,EMBEDDINGS}_SECONDS`: a local request past its limit is
cancelled (generation stops) and answered 504 (real uvicorn, in-memory runtime)."""

import json
import threading
import time

import httpx

from application.inference.ports import GenerationChunk
from domain.enums import ModelType
from entrypoints.composition.settings import ServerSettings
from entrypoints.http.app import create_app
from entrypoints.http.inference_timeouts import limits_from
from tests.support.frontends import add_models, fake_container, serve_in_thread


class EndlessGeneration:
    """Never finishes by itself: only closing the stream ends it."""

    def __init__(self) -> None:
        self.produced = 0
        self.closed = threading.Event()
        self.finite: int | None = None  # a test may let one generation end after this many tokens

    def __call__(self, model, request):
        try:
            for step in range(1, (self.finite or 10**9) + 1):
                self.produced += 1
                time.sleep(0.005)
                yield GenerationChunk(" on", 3, step, "length" if step == self.finite else None)
        finally:
            self.closed.set()


def _server(tmp_path, monkeypatch, **limits):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path, **limits)
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN))
    endless = EndlessGeneration()
    monkeypatch.setattr(container.runtime(), "generate", endless)
    return container, endless


def _stopped(endless: EndlessGeneration) -> None:
    assert endless.closed.wait(timeout=20), "the timed-out generation was never closed"
    produced = endless.produced
    time.sleep(0.3)
    assert endless.produced == produced, "generation went on after the timeout"


def test_chat_past_its_limit_is_504_and_generation_stops(tmp_path, monkeypatch):
    container, endless = _server(tmp_path, monkeypatch, timeout_chat_seconds=1.0)
    body = {"model": "tiny-llama", "max_tokens": 100000, "messages": [{"role": "user", "content": "on"}]}
    with serve_in_thread(create_app(container)) as url, httpx.Client(base_url=url, timeout=60) as client:
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 504, response.text
        error = response.json()["error"]
        assert error["type"] == "backend_timeout" and "1 s limit" in error["message"]
        _stopped(endless)


def test_a_started_stream_past_its_limit_ends_with_an_error_event(tmp_path, monkeypatch):
    container, endless = _server(tmp_path, monkeypatch, timeout_chat_seconds=1.0)
    body = {"model": "tiny-llama", "stream": True, "max_tokens": 100000,
            "messages": [{"role": "user", "content": "on"}]}
    with serve_in_thread(create_app(container)) as url, httpx.Client(base_url=url, timeout=60) as client:
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
        assert json.loads(events[-1])["error"]["type"] == "backend_timeout"
        _stopped(endless)


def test_each_endpoint_has_its_own_limit(tmp_path, monkeypatch):
    # Only completions is limited: a chat request runs past that limit and finishes normally.
    container, endless = _server(tmp_path, monkeypatch, timeout_completions_seconds=0.5)
    with serve_in_thread(create_app(container)) as url, httpx.Client(base_url=url, timeout=60) as client:
        endless.finite = 200
        chat = client.post("/v1/chat/completions", json={
            "model": "tiny-llama", "max_tokens": 200, "messages": [{"role": "user", "content": "on"}]})
        assert chat.status_code == 200, chat.text  # 200 tokens at 5 ms each: past 0.5 s
        endless.finite, endless.closed = None, threading.Event()
        limited = client.post("/v1/completions", json={"model": "tiny-llama", "prompt": "on", "max_tokens": 100000})
        assert limited.status_code == 504, limited.text
        _stopped(endless)


def test_settings_map_to_paths(monkeypatch):
    monkeypatch.setenv("MLX_SERVER_TIMEOUT_CHAT_SECONDS", "30")
    monkeypatch.setenv("MLX_SERVER_TIMEOUT_EMBEDDINGS_SECONDS", "5")
    limits = limits_from(ServerSettings())
    assert limits["/v1/chat/completions"] == limits["/v1/messages"] == limits["/api/chat"] == 30
    assert limits["/v1/embeddings"] == 5 and "/v1/completions" not in limits  # 0: no limit
