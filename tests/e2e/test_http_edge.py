"""Issue 12 item 2: cross-site requests and DNS rebinding, through a real uvicorn server.

The reproductions (defaults: 127.0.0.1, auth off): a text/plain `POST /api/users` with a foreign Origin,
a cross-site login, a rebound Host reading /api/keys, a key minted on the open server satisfying
`serve --host 0.0.0.0`. Then the Host and Origin matrix, a browser-like preflight, the body types,
and the admin proof (admin key or the local CLI token) for credential writes with auth off.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner

from application.identity.service import Principal
from application.errors import Conflict
from entrypoints import local_admin
from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from entrypoints.http.auth import ensure_servable
from tests.support.auth_server import sqlite_container
from tests.support.frontends import serve_in_thread

EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("edge-home")
    container = sqlite_container(home)  # the defaults: loopback, auth auto (= off)
    users, keys = container.user_service(), container.api_key_service()
    users.register("bob@example.com", "bob-password", approved=True)
    bob = users.get("bob@example.com")
    bob_key = keys.create("bob", user="bob@example.com", by=Principal(bob.id, bob.email, False)).secret
    admin_key = keys.create("owner").secret  # the CLI's way: the local admin
    with serve_in_thread(create_app(container)) as url:
        yield {"url": url, "port": urlsplit(url).port, "container": container, "home": home,
               "bob_key": bob_key, "admin_key": admin_key}


def send(server, method, path, *, host=None, origin=None, headers=None, **kw):
    all_headers = dict(headers or {})
    if host is not None:
        all_headers["host"] = host
    if origin is not None:
        all_headers["origin"] = origin
    return httpx.request(method, server["url"] + path, headers=all_headers, timeout=30, **kw)


def error_type(response) -> str:
    return response.json()["error"]["type"]


def user_emails(server) -> set[str]:
    return {u.email for u in server["container"].user_service().list()}


# -- the reproductions ----------------------------------------------------------------------
def test_simple_cross_site_post_cannot_create_an_admin(server):
    body = json.dumps({"email": "mallory@evil.example", "password": "password123", "is_admin": True,
                       "approved": True})
    # Exactly what a page can send without a preflight: text/plain and its own Origin.
    refused = send(server, "POST", "/api/users", origin=EVIL, content=body, headers={"content-type": "text/plain"})
    assert refused.status_code == 403 and error_type(refused) == "forbidden_origin"
    # Without the Origin (a non-browser client) the text/plain body itself is refused...
    plain = send(server, "POST", "/api/users", content=body, headers={"content-type": "text/plain"})
    assert plain.status_code == 415 and error_type(plain) == "unsupported_media_type"
    # ...and a proper JSON request still needs an admin key although auth is off.
    unproven = send(server, "POST", "/api/users", content=body, headers={"content-type": "application/json"})
    assert unproven.status_code == 403 and error_type(unproven) == "permission_error"
    assert "mallory@evil.example" not in user_emails(server)


def test_cross_site_login_is_refused_and_same_origin_login_works(server):
    payload = json.dumps({"email": "bob@example.com", "password": "bob-password"})
    refused = send(server, "POST", "/api/auth/login", origin=EVIL, content=payload,
                   headers={"content-type": "text/plain"})
    assert refused.status_code == 403 and "key" not in refused.json()
    same_origin = send(server, "POST", "/api/auth/login", origin=f"http://127.0.0.1:{server['port']}",
                       content=payload, headers={"content-type": "application/json"})
    assert same_origin.status_code == 201 and same_origin.json()["key"].startswith("mlxm-")


def test_a_rebound_host_cannot_read_keys(server):
    rebound = send(server, "GET", "/api/keys", host=f"rebind.evil.example:{server['port']}")
    assert rebound.status_code == 421 and error_type(rebound) == "misdirected_request"
    assert "mlxm-" not in rebound.text and "prefix" not in rebound.text
    assert send(server, "GET", "/api/keys").status_code == 200


def test_only_keys_made_by_the_owner_or_an_admin_let_serve_expose_the_server(tmp_path):
    container = sqlite_container(tmp_path)
    users, keys = container.user_service(), container.api_key_service()
    users.register("open@example.com", "password123", approved=True)
    user = users.get("open@example.com")
    # A key its own user minted (e.g. by login) while the server was open does not count.
    keys.create("login", user=user.id, by=Principal(user.id, user.email, False))
    with pytest.raises(Conflict, match="made by you or an admin"):
        ensure_servable(container, "0.0.0.0")
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "1"], obj=container)
    assert result.exit_code == 4 and "mlxm keys create" in result.output
    keys.create("owner")  # `mlxm keys create` (the CLI is the local admin)
    ensure_servable(container, "0.0.0.0")


# -- Host matrix ----------------------------------------------------------------------------
@pytest.mark.parametrize("host, allowed", [
    ("127.0.0.1:{port}", True), ("localhost:{port}", True), ("localhost", True), ("LOCALHOST.:{port}", True),
    ("[::1]:{port}", True), ("127.0.0.2:{port}", True),
    ("rebind.evil.example:{port}", False), ("rebind.evil.example", False), ("10.1.2.3:{port}", False),
    ("localhost.evil.example:{port}", False), ("127.0.0.1.nip.io:{port}", False), ("models.lan", False),
])
def test_host_matrix(server, host, allowed):
    response = send(server, "GET", "/api/health", host=host.format(port=server["port"]))
    assert response.status_code == (200 if allowed else 421), response.text


def test_allowed_hosts_setting_adds_names_and_subdomains(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_ALLOWED_HOSTS", "models.lan, *.corp.example")
    with serve_in_thread(create_app(sqlite_container(tmp_path))) as url:
        port = urlsplit(url).port
        for host, status in (("models.lan", 200), (f"models.lan:{port}", 200), ("a.corp.example", 200),
                             ("corp.example", 421), ("evil.example", 421), ("localhost", 200)):
            assert httpx.get(url + "/api/health", headers={"host": host}).status_code == status, host


# -- Origin matrix --------------------------------------------------------------------------
@pytest.mark.parametrize("host, origin, extra, allowed", [
    (None, None, {}, True),                                               # CLI / SDK / curl: no Origin
    (None, "http://127.0.0.1:{port}", {}, True),                          # same origin
    ("localhost:{port}", "http://localhost:{port}", {}, True),            # same origin by name
    (None, "http://localhost:{port}", {}, False),                         # another origin (other host)
    (None, "http://127.0.0.1:1", {}, False),                              # another port
    (None, "https://127.0.0.1:{port}", {}, False),                        # another scheme
    (None, "null", {}, False),                                            # sandboxed frame, file://
    (None, EVIL, {}, False),
    (None, None, {"sec-fetch-site": "cross-site"}, False),                # browser said so, without Origin
    (None, None, {"sec-fetch-site": "same-origin"}, True),
])
def test_origin_matrix_on_a_state_changing_request(server, host, origin, extra, allowed):
    port = server["port"]
    response = send(server, "POST", "/api/profiles", host=host and host.format(port=port),
                    origin=origin and origin.format(port=port), headers=extra, json={})
    # Allowed requests reach the route (an empty profile is a 422); refused ones never do.
    assert response.status_code == (422 if allowed else 403), response.text
    if not allowed:
        assert error_type(response) == "forbidden_origin"


def test_reads_from_another_origin_get_no_cors_headers(server):
    response = send(server, "GET", "/api/models", origin=EVIL)
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_browser_preflight_from_a_foreign_origin_is_not_granted(server):
    preflight = send(server, "OPTIONS", "/api/users", origin=EVIL, headers={
        "access-control-request-method": "POST", "access-control-request-headers": "content-type"})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-methods" not in preflight.headers


def test_cors_only_for_explicitly_configured_origins(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_ALLOWED_ORIGINS", "http://app.example:3000")
    with serve_in_thread(create_app(sqlite_container(tmp_path))) as url:
        asks = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
        granted = httpx.options(url + "/api/profiles", headers={"origin": "http://app.example:3000", **asks})
        assert granted.status_code == 200
        assert granted.headers["access-control-allow-origin"] == "http://app.example:3000"
        denied = httpx.options(url + "/api/profiles", headers={"origin": EVIL, **asks})
        assert "access-control-allow-origin" not in denied.headers
        posted = httpx.post(url + "/api/profiles", json={}, headers={"origin": "http://app.example:3000"})
        assert posted.status_code == 422 and posted.headers["access-control-allow-origin"] == "http://app.example:3000"
        assert httpx.post(url + "/api/profiles", json={}, headers={"origin": EVIL}).status_code == 403


def test_a_wildcard_cors_origin_is_refused_at_start(tmp_path, monkeypatch):
    from pydantic import ValidationError

    from entrypoints.composition.settings import ManagerSettings

    monkeypatch.setenv("MLX_MANAGER_ALLOWED_ORIGINS", "*")
    with pytest.raises(ValidationError, match="no wildcards"):
        ManagerSettings(home=tmp_path)


# -- body types -----------------------------------------------------------------------------
@pytest.mark.parametrize("path, content_type", [
    ("/v1/chat/completions", "text/plain"),
    ("/v1/chat/completions", "application/x-www-form-urlencoded"),
    ("/api/profiles", "multipart/form-data; boundary=x"),
    ("/api/pool/load", None),
    ("/v1/audio/transcriptions", "application/json"),
])
def test_bodies_of_the_wrong_type_are_415(server, path, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = send(server, "POST", path, content=b'{"model": "tiny-local"}', headers=headers)
    assert response.status_code == 415 and error_type(response) == "unsupported_media_type", response.text


def test_uploads_check_the_origin(server):
    files = {"file": ("a.wav", b"RIFF....", "audio/wav")}
    refused = send(server, "POST", "/v1/audio/transcriptions", origin=EVIL, data={"model": "tiny-local"}, files=files)
    assert refused.status_code == 403 and error_type(refused) == "forbidden_origin"
    accepted = send(server, "POST", "/v1/audio/transcriptions", data={"model": "tiny-local"}, files=files)
    assert accepted.status_code not in (403, 415)  # reaches the route (a text model: a 400 there)


# -- admin proof with auth off --------------------------------------------------------------
@pytest.mark.parametrize("method, path, body", [
    ("POST", "/api/keys", {"name": "minted"}),
    ("POST", "/api/users", {"email": "x@example.com"}),
    ("POST", "/api/users/bob@example.com/approve", None),
    ("DELETE", "/api/keys/owner", None),
    ("PUT", "/api/credentials/openai", {"api_key": "sk-test"}),
    ("POST", "/api/mappings", {"model_pattern": "gpt-", "backend_type": "openai"}),
])
def test_credential_writes_need_an_admin_even_with_auth_off(server, method, path, body):
    kw = {"json": body} if body is not None else {}
    bare = send(server, method, path, **kw)
    assert bare.status_code == 403 and error_type(bare) == "permission_error", bare.text
    as_user = send(server, method, path, headers={"authorization": f"Bearer {server['bob_key']}"}, **kw)
    assert as_user.status_code == 403
    wrong = send(server, method, path, headers={"authorization": "Bearer mlxm-wrong"}, **kw)
    assert wrong.status_code == 401
    forged = send(server, method, path, headers={local_admin.HEADER: "0" * 64}, **kw)
    assert forged.status_code == 403


def test_an_admin_key_or_the_local_cli_token_may_create_keys(server):
    by_admin = send(server, "POST", "/api/keys", json={"name": "by-admin"},
                    headers={"authorization": f"Bearer {server['admin_key']}"})
    assert by_admin.status_code == 201
    token = local_admin.read_token(server["home"]) or local_admin.ensure_token(server["home"])
    assert oct(local_admin.token_path(server["home"]).stat().st_mode & 0o777) == "0o600"
    by_cli = send(server, "POST", "/api/keys", json={"name": "by-cli"}, headers={local_admin.HEADER: token})
    assert by_cli.status_code == 201
    trusted = {k.name: k.trusted for k in server["container"].api_key_service().list()}
    assert trusted["by-admin"] and trusted["by-cli"] and not trusted["bob"]


def test_the_cli_proves_it_is_local_to_an_auth_on_server(tmp_path, monkeypatch):
    monkeypatch.delenv("MLX_MANAGER_API_KEY", raising=False)
    container = sqlite_container(tmp_path, auth="on")
    with serve_in_thread(create_app(container)) as url:
        assert httpx.get(url + "/api/pool").status_code == 401
        result = CliRunner().invoke(cli, ["ps", "--url", url, "--json"], obj=container)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["loaded"] == []
        # Another home's token proves nothing.
        other = sqlite_container(tmp_path / "other", auth="on")
        refused = CliRunner().invoke(cli, ["ps", "--url", url], obj=other)
        assert refused.exit_code != 0 and "401" in refused.output


def test_a_login_key_is_not_trusted_even_for_an_admin_account(tmp_path):
    """An admin account made while the server was open could log in: its key must not expose the server."""
    container = sqlite_container(tmp_path)
    container.user_service().register("open@example.com", "password123", approved=True, is_admin=True)
    login_key = container.api_key_service().login("open@example.com", "password123", "login")
    assert not login_key.key.trusted
    with pytest.raises(Conflict, match="made by you or an admin"):
        ensure_servable(container, "0.0.0.0")
    # An admin key the owner made can make trusted keys; an untrusted admin key cannot.
    owner = container.api_key_service().create("owner").secret
    principal = container.api_key_service().authenticate(owner)
    assert container.api_key_service().create("by-owner-admin", by=principal).key.trusted
    untrusted = container.api_key_service().authenticate(login_key.secret)
    assert not container.api_key_service().create("by-login-admin", by=untrusted).key.trusted


@pytest.mark.parametrize("host", ["", "[::1]evil", "127.0.0.1:abc", "127.0.0.1:0", "::1"])
def test_a_malformed_host_is_a_400_json_error_on_the_real_server(server, host):
    response = send(server, "GET", "/api/health", host=host)
    assert response.status_code == 400 and error_type(response) == "invalid_request_error", response.text
