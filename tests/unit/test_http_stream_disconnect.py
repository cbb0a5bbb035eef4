"""A client that leaves mid-stream stops generation (real uvicorn, in-memory runtime)."""

import time

import httpx

from domain.enums import ModelType
from entrypoints.http.app import create_app
from tests.support.frontends import add_models, fake_container, serve_in_thread


def test_client_disconnect_closes_the_stream_and_stops_generating(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN))
    runtime = container.runtime()
    requested = 100_000
    with serve_in_thread(create_app(container)) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            body = {"model": "tiny-llama", "stream": True, "max_tokens": requested,
                    "messages": [{"role": "user", "content": "on and on"}]}
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                assert response.status_code == 200
                received = 0
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        received += 1
                    if received >= 5:
                        break
            # The lease is released once the server closed the generation stream.
            deadline = time.monotonic() + 20
            while True:
                loaded = client.get("/api/pool").json()["loaded"]
                if loaded and loaded[0]["in_use"] == 0:
                    break
                assert time.monotonic() < deadline, f"stream still holds the model: {loaded}"
                time.sleep(0.05)
            produced = runtime.generated_tokens
            time.sleep(0.3)
            assert runtime.generated_tokens == produced  # nothing generates after the close
            assert produced < requested


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
