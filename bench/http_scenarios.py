"""HTTP and CLI scenarios for bench/inference.py (frontends area).

  (d) mlxm over HTTP streaming: `/v1/completions` with `stream: true` against a separate
      server process (the production container and app under uvicorn, the model imported).
  (e) `python -m mlx_lm.server --model DIR` on the same model, same prompt, same token count.
  CLI start-up: `mlxm --help` against `python -c pass` (median wall time of fresh processes).

Both servers run as their own processes on loopback, and one keep-alive httpx client reads
the SSE stream in this process, so (d) and (e) pay the same client costs. Run as a script
with `serve` to start the (d) server by hand:

    .venv/bin/python bench/http_scenarios.py serve --model DIR --port 8123
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

BENCH_MODEL_NAME = "bench-llama"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 300.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {timeout:.0f}s")


class ServerProcess:
    """A server subprocess on a free loopback port; stopped on exit."""

    def __init__(self, args: list[str], health_path: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [arg.replace("{port}", str(self.port)) for arg in args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        try:
            wait_for_http(self.url + health_path, self.process)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def stream_completion(client, url: str, prompt: str, tokens: int, model: str | None):
    """One streamed greedy `/v1/completions`; returns (tokens, seconds, ttft)."""
    body = {"prompt": prompt, "max_tokens": tokens, "temperature": 0.0, "stream": True,
            "stream_options": {"include_usage": True}}
    if model is not None:
        body["model"] = model
    start = time.perf_counter()
    first = None
    deltas = 0
    usage = None
    with client.stream("POST", url + "/v1/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data.strip() == "[DONE]":
                break
            event = json.loads(data)
            if event.get("usage"):
                usage = event["usage"].get("completion_tokens")
            for choice in event.get("choices") or []:
                # Time to the first token event, with or without text: a random-weight model emits
                # partial UTF-8 that detokenizers hold back, so "first text" would measure the end.
                if first is None:
                    first = time.perf_counter() - start
                if choice.get("text"):
                    deltas += 1
    seconds = time.perf_counter() - start
    return (usage if usage is not None else deltas), seconds, (first or seconds)


# ---------------------------------------------------------------------------- scenarios


def start_servers(ctx) -> None:
    """Start (d) and (e) once; they stay up for every repeat (bench/inference.py stops them)."""
    if "mlxm_server" in ctx.extras:
        return
    import httpx

    ctx.extras["mlxm_server"] = ServerProcess(
        [sys.executable, str(Path(__file__).resolve()), "serve", "--model", str(ctx.model_dir), "--port", "{port}",
         "--tokens", str(ctx.tokens), "--batch", str(max(8, ctx.streams))],
        "/api/health",
    )
    ctx.extras["mlx_lm_server"] = ServerProcess(
        [sys.executable, "-m", "mlx_lm.server", "--model", str(ctx.model_dir), "--host", "127.0.0.1", "--port", "{port}",
         "--log-level", "WARNING"],
        "/health",
    )
    ctx.extras["http_client"] = httpx.Client(timeout=600)


def stop_servers(ctx) -> None:
    for key in ("mlxm_server", "mlx_lm_server"):
        server = ctx.extras.pop(key, None)
        if server is not None:
            server.stop()
    client = ctx.extras.pop("http_client", None)
    if client is not None:
        client.close()


def mlxm_http(ctx, prompt: str) -> tuple[int, float, float]:
    """(d) mlxm over HTTP streaming (`/v1/completions`, SSE): (tokens, seconds, ttft)."""
    start_servers(ctx)
    return stream_completion(ctx.extras["http_client"], ctx.extras["mlxm_server"].url, prompt, ctx.tokens,
                             BENCH_MODEL_NAME)


def mlx_lm_server(ctx, prompt: str) -> tuple[int, float, float]:
    """(e) mlx_lm.server on the same model, prompt and token count: (tokens, seconds, ttft)."""
    start_servers(ctx)
    return stream_completion(ctx.extras["http_client"], ctx.extras["mlx_lm_server"].url, prompt, ctx.tokens, None)


def cli_startup(repeats: int = 7) -> tuple[float, float]:
    """Median wall seconds of `mlxm --help` and of `python -c pass` (fresh processes, interleaved)."""
    mlxm = Path(sys.executable).with_name("mlxm")
    env = {**os.environ, "MLX_MANAGER_HOME": tempfile.mkdtemp(prefix="mlxm-bench-home-")}
    help_times, bare_times = [], []
    for _ in range(repeats + 1):  # the first pair warms the page cache and is dropped
        start = time.perf_counter()
        subprocess.run([str(mlxm), "--help"], stdout=subprocess.DEVNULL, env=env, check=True)
        help_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        bare_times.append(time.perf_counter() - start)
    return statistics.median(help_times[1:]), statistics.median(bare_times[1:])


def report_cli_startup() -> bool:
    help_s, bare_s = cli_startup()
    delta = help_s - bare_s
    ok = delta <= 0.25
    print(f"{'CLI start-up: mlxm --help':34} {help_s * 1000:6.1f} ms")
    print(f"{'CLI start-up: python -c pass':34} {bare_s * 1000:6.1f} ms")
    print(f"{'mlxm --help - python':34} {delta * 1000:6.1f} ms   (target <= 250 ms)  {'ok' if ok else 'BELOW TARGET'}")
    return ok


# ---------------------------------------------------------------------------- the (d) server


def serve(model_dir: Path, port: int, tokens: int, batch: int) -> None:
    """The production app (container, SQLite, uvicorn) serving the imported bench model."""
    import uvicorn

    from entrypoints.http.app import create_app
    from tests.support.frontends import real_container

    os.environ["MLX_MANAGER_LOG_LEVEL"] = "warning"  # no per-request access lines while measuring
    home = Path(tempfile.mkdtemp(prefix="mlxm-bench-server-"))
    container = real_container(home, default_max_tokens=tokens, max_batch_size=batch, enable_batching=True)
    container.library_service().register_local(model_dir, BENCH_MODEL_NAME)
    app = create_app(container)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, log_config=None)


def _main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve")
    serve_parser.add_argument("--model", required=True, type=Path)
    serve_parser.add_argument("--port", required=True, type=int)
    serve_parser.add_argument("--tokens", type=int, default=256)
    serve_parser.add_argument("--batch", type=int, default=8)
    sub.add_parser("startup")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.model, args.port, args.tokens, args.batch)
    else:
        report_cli_startup()


if __name__ == "__main__":
    _main()
