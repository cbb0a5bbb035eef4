"""Auth on the live server (uvicorn, SQLite): 401 / 403 on every route family, open health, keys and users."""

from __future__ import annotations

import re

import httpx
import pytest
from click.testing import CliRunner

from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from entrypoints.http.auth import needs_admin
from tests.support.auth_server import sqlite_container
from tests.support.frontends import serve_in_thread

OPEN = {"/api/health", "/api/auth/login"}


def _concrete(path: str) -> str:
    return re.sub(r"{[^}]+}", "1", path)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlxm-home")
    container = sqlite_container(home, auth="on")
    keys, users = container.api_key_service(), container.user_service()
    admin = keys.create("admin").secret
    users.register("bob@example.com", "bob-password", approved=True)
    user = keys.create("bob", user="bob@example.com").secret
    users.register("eve@example.com", "eve-password", approved=True)
    disabled = keys.create("eve", user="eve@example.com").secret
    users.disable("eve@example.com")
    revoked = keys.create("old").secret
    keys.revoke("old")
    app = create_app(container)
    with serve_in_thread(app) as url:
        yield {"url": url, "app": app, "container": container, "admin": admin, "user": user,
               "disabled": disabled, "revoked": revoked}


def call(server, method, path, key=None, header="authorization", **kw):
    headers = {}
    if key is not None:
        headers[header] = f"Bearer {key}" if header == "authorization" else key
    return httpx.request(method, server["url"] + path, headers=headers, timeout=30, **kw)


def protected_routes(app):
    for route in app.routes:
        path = getattr(route, "path", "")
        if (path.startswith("/v1") or path.startswith("/api")) and path not in OPEN:
            for method in sorted(route.methods - {"HEAD"}):
                yield method, _concrete(path)


def test_every_v1_and_api_route_needs_a_valid_key(server):
    routes = list(protected_routes(server["app"]))
    assert len(routes) > 30 and {p.split("/")[1] for _, p in routes} == {"v1", "api"}
    for index, (method, path) in enumerate(routes):
        # Every route without a key and with a wrong one; revoked / disabled-user keys on every third route.
        keys = (None, "mlxm-not-a-key", server["revoked"], server["disabled"]) if index % 3 == 0 else (None, "mlxm-x")
        for key in keys:
            response = call(server, method, path, key)
            assert response.status_code == 401, (method, path, key, response.text)
            assert response.json()["error"]["type"] == "authentication_error"
            assert response.headers["www-authenticate"] == "Bearer"


def test_management_writes_and_sensitive_reads_need_an_admin(server):
    checked = 0
    for method, path in protected_routes(server["app"]):
        if needs_admin(method, path):
            response = call(server, method, path, server["user"], json={})
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["type"] == "permission_error"
            admin = call(server, method, path, server["admin"], json={})
            # Allowed through, and not a crash: an empty body is a client mistake (4xx) at worst.
            assert admin.status_code not in (401, 403) and admin.status_code < 500, (method, path, admin.text)
            checked += 1
    assert checked > 15
    for path in ("/api/users", "/api/credentials", "/api/audit", "/api/audit/summary"):
        assert call(server, "GET", path, server["user"]).status_code == 403
        assert call(server, "GET", path, server["admin"]).status_code == 200


def test_health_is_open_and_users_can_read_and_infer(server):
    assert call(server, "GET", "/api/health").status_code == 200
    user = server["user"]
    for path in ("/v1/models", "/api/models", "/api/catalog", "/api/profiles", "/api/mappings", "/api/keys"):
        assert call(server, "GET", path, user).status_code == 200, path
    chat = call(server, "POST", "/v1/chat/completions", user,
                json={"model": "tiny-local", "max_tokens": 2, "messages": [{"role": "user", "content": "hi you"}]})
    assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] == "hi you"
    api_chat = call(server, "POST", "/api/chat", user,
                    json={"model": "tiny-local", "messages": [{"role": "user", "content": "hi"}]})
    assert api_chat.status_code == 200, api_chat.text
    # x-api-key is accepted on the Anthropic route only.
    body = {"model": "tiny-local", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
    assert call(server, "POST", "/v1/messages", user, header="x-api-key", json=body).status_code == 200
    assert call(server, "POST", "/v1/chat/completions", user, header="x-api-key",
                json={**body}).status_code == 401


def test_users_manage_only_their_own_keys(server):
    user, admin = server["user"], server["admin"]
    created = call(server, "POST", "/api/keys", user, json={"name": "bob-laptop"})
    assert created.status_code == 201
    secret = created.json()["key"]
    assert call(server, "GET", "/v1/models", secret).status_code == 200
    listed = call(server, "GET", "/api/keys", user).json()
    assert {k["name"] for k in listed} == {"bob", "bob-laptop"} and all("key" not in k for k in listed)
    assert call(server, "POST", "/api/keys", user, json={"name": "x", "user": "1"}).status_code == 403
    admin_key_id = next(k["id"] for k in call(server, "GET", "/api/keys", admin).json() if k["name"] == "admin")
    assert call(server, "DELETE", f"/api/keys/{admin_key_id}", user).status_code == 403
    assert call(server, "DELETE", "/api/keys/bob-laptop", user).status_code == 200
    assert call(server, "GET", "/v1/models", secret).status_code == 401


def test_pending_users_log_in_after_approval(server):
    admin = server["admin"]
    made = call(server, "POST", "/api/users", admin, json={"email": "carol@example.com", "password": "carol-pass"})
    assert made.status_code == 201 and made.json()["status"] == "pending"
    login = {"email": "carol@example.com", "password": "carol-pass", "key_name": "carol"}
    # 401 with the right password and with a wrong one (no account-state oracle); only the right
    # password learns why (tests/e2e/test_leaks.py has the disabled case).
    pending = call(server, "POST", "/api/auth/login", json=login)
    assert pending.status_code == 401 and "pending" in pending.json()["error"]["message"]
    wrong = call(server, "POST", "/api/auth/login", json={**login, "password": "nope-nope"})
    assert wrong.status_code == 401 and "pending" not in wrong.text
    assert call(server, "POST", f"/api/users/{made.json()['id']}/approve", admin).json()["status"] == "approved"
    key = call(server, "POST", "/api/auth/login", json=login)
    assert key.status_code == 201
    assert call(server, "GET", "/v1/models", key.json()["key"]).status_code == 200
    assert call(server, "GET", "/api/users", key.json()["key"]).status_code == 403


def test_mapping_patch_rejects_nulls_for_required_fields(server):
    admin = server["admin"]
    created = call(server, "POST", "/api/mappings", admin, json={
        "model_pattern": "patch-me", "backend_type": "openai", "fallback_backend": "local", "backend_model": "gpt-x"})
    assert created.status_code == 201, created.text
    path = f"/api/mappings/{created.json()['id']}"
    for field in ("model_pattern", "pattern_type", "backend_type", "priority", "enabled"):
        response = call(server, "PATCH", path, admin, json={field: None})
        assert response.status_code == 422, (field, response.text)
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and "null" in error["message"], (field, error)
    # The optional fields can be cleared with null; the rest of the mapping is unchanged.
    cleared = call(server, "PATCH", path, admin, json={"fallback_backend": None, "backend_model": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["fallback_backend"] is None and cleared.json()["backend_model"] is None
    assert cleared.json()["backend_type"] == "openai" and cleared.json()["model_pattern"] == "patch-me"
    assert call(server, "DELETE", path, admin).status_code == 204


def test_audit_time_filters_take_zoneless_times_as_utc(server):
    admin = server["admin"]
    user = server["user"]
    chat = call(server, "POST", "/v1/chat/completions", user,
                json={"model": "tiny-local", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 200
    server["container"].audit_sink().flush()
    for params in ({"since": "2000-01-01T00:00:00", "until": "2999-01-01T00:00:00Z"},
                   {"since": "2000-01-01T00:00:00+02:00", "until": "2999-01-01T00:00:00"},
                   {"since": "2000-01-01T00:00:00", "until": "2999-01-01T00:00:00"}):
        listed = call(server, "GET", "/api/audit", admin, params=params)
        assert listed.status_code == 200, (params, listed.text)
        assert listed.json()["total"] >= 1
        summary = call(server, "GET", "/api/audit/summary", admin, params=params)
        assert summary.status_code == 200, (params, summary.text)
        assert any(row["model"] == "tiny-local" for row in summary.json()["models"]), summary.json()
    # Zone-less `since` after an aware `until` is still compared (as UTC), not a crash.
    reversed_window = call(server, "GET", "/api/audit", admin,
                           params={"since": "2999-01-01T00:00:00", "until": "2000-01-01T00:00:00Z"})
    assert reversed_window.status_code == 422


def test_loopback_default_is_open_and_exposed_binding_is_not(tmp_path):
    from starlette.testclient import TestClient

    open_app = create_app(sqlite_container(tmp_path / "a"))
    with TestClient(open_app) as client:
        assert client.get("/v1/models").status_code == 200
        assert client.get("/api/mappings").status_code == 200
        # Changing routes needs an admin key even with auth off (tests/e2e/test_http_edge.py has the rest).
        assert client.post("/api/mappings", json={"model_pattern": "x", "backend_type": "openai"}).status_code == 403
        admin = open_app.state.container.api_key_service().create("owner").secret
        assert client.post("/api/mappings", json={"model_pattern": "x", "backend_type": "openai"},
                           headers={"authorization": f"Bearer {admin}"}).status_code == 201
    exposed = sqlite_container(tmp_path / "b", host="0.0.0.0", auth="off")  # `off` cannot open an exposed server
    with TestClient(create_app(exposed)) as client:
        assert client.get("/v1/models").status_code == 401
        assert client.get("/api/health").status_code == 200


def test_serve_refuses_an_exposed_address_without_any_key(tmp_path):
    container = sqlite_container(tmp_path)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "1"], obj=container)
    assert result.exit_code != 0 and "mlxm keys create" in result.output
    assert "Traceback" not in result.output
