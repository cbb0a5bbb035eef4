"""Backend mappings over HTTP (in-memory fakes): an empty model name is never routed by a catch-all
pattern, and an exact duplicate mapping is a 409, on create and on update."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from entrypoints.http.app import create_app
from tests.support.frontends import fake_container

CATCH_ALL = {"model_pattern": ".*", "pattern_type": "regex", "backend_type": "openai"}


@pytest.fixture
def env(tmp_path):
    container, _ = fake_container(tmp_path)
    admin = {"Authorization": f"Bearer {container.api_key_service().create('owner').secret}"}
    with TestClient(create_app(container)) as client:
        yield client, admin, container


def _audit_backends(client, admin) -> list[tuple[str, str]]:
    return [(row["model"], row["backend"]) for row in client.get("/api/audit", headers=admin).json()["items"]]


@pytest.mark.parametrize("model", ["", " ", "\t "])  # only whitespace is no name either (it was routed)
@pytest.mark.parametrize("path, body", [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/completions", {"prompt": "hi"}),
])
def test_a_catch_all_mapping_does_not_send_an_empty_model_to_the_cloud(env, path, body, model):
    client, admin, container = env
    assert client.post("/api/mappings", json=CATCH_ALL, headers=admin).status_code == 201  # still a valid rule
    assert container.backend_mapping_service().resolve("any-name").backend_type.value == "openai"
    assert container.backend_mapping_service().resolve(model).backend_type.value == "local"
    response = client.post(path, json={**body, "model": model})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == {"type": "invalid_request_error", "message": "a model name is required"}
    assert _audit_backends(client, admin) == [(model, "local")]  # never tried on the cloud backend


def test_an_exact_duplicate_mapping_is_a_409(env):
    client, admin, _ = env
    first = client.post("/api/mappings", json=CATCH_ALL, headers=admin)
    assert first.status_code == 201
    again = client.post("/api/mappings", json=CATCH_ALL, headers=admin)
    assert again.status_code == 409, again.text
    assert again.json()["error"]["type"] == "conflict" and str(first.json()["id"]) in again.json()["error"]["message"]
    assert len(client.get("/api/mappings", headers=admin).json()) == 1
    # Differing in any field is another mapping; updating it into a copy of the first is a 409 too.
    other = client.post("/api/mappings", json={**CATCH_ALL, "priority": 1}, headers=admin)
    assert other.status_code == 201
    patched = client.patch(f"/api/mappings/{other.json()['id']}", json={"priority": 0}, headers=admin)
    assert patched.status_code == 409 and patched.json()["error"]["type"] == "conflict"
    # Saving a mapping unchanged is no conflict with itself.
    same = client.patch(f"/api/mappings/{other.json()['id']}", json={"priority": 1}, headers=admin)
    assert same.status_code == 200, same.text
