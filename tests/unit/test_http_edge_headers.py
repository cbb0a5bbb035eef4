"""The edge's header checks on the real app (in-memory fakes): malformed Host values and repeated
credential headers are a 4xx JSON error, never waved through; every well-formed allowed Host still works."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from entrypoints import local_admin
from entrypoints.http.app import create_app
from tests.support.frontends import fake_container


@pytest.fixture
def client(tmp_path):
    container, _ = fake_container(tmp_path)
    container.settings().manager.allowed_hosts = "models.lan, *.corp.example"
    with TestClient(create_app(container)) as client:
        yield client


def _error(response) -> dict:
    return response.json()["error"]


# -- Host ----------------------------------------------------------------------------------
@pytest.mark.parametrize("host", [
    "", " ", "[::1]evil", "127.0.0.1:abc", "127.0.0.1:\u00b2".encode("latin-1"), "localhost:0", "localhost:65536",
    "[::1", "::1", "[evil.example]:80", "local host", "localhost\t:80", "a..b", "-evil.example", "999.1.1.1",
    "localhost:80:80", "[::1]:80x", "[fe80::1%25eth0]", "x" * 64 + ".example",
])
def test_a_malformed_host_is_a_400_json_error(client, host):
    response = client.get("/api/health", headers={"host": host})
    assert response.status_code == 400, response.text
    error = _error(response)
    assert error["type"] == "invalid_request_error" and "host" in error["message"].lower()


def test_two_host_headers_are_a_400(client):
    response = client.get("/api/health", headers=[("host", "localhost"), ("host", "evil.example")])
    assert response.status_code == 400 and _error(response)["type"] == "invalid_request_error", response.text


@pytest.mark.parametrize("host", [
    "127.0.0.1:10242", "127.0.0.1", "localhost", "localhost:1", "localhost:65535", "LOCALHOST.:10242",
    "[::1]:10242", "[::1]", "[::ffff:127.0.0.1]:80", "127.0.0.2:80", "testserver", "models.lan",
    "models.lan:8080", "a.corp.example", "a.corp.example:443", " localhost ",
    "localhost:", "[::1]:", "models.lan:",  # an empty port is the default one (RFC 3986 `port = *DIGIT`)
])
def test_well_formed_allowed_hosts_still_pass(client, host):
    assert client.get("/api/health", headers={"host": host}).status_code == 200


def test_an_empty_port_means_the_default_one_for_the_origin_check(client):
    # `Host: localhost:` is the scheme's default port (80 here), so only that Origin is the same origin.
    same = client.post("/api/health", headers={"host": "localhost:", "origin": "http://localhost"}, json={})
    assert same.status_code != 403, same.text
    other = client.post("/api/health", headers={"host": "localhost:", "origin": "http://localhost:10242"}, json={})
    assert other.status_code == 403 and _error(other)["type"] == "forbidden_origin", other.text


@pytest.mark.parametrize("host", ["evil.example", "rebind.evil.example:8080", "10.1.2.3:80", "[2001:db8::1]:80",
                                  "corp.example"])
def test_well_formed_foreign_hosts_are_still_421(client, host):
    response = client.get("/api/health", headers={"host": host})
    assert response.status_code == 421 and _error(response)["type"] == "misdirected_request"


# -- repeated credential headers ------------------------------------------------------------
@pytest.fixture
def auth_on(tmp_path):
    container, _ = fake_container(tmp_path, auth="on")
    keys = container.api_key_service()
    admin, other = keys.create("admin").secret, keys.create("other").secret
    with TestClient(create_app(container)) as client:
        yield client, admin, other, container


@pytest.mark.parametrize("path", ["/v1/models", "/api/pool", "/metrics"])
def test_two_authorization_headers_are_refused(auth_on, path):
    client, admin, other, _ = auth_on
    assert client.get(path, headers={"authorization": f"Bearer {admin}"}).status_code == 200
    for pair in ((f"Bearer {admin}", f"Bearer {admin}"), ("Bearer wrong", f"Bearer {admin}"),
                 (f"Bearer {admin}", "Bearer wrong"), (f"Bearer {other}", f"Bearer {admin}")):
        response = client.get(path, headers=[("authorization", pair[0]), ("authorization", pair[1])])
        assert response.status_code == 401, (pair, response.text)
        assert _error(response)["type"] == "authentication_error" and "authorization" in _error(response)["message"]
        assert response.headers["www-authenticate"] == "Bearer"


def test_two_x_api_key_headers_are_refused_on_the_messages_api(auth_on):
    client, admin, _, _ = auth_on
    body = {"model": "nothing-installed", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}
    single = client.post("/v1/messages", json=body, headers={"x-api-key": admin})
    assert single.status_code == 404  # authenticated: the route answers (no such model)
    response = client.post("/v1/messages", json=body, headers=[("x-api-key", "wrong"), ("x-api-key", admin)])
    assert response.status_code == 401, response.text
    assert response.json()["error"]["type"] == "authentication_error"  # the Anthropic error shape there


MESSAGE = {"model": "nothing-installed", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("bearer, api_key", [("admin", "wrong"), ("wrong", "admin"), ("admin", "other"),
                                             ("other", "admin")])
def test_authorization_and_x_api_key_with_different_keys_are_refused(auth_on, bearer, api_key):
    # The Anthropic SDK sends both when a client sets api_key and auth_token; neither silently wins.
    client, admin, other, _ = auth_on
    keys = {"admin": admin, "other": other, "wrong": "wrong"}
    response = client.post("/v1/messages", json=MESSAGE,
                           headers={"authorization": f"Bearer {keys[bearer]}", "x-api-key": keys[api_key]})
    assert response.status_code == 401, response.text
    assert response.json() == {"type": "error", "error": {
        "type": "authentication_error",
        "message": "Authorization and x-api-key carry different keys: send one of them"}}
    assert response.headers["www-authenticate"] == "Bearer"


def test_authorization_and_x_api_key_with_the_same_key_are_accepted(auth_on):
    client, admin, _, _ = auth_on
    response = client.post("/v1/messages", json=MESSAGE,
                           headers={"authorization": f"Bearer {admin}", "x-api-key": admin})
    assert response.status_code == 404, response.text  # authenticated: the route answers (no such model)
    # An Authorization that is not a Bearer key (a proxy's Basic auth) leaves x-api-key as the key, as before.
    basic = client.post("/v1/messages", json=MESSAGE, headers={"authorization": "Basic dTpw", "x-api-key": admin})
    assert basic.status_code == 404, basic.text


def test_with_auth_off_the_messages_api_does_not_read_either_key(tmp_path):
    # Local clients often carry placeholder keys in both variables; an open server reads neither.
    container, _ = fake_container(tmp_path)
    with TestClient(create_app(container)) as client:
        response = client.post("/v1/messages", json=MESSAGE, headers={"authorization": "Bearer a", "x-api-key": "b"})
    assert response.status_code == 404, response.text


def test_two_local_cli_tokens_are_refused(tmp_path):
    container, _ = fake_container(tmp_path, auth="on")
    token = local_admin.ensure_token(container.settings().manager.home)
    with TestClient(create_app(container), client=("127.0.0.1", 50000)) as client:  # the token counts from loopback
        assert client.get("/api/pool", headers={local_admin.HEADER: token}).status_code == 200
        response = client.get("/api/pool", headers=[(local_admin.HEADER, "0" * 64), (local_admin.HEADER, token)])
        assert response.status_code == 401 and _error(response)["type"] == "authentication_error", response.text


def test_a_request_without_host_still_passes():
    """HTTP/1.0 clients may send no Host; no browser does, so a page cannot use that (kept as it was)."""
    import asyncio

    from entrypoints.http.edge import EdgeGuardMiddleware

    reached, sent = [], []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    guard = EdgeGuardMiddleware(app, bind_host="127.0.0.1")
    scope = {"type": "http", "method": "GET", "path": "/api/health", "headers": [], "http_version": "1.0",
             "server": ("127.0.0.1", 10242), "scheme": "http"}
    asyncio.run(guard(scope, receive, send))
    assert reached == ["/api/health"] and sent == []
    asyncio.run(guard({**scope, "headers": [(b"host", b"")]}, receive, send))
    assert reached == ["/api/health"] and sent[0]["status"] == 400  # an empty Host is not a missing one
