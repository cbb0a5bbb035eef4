"""The web UI's pages and session handling over the real app (no browser): redirects, cookie, CSRF, roles."""

import pytest
from starlette.testclient import TestClient

from entrypoints.http.app import create_app
from tests.support.frontends import fake_container

PAGES = ["/", "/ui/discover", "/ui/profiles", "/ui/chat", "/ui/server", "/ui/audit", "/ui/keys"]


def test_with_auth_off_every_page_renders_without_a_login(tmp_path):
    container, _ = fake_container(tmp_path)
    with TestClient(create_app(container)) as client:
        for path in PAGES:
            response = client.get(path)
            assert response.status_code == 200 and "<nav" in response.text, path
        assert client.get("/ui/login", follow_redirects=False).status_code == 303
        assert client.get("/ui/static/app.js").headers["content-type"].startswith(("text/javascript", "application/javascript"))


@pytest.fixture
def auth_on(tmp_path):
    container, _ = fake_container(tmp_path, auth="on")
    users = container.user_service()
    admin = users.register("admin@example.com", "admin-password-1", is_admin=True, approved=True)
    member = users.register("member@example.com", "member-password-1", approved=True)
    keys = container.api_key_service()
    admin_key = keys.create("a", user=admin.id).secret
    member_key = keys.create("m", user=member.id).secret
    with TestClient(create_app(container)) as client:
        yield client, container, admin_key, member_key


def _csrf(html: str) -> str:
    marker = '<meta name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start: html.index('"', start)]


def test_pages_redirect_to_the_login_when_auth_is_on(auth_on):
    client, _, _, _ = auth_on
    response = client.get("/ui/chat", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/login?next=/ui/chat"
    assert client.get("/ui/login?next=//evil.example/x").text.count('data-next="/"') == 1  # no open redirect


def test_login_sets_an_httponly_strict_cookie_and_writes_need_the_csrf_token(auth_on):
    client, _, admin_key, _ = auth_on
    assert client.post("/ui/login", data={"key": admin_key}).status_code == 415  # a form post is refused
    assert client.post("/ui/login", json={"key": "wrong"}).status_code == 401
    response = client.post("/ui/login", json={"key": admin_key})
    assert response.status_code == 200 and response.json()["is_admin"] is True
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    page = client.get("/ui/keys")
    assert page.status_code == 200
    token = _csrf(page.text)
    assert len(token) > 20
    assert client.get("/api/keys").status_code == 200  # reads ride on the cookie
    refused = client.post("/api/keys", json={"name": "k1"})
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "csrf_error"
    assert client.post("/api/keys", json={"name": "k1"}, headers={"X-CSRF-Token": "nope"}).status_code == 403
    assert client.post("/api/keys", json={"name": "k1"}, headers={"X-CSRF-Token": token}).status_code == 201
    assert client.post("/ui/logout", headers={"X-CSRF-Token": token}).status_code == 200
    assert client.get("/api/keys").status_code == 401  # the session is gone


def test_password_login_mints_a_key_that_logout_revokes(auth_on):
    client, container, _, _ = auth_on
    assert client.post("/ui/login", json={"email": "admin@example.com", "password": "bad-password-0"}).status_code == 401
    assert client.post("/ui/login", json={"email": "admin@example.com", "password": "admin-password-1"}).status_code == 200
    minted = [k for k in container.api_key_service().list() if k.name.startswith("web-ui")]
    assert len(minted) == 1 and minted[0].is_active
    token = _csrf(client.get("/").text)
    client.post("/ui/logout", headers={"X-CSRF-Token": token})
    assert not [k for k in container.api_key_service().list() if k.name.startswith("web-ui") and k.is_active]


def test_a_non_admin_gets_403_on_admin_pages_and_no_admin_links(auth_on):
    client, _, _, member_key = auth_on
    client.post("/ui/login", json={"key": member_key})
    home = client.get("/")
    assert home.status_code == 200
    for admin_path in ("/ui/server", "/ui/audit", "/ui/keys"):
        assert f'href="{admin_path}"' not in home.text
        page = client.get(admin_path)
        assert page.status_code == 403 and "Admins only" in page.text
    token = _csrf(home.text)
    assert client.post("/api/profiles", json={"name": "x", "model": "y"}, headers={"X-CSRF-Token": token}).status_code == 403


def test_a_revoked_key_ends_the_session(auth_on):
    client, container, admin_key, member_key = auth_on
    client.post("/ui/login", json={"key": member_key})
    assert client.get("/").status_code == 200
    container.api_key_service().revoke("m")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_restart_keeps_the_ui_session(tmp_path):
    """Sessions live in <home>/sessions.sqlite: a new app on the same home (a restart) still knows the cookie."""
    container, _ = fake_container(tmp_path, auth="on")
    admin = container.user_service().register("admin@example.com", "admin-password-1", is_admin=True, approved=True)
    key = container.api_key_service().create("a", user=admin.id).secret
    with TestClient(create_app(container)) as client:
        assert client.post("/ui/login", json={"key": key}).status_code == 200
        cookie = client.cookies.get("mlxm_session")
        token = _csrf(client.get("/ui/keys").text)
    restarted, _ = fake_container(tmp_path, auth="on")
    restarted.uow_factory.override(container.uow_factory)  # the same library data (the fake keeps it in memory)
    with TestClient(create_app(restarted)) as client:
        client.cookies.set("mlxm_session", cookie)
        page = client.get("/ui/keys", follow_redirects=False)
        assert page.status_code == 200 and "admin@example.com" in page.text
        assert _csrf(page.text) == token
        assert client.post("/api/keys", json={"name": "after-restart"}, headers={"X-CSRF-Token": token}).status_code == 201
        assert client.post("/ui/logout", headers={"X-CSRF-Token": token}).status_code == 200
    with TestClient(create_app(restarted)) as client:  # logged out for good, restart or not
        client.cookies.set("mlxm_session", cookie)
        assert client.get("/ui/keys", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("target", ["/\\evil.example", "/\t/evil.example", "/\n/evil.example"])
def test_login_next_is_never_another_site(auth_on, target):
    # login.js does `location.href = next`; browsers read "\" as "/" and drop tabs and newlines in URLs, so
    # "/\evil.example" and "/<TAB>/evil.example" both went to //evil.example after a login.
    client, _, _, _ = auth_on
    page = client.get("/ui/login", params={"next": target})
    assert page.status_code == 200 and 'data-next="/"' in page.text
    assert 'data-next="/ui/chat"' in client.get("/ui/login", params={"next": "/ui/chat"}).text  # pages stay
