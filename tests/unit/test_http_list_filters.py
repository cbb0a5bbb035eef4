"""List endpoints with enum-like filters (in-memory fakes): an unknown value, or a filter the endpoint
does not have, is a 422 naming what is allowed, never the unfiltered list; known values filter."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from domain.downloads.model import Download
from domain.enums import DownloadStatus
from entrypoints.http.app import create_app
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
