"""`mlxm serve` as users start it: a fresh process on loopback answers /v1/models and /openapi.json."""

import json
import os

import httpx

from tests.support.serve_process import mlxm_serve


def test_mlxm_serve_answers_and_stops_cleanly(tmp_path):
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path), "MLX_MANAGER_LOG_FORMAT": "json"}
    with mlxm_serve(env) as served:
        url = served.url
        models = httpx.get(f"{url}/v1/models", headers={"X-Request-ID": "smoke-1"}, timeout=10)
        assert models.status_code == 200 and models.json() == {"object": "list", "data": []}
        assert models.headers["x-request-id"] == "smoke-1"
        assert "/v1/chat/completions" in httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]
        missing = httpx.post(f"{url}/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]})
        assert missing.status_code == 404 and missing.json()["error"]["type"]
        # Other CLI commands build their container without metrics; `mlxm serve` turns them back on.
        metrics = httpx.get(f"{url}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert 'mlxm_http_requests_total{endpoint="/v1/models",method="GET",status="200"} 1.0' in metrics.text
    stderr = served.stderr
    assert served.process.returncode == 0, stderr
    # JSON logs: the request line carries the request id the client sent.
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "request" and line.get("request_id") == "smoke-1" for line in lines), stderr[-2000:]
