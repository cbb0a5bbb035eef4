"""A client that leaves mid-stream stops generation (real uvicorn, in-memory runtime)."""

import asyncio
import threading
import time

import httpx

from application.inference.ports import GenerationChunk
from domain.enums import ModelType
from entrypoints.http.app import create_app
from tests.support.frontends import add_models, fake_container, serve_in_thread


class EndlessGeneration:
    """A runtime `generate` that never finishes by itself: only closing the stream ends it."""

    def __init__(self) -> None:
        self.produced = 0
        self.closed = threading.Event()

    def __call__(self, model, request):
        try:
            while True:
                self.produced += 1
                yield GenerationChunk(" on", 3, self.produced, None)
        finally:
            self.closed.set()  # GeneratorExit: the server closed the stream


def test_client_disconnect_closes_the_stream_and_stops_generating(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN))
    endless = EndlessGeneration()
    monkeypatch.setattr(container.runtime(), "generate", endless)
    with serve_in_thread(create_app(container)) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            body = {"model": "tiny-llama", "stream": True, "messages": [{"role": "user", "content": "on and on"}]}
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                assert response.status_code == 200
                received = 0
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        received += 1
                    if received >= 5:
                        break
            # Generation never ends by itself, so only the server closing the stream can set this.
            assert endless.closed.wait(timeout=20), "the abandoned stream was never closed"
            deadline = time.monotonic() + 20
            while True:
                loaded = client.get("/api/pool").json()["loaded"]
                if loaded and loaded[0]["in_use"] == 0:
                    break
                assert time.monotonic() < deadline, f"stream still holds the model: {loaded}"
                time.sleep(0.05)


def test_a_reader_that_stops_reading_holds_generation_back():
    """The producer thread runs at most MAX_CHUNKS_AHEAD chunks ahead of the consumer (backpressure)."""
    from entrypoints.http.inference.streaming import MAX_CHUNKS_AHEAD, _chunk_batches

    ran_too_far = threading.Event()

    def endless():
        n = 0
        while True:
            n += 1
            if n > MAX_CHUNKS_AHEAD + 1:  # +1: the chunk the producer holds while it waits for room
                ran_too_far.set()
            yield GenerationChunk("x", 1, n, None)

    async def read_one_batch_then_stall() -> bool:
        batches = _chunk_batches(endless(), GenerationChunk("", 1, 0, None))
        try:
            await batches.__anext__()  # the first chunk; nothing else is read
            # An endless producer without backpressure passes the bound at once; with it, never.
            return await asyncio.to_thread(ran_too_far.wait, 1.0)
        finally:
            await batches.aclose()

    assert asyncio.run(read_one_batch_then_stall()) is False


def test_a_non_streaming_client_that_leaves_stops_generation_too(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN))
    runtime = container.runtime()
    requested = 100_000
    with serve_in_thread(create_app(container)) as url:
        body = {"model": "tiny-llama", "max_tokens": requested, "messages": [{"role": "user", "content": "on and on"}]}
        with httpx.Client(base_url=url, timeout=30) as client:
            try:
                client.post("/v1/chat/completions", json=body, timeout=0.5)
            except httpx.TimeoutException:
                pass
            else:  # pragma: no cover - the fake runtime cannot finish 100k tokens in half a second
                raise AssertionError("the request finished before the client left")
            deadline = time.monotonic() + 20
            while True:
                loaded = client.get("/api/pool").json()["loaded"]
                if loaded and loaded[0]["in_use"] == 0:
                    break
                assert time.monotonic() < deadline, f"the abandoned request still holds the model: {loaded}"
                time.sleep(0.05)
        produced = runtime.generated_tokens
        time.sleep(0.3)
        assert runtime.generated_tokens == produced < requested
