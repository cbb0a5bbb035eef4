"""The web UI with auth on, in real headless Chromium: log in, session cookie, CSRF, admin-only pages."""

from __future__ import annotations

import pytest

from entrypoints.http.app import create_app
from tests.browser.a11y import page_problems, tab_to
from tests.browser.conftest import screenshot
from tests.support.frontends import real_container, serve_in_thread

pytestmark = pytest.mark.slow

ADMIN = ("admin@example.com", "admin-password-1")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    container = real_container(tmp_path_factory.mktemp("ui-auth-home"))
    container.settings().manager.auth = "on"
    users = container.user_service()
    admin = users.register(*ADMIN, is_admin=True, approved=True)
    member = users.register("member@example.com", "member-password-1", approved=True)
    keys = container.api_key_service()
    keys.create("bootstrap", user=admin.id)
    member_key = keys.create("member-key", user=member.id).secret
    with serve_in_thread(create_app(container)) as url:
        yield url, container, member_key


def _fetch_status(page, method: str, path: str, with_csrf: bool) -> int:
    return page.evaluate(
        """async ([method, path, withCsrf]) => {
            const headers = {"Content-Type": "application/json"};
            if (withCsrf) headers["X-CSRF-Token"] = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch(path, {method, headers, body: JSON.stringify({name: "from-page"})});
            return r.status; }""", [method, path, with_csrf])


def test_admin_logs_in_with_email_and_password(page, server):
    url, container, _ = server
    page.goto(url + "/ui/audit")
    page.wait_for_url("**/ui/login?next=/ui/audit")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url + "/ui/audit")
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Keys & users").is_visible()
    assert "admin@example.com (admin)" in page.locator("header").inner_text()
    cookie = next(c for c in page.context.cookies() if c["name"] == "mlxm_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # invisible to scripts
    # State-changing requests need the page's CSRF token on top of the cookie.
    assert _fetch_status(page, "POST", "/api/keys", with_csrf=False) == 403
    assert _fetch_status(page, "POST", "/api/keys", with_csrf=True) == 201
    page.get_by_role("link", name="Keys & users").click()
    page.locator("#users tbody tr", has_text="member@example.com").wait_for()
    screenshot(page, "keys-and-users-admin")
    active_before = {k.name for k in container.api_key_service().list() if k.is_active}
    assert any(name.startswith("web-ui") for name in active_before)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(url + "/ui/login")
    active_after = {k.name for k in container.api_key_service().list() if k.is_active}
    assert not any(name.startswith("web-ui") for name in active_after)  # the login's key is revoked
    page.goto(url + "/")
    page.wait_for_url("**/ui/login?next=/")


def test_wrong_credentials_are_refused(page, server):
    url, _, _ = server
    page.goto(url + "/ui/login")
    page.get_by_label("API key").fill("mlxm-not-a-real-key")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_function("document.getElementById('login-error').textContent.length > 0")
    assert "invalid" in page.locator("#login-error").inner_text()
    assert page.url.endswith("/ui/login")


def test_a_non_admin_never_reaches_admin_pages(page, server):
    url, _, member_key = server
    page.goto(url + "/ui/login")
    page.get_by_label("API key").fill(member_key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url + "/")
    nav = page.get_by_role("navigation", name="Main")
    links = nav.get_by_role("link").all_inner_texts()
    assert links == ["Library", "Discover", "Profiles", "Chat"]
    for path in ("/ui/keys", "/ui/audit", "/ui/server"):
        response = page.goto(url + path)
        assert response.status == 403
        assert page.get_by_role("heading", name="Admins only").is_visible()
    screenshot(page, "non-admin-forbidden")
    problems = page_problems(page)
    assert not problems, "\n".join(problems)
    # The API says the same to the session: reads of users and writes of management data are refused.
    assert page.evaluate("fetch('/api/users').then(r => r.status)") == 403
    assert _fetch_status(page, "POST", "/api/profiles", with_csrf=True) == 403
    page.goto(url + "/ui/profiles")
    assert page.locator("#profile-form").count() == 0  # no create form for a non-admin


def test_log_in_and_out_with_the_keyboard_only_on_accessible_pages(page, server):
    url, container, _ = server
    page.goto(url + "/ui/keys")
    page.wait_for_url("**/ui/login?next=/ui/keys")
    problems = [f"login: {p}" for p in page_problems(page)]
    tab_to(page, "#l-email")
    page.keyboard.type(ADMIN[0])
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "l-password"
    page.keyboard.type(ADMIN[1])
    page.keyboard.press("Enter")
    page.wait_for_url(url + "/ui/keys")
    # The admin page, with a key made from the keyboard too (its secret is shown once).
    tab_to(page, "#k-name")
    page.keyboard.type("made-by-keyboard")
    page.keyboard.press("Enter")
    page.locator("#keys tbody tr", has_text="made-by-keyboard").wait_for()
    page.locator("#new-key code").wait_for()
    problems += [f"keys and users: {p}" for p in page_problems(page)]
    assert not problems, "\n".join(problems)
    tab_to(page, "#logout", backwards=True)
    page.keyboard.press("Enter")
    page.wait_for_url(url + "/ui/login")
    active = {k.name for k in container.api_key_service().list() if k.is_active}
    assert "made-by-keyboard" in active and not any(name.startswith("web-ui") for name in active)
