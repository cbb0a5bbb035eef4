"""`POST /api/users` (in-memory fakes): an email with any control character (Unicode Cc) is a 422 naming
the field; an account stored before the rule still lists and can be disabled."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from domain.identity.model import User
from entrypoints.http.app import create_app
from tests.support.frontends import fake_container

CONTROLS = ["\x00", "\x01", "\x07", "\x08", "\x0e", "\x1b", "\x7f", "\x80", "\x9b", "\x9f"]


@pytest.fixture
def env(tmp_path):
    container, uow = fake_container(tmp_path)
    admin = {"Authorization": f"Bearer {container.api_key_service().create('owner').secret}"}
    with TestClient(create_app(container)) as client:
        yield client, admin, uow


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("where", ["user{}@example.com", "user@exa{}mple.com"])
def test_an_email_with_a_control_character_is_a_422(env, control, where):
    client, admin, _ = env
    email = where.format(control)
    response = client.post("/api/users", json={"email": email, "password": "password123"}, headers=admin)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "email"
    assert "control character" in error["message"]
    assert email.lower() not in {u["email"] for u in client.get("/api/users", headers=admin).json()}


def test_ordinary_addresses_are_still_accepted(env):
    client, admin, _ = env
    for email in ("alice@example.com", "Bob.Smith+tag@Example.ORG", "zoë@exämple.com"):
        response = client.post("/api/users", json={"email": email, "password": "password123"}, headers=admin)
        assert response.status_code == 201, response.text


def test_an_account_stored_before_the_rule_still_lists_and_can_be_disabled(env):
    client, admin, uow = env
    with uow:
        legacy = uow.users.add(User("old\x01@example.com", approved_at=None))
        uow.commit()
    assert "old\x01@example.com" in {u["email"] for u in client.get("/api/users", headers=admin).json()}
    response = client.post(f"/api/users/{legacy.id}/disable", headers=admin)
    assert response.status_code == 200 and response.json()["status"] == "disabled"
