"""List endpoints with enum-like filters (in-memory fakes): an unknown value, or a filter the endpoint
does not have, is a 422 naming what is allowed, never the unfiltered list; known values filter."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from domain.downloads.model import Download
from domain.enums import DownloadStatus
from entrypoints.http.app import create_app
from entrypoints.http.openapi import QUERY_IGNORED
from tests.support.frontends import fake_container


@pytest.fixture
def env(tmp_path):
    container, uow = fake_container(tmp_path)
    admin = {"Authorization": f"Bearer {container.api_key_service().create('owner').secret}"}
    with TestClient(create_app(container)) as client:
        yield client, admin, container, uow


@pytest.mark.parametrize("path, param, allowed", [
    ("/api/downloads?status=bogus", "status.0", ["pending", "downloading", "paused", "completed", "failed"]),
    ("/api/downloads?status=paused&status=bogus", "status.1", ["paused", "cancelled"]),
    ("/api/users?status=bogus", "status", ["pending", "approved", "disabled"]),
    ("/api/audit?status=bogus", "status", ["success", "error", "cancelled"]),
    ("/api/models?status=bogus", "status", ["pending", "completed"]),
    ("/api/models?type=bogus", "type", ["text-gen", "vision", "embeddings", "audio"]),
    ("/api/models?capability=bogus", "capability", ["tools", "thinking"]),
])
def test_an_unknown_filter_value_is_a_422_naming_the_allowed_values(env, path, param, allowed):
    client, admin, _, _ = env
    response = client.get(path, headers=admin)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert all(f"'{value}'" in error["message"] for value in allowed), error["message"]


@pytest.mark.parametrize("path, accepted", [
    ("/api/downloads?stauts=paused", ["status"]),
    ("/api/users?state=pending", ["status"]),
    ("/api/audit?stauts=error", ["model", "status", "since", "until", "limit", "offset", "host"]),
    ("/api/audit/summary?status=error", ["since", "until"]),
])
def test_a_filter_the_endpoint_does_not_have_is_a_422_naming_the_accepted_ones(env, path, accepted):
    client, admin, _, _ = env
    response = client.get(path, headers=admin)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "accepted: " + ", ".join(accepted) in message, message


def test_known_values_filter_downloads_and_users(env):
    client, admin, container, uow = env
    with uow:
        for model, status in (("a", DownloadStatus.PAUSED), ("b", DownloadStatus.FAILED),
                              ("c", DownloadStatus.COMPLETED)):
            uow.downloads.add(Download(model_id=model, status=status))
        uow.commit()
    users = container.user_service()
    users.register("pending@example.com", "password123")
    users.register("approved@example.com", "password123", approved=True)

    def models(query):
        return sorted(d["model_id"] for d in client.get("/api/downloads" + query, headers=admin).json()["data"])

    assert models("") == ["a", "b", "c"]
    assert models("?status=paused") == ["a"]
    assert models("?status=paused&status=failed") == ["a", "b"]

    def emails(query):
        return {u["email"] for u in client.get("/api/users" + query, headers=admin).json()}

    assert emails("?status=pending") == {"pending@example.com"}
    assert "approved@example.com" in emails("?status=approved") and "pending@example.com" not in emails("?status=approved")
    assert {"pending@example.com", "approved@example.com"} <= emails("")


# -- endpoints without filters ------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/keys?limit=5", "/api/mappings?model=gpt-4", "/api/profiles?name=x",
                                  "/api/catalog?q=qwen", "/api/credentials?provider=openai", "/api/pool?verbose"])
def test_a_query_parameter_on_an_endpoint_without_filters_is_a_422(env, path):
    client, admin, _, _ = env
    response = client.get(path, headers=admin)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    name = path.split("?")[1].split("=")[0]
    assert error["type"] == "invalid_request_error" and error["param"] == name
    assert error["message"] == f"{name}: Extra inputs are not permitted (this endpoint takes no query parameters)"


def _management_operations():
    with tempfile.TemporaryDirectory() as home:
        routes = create_app(fake_container(Path(home))[0]).routes
    for route in routes:
        doc = getattr(route, "openapi", None)
        if doc is None or doc.query is not None or not route.path.startswith("/api/") or route.path in QUERY_IGNORED:
            continue
        path = re.sub(r"{[^}]+}", "1", route.path)
        for method in sorted(route.methods - {"HEAD"}):
            yield pytest.param(method, path, id=f"{method} {route.path}")


@pytest.mark.parametrize("method, path", list(_management_operations()))
def test_every_management_operation_without_a_query_refuses_one(env, method, path):
    # Before anything else: a DELETE or POST with a stray query parameter changes nothing.
    client, admin, _, _ = env
    response = client.request(method, path + "?bogus=1", headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "bogus"


@pytest.mark.parametrize("path", ["/api/health?_=1700000000", "/v1/models?api-version=2024-10-21"])
def test_the_health_probe_and_the_openai_api_still_ignore_query_strings(env, path):
    # Guards: monitors add cache-busters to probes; OpenAI-compatible clients add their own parameters
    # (the AzureOpenAI client sends api-version on every request).
    client, admin, _, _ = env
    assert client.get(path, headers=admin).status_code == 200


def test_the_messages_api_still_takes_the_beta_flag(env):
    # Guard: Claude Code posts to /v1/messages?beta=true.
    client, admin, _, _ = env
    body = {"model": "nothing-installed", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}
    response = client.post("/v1/messages?beta=true", json=body, headers=admin)
    assert response.status_code == 404, response.text  # the route answered: no such model
    assert response.json()["error"]["type"] == "not_found_error"
