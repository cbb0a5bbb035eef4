"""Issue 12 item 5: hostile JSON is a 4xx on every JSON route (real SQLite), and a refused inference
request keeps its audit row with the refusal's error type."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from domain.audit.model import AuditQuery
from entrypoints.http.app import create_app
from entrypoints.http.json_body import MAX_DEPTH
from tests.support.auth_server import sqlite_container

LONE_SURROGATE = b'{"model": "tiny-local", "name": "\\ud800", "messages": [{"role": "user", "content": "\\udfff"}]}'
DEEP = b'{"model": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
JUST_TOO_DEEP = b'{"model": "tiny-local", "x": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}"
HUGE_INT = b'{"model": "tiny-local", "max_tokens": 1' + b"0" * 5000 + b"}"
NOT_JSON_NUMBER = b'{"model": "tiny-local", "temperature": NaN}'
CASES = [("lone surrogate", LONE_SURROGATE, 400), ("50k nesting", DEEP, 400), ("depth bound", JUST_TOO_DEEP, 400),
         ("5000 digits", HUGE_INT, 422), ("NaN", NOT_JSON_NUMBER, 400)]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    container = sqlite_container(tmp_path_factory.mktemp("hostile-home"))
    admin = container.api_key_service().create("owner").secret  # credential writes need an admin even auth off
    with TestClient(create_app(container)) as client:
        yield client, container, admin


def json_routes(app):
    for route in app.routes:
        doc = getattr(route, "openapi", None)
        if doc is not None and doc.body is not None and doc.body_content_type == "application/json":
            for method in route.methods - {"HEAD"}:
                yield method, re.sub(r"{[^}]+}", "1", route.path)


def test_every_json_route_answers_hostile_bodies_with_a_4xx(env):
    client, _, admin = env
    routes = sorted(set(json_routes(client.app)))
    assert len(routes) >= 15 and ("POST", "/v1/chat/completions") in routes and ("POST", "/api/users") in routes
    failures = []
    for method, path in routes:
        for label, body, status in CASES:
            response = client.request(method, path, content=body, headers={
                "content-type": "application/json", "authorization": f"Bearer {admin}"})
            body = response.json()
            # mlxm's shape everywhere; the Anthropic Messages routes answer in Anthropic's error shape.
            shape = {"type", "error"} if path.startswith("/v1/messages") else {"error"}
            ok = response.status_code == status and set(body) == shape and body["error"]["message"]
            if not ok:
                failures.append(f"{method} {path} {label}: {response.status_code} {response.text[:120]}")
    assert not failures, "\n".join(failures)


def test_refusals_say_what_is_wrong(env):
    client, _, _ = env
    surrogate = client.post("/v1/chat/completions", content=LONE_SURROGATE, headers={"content-type": "application/json"})
    assert "not valid Unicode" in surrogate.json()["error"]["message"]
    deep = client.post("/v1/chat/completions", content=DEEP, headers={"content-type": "application/json"})
    assert f"deeper than {MAX_DEPTH}" in deep.json()["error"]["message"]
    huge = client.post("/v1/chat/completions", content=HUGE_INT, headers={"content-type": "application/json"})
    assert huge.json()["error"]["message"] == "an integer with 5001 digits is too large"


def test_a_refused_inference_request_keeps_its_audit_row(env):
    client, container, _ = env
    refused = {}
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/messages", "/api/chat", "/v1/embeddings",
                 "/v1/audio/speech"):
        response = client.post(path, content=LONE_SURROGATE, headers={"content-type": "application/json"})
        assert response.status_code == 400
        refused[response.headers["x-request-id"]] = path
    wrong_field = client.post("/v1/chat/completions", json={"model": "tiny-local", "messages": "nope"})
    assert wrong_field.status_code == 422
    huge = client.post("/v1/completions", content=HUGE_INT, headers={"content-type": "application/json"})
    container.audit_sink().flush()
    rows = {row.request_id: row for row in container.audit_service().query(AuditQuery(limit=100)).items}
    for request_id, path in refused.items():
        row = rows[request_id]
        assert (row.endpoint, row.status.value, row.error_type) == (path, "error", "invalid_unicode")
    field_row = rows[wrong_field.headers["x-request-id"]]
    assert (field_row.model, field_row.error_type) == ("tiny-local", "invalid_request_error")
    assert rows[huge.headers["x-request-id"]].error_type == "invalid_integer"
