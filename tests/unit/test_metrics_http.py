"""GET /metrics: counters move by the right amounts, labels stay bounded, auth guards the scrape."""

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from application.inference.pool import PoolLimits
from domain.enums import ModelType
from entrypoints.http.app import create_app
from tests.support.frontends import add_models, fake_container


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path, pool_limits=PoolLimits(max_models=1, max_memory_bytes=10_000))
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN), ("tiny-two", ModelType.TEXT_GEN))
    with TestClient(create_app(container)) as client:
        yield client, container


def _chat(client, model, stream=False, max_tokens=3):
    return client.post("/v1/chat/completions", json={
        "model": model, "stream": stream, "max_tokens": max_tokens, "temperature": 0,
        "messages": [{"role": "user", "content": "alpha beta gamma delta epsilon"}],
    })


def test_counters_move_by_the_right_amounts(env):
    client, _ = env
    before = _samples(client.get("/metrics").text)
    usage = [_chat(client, "tiny-llama").json()["usage"] for _ in range(2)]
    streamed = _chat(client, "tiny-llama", stream=True)
    assert streamed.status_code == 200
    assert _chat(client, "no-such-model-123").status_code == 404
    assert client.get("/api/models/nope-xyz").status_code == 404
    after = _samples(client.get("/metrics").text)

    def delta(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    endpoint = "/v1/chat/completions"
    assert delta("mlxm_inference_requests_total", endpoint=endpoint, model="tiny-llama", status="success") == 3
    assert delta("mlxm_completion_tokens_total", model="tiny-llama") == sum(u["completion_tokens"] for u in usage) + 3
    assert delta("mlxm_prompt_tokens_total", model="tiny-llama") == 3 * usage[0]["prompt_tokens"] > 0
    # A random model name never becomes a label value: it is counted as "other".
    assert not any("no-such-model-123" in str(key) for key in after)
    assert delta("mlxm_http_requests_total", method="POST", endpoint=endpoint, status="200") == 3
    assert delta("mlxm_http_requests_total", method="POST", endpoint=endpoint, status="404") == 1
    assert delta("mlxm_http_requests_total", method="GET", endpoint="/api/models/{name:path}", status="404") == 1
    assert delta("mlxm_time_to_first_token_seconds_count", model="tiny-llama") == 3
    assert delta("mlxm_inference_request_duration_seconds_count", endpoint=endpoint, model="tiny-llama") == 3
    assert delta("mlxm_decode_tokens_per_second_count", model="tiny-llama") == 3  # 3 tokens each: 2 decoded
    assert _value(after, "mlxm_inference_queue_depth") == 0 and _value(after, "mlxm_inference_in_flight") == 0
    assert _value(after, "mlxm_loaded_models") == 1
    assert _value(after, "mlxm_loaded_model_bytes", model="tiny-llama") == _value(after, "mlxm_loaded_bytes") > 0
    assert _value(after, "mlxm_memory_limit_bytes") == 10_000


def test_an_eviction_is_counted(env):
    client, _ = env
    assert _chat(client, "tiny-llama").status_code == 200
    before = _value(_samples(client.get("/metrics").text), "mlxm_model_evictions_total")
    assert _chat(client, "tiny-two").status_code == 200  # max_models=1: tiny-llama makes room
    after = _samples(client.get("/metrics").text)
    assert _value(after, "mlxm_model_evictions_total") - before == 1
    assert _value(after, "mlxm_loaded_model_bytes", model="tiny-two") > 0
    assert ("mlxm_loaded_model_bytes", (("model", "tiny-llama"),)) not in after


def test_an_unknown_path_is_labelled_other(env):
    client, _ = env
    client.get("/definitely/not/a/route/12345")
    text = client.get("/metrics").text
    assert "/definitely/not" not in text
    assert _value(_samples(text), "mlxm_http_requests_total", method="GET", endpoint="other", status="404") >= 1


def test_metrics_need_an_admin_key_or_the_metrics_token_when_auth_is_on(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, _ = fake_container(tmp_path, auth="on")
    container.settings().manager.metrics_token = __import__("pydantic").SecretStr("scrape-secret")
    users = container.user_service()
    admin = users.register("admin@example.com", "pw-admin-123456", is_admin=True, approved=True)
    plain = users.register("user@example.com", "pw-user-1234567", approved=True)
    keys = container.api_key_service()
    admin_key = keys.create("a", user=admin.id).secret
    user_key = keys.create("u", user=plain.id).secret
    with TestClient(create_app(container)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {user_key}"}).status_code == 403
        ok = client.get("/metrics", headers={"Authorization": f"Bearer {admin_key}"})
        assert ok.status_code == 200 and "mlxm_http_requests_total" in ok.text
        token = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert token.status_code == 200 and token.headers["content-type"].startswith("text/plain")
