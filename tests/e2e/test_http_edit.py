"""`PATCH /api/models/{id}` on the live server (uvicorn, SQLite, auth on): overrides, the model view's
marks, reset/confirm, profiles after a type change, 4xx JSON errors for bad input, admin only."""

from __future__ import annotations

import httpx
import pytest

from entrypoints.http.app import create_app
from tests.support.auth_server import sqlite_container
from tests.support.frontends import serve_in_thread


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlxm-home")
    container = sqlite_container(home, auth="on")
    keys, users = container.api_key_service(), container.user_service()
    admin = keys.create("admin").secret
    users.register("bob@example.com", "bob-password", approved=True)
    user = keys.create("bob", user="bob@example.com").secret
    container.profile_service().create("chatty", "tiny-fallback", inference={"temperature": 0.5})
    with serve_in_thread(create_app(container)) as url:
        yield {"url": url, "admin": admin, "user": user}


def patch(server, name, body=None, key="admin", **kw):
    headers = {"authorization": f"Bearer {server[key]}"} if key else {}
    return httpx.patch(f"{server['url']}/api/models/{name}", json=body, headers=headers, timeout=30, **kw)


def get(server, name):
    return httpx.get(f"{server['url']}/api/models/{name}", headers={"authorization": f"Bearer {server['admin']}"},
                     timeout=30)


def test_an_override_is_in_effect_and_marked_in_the_model_view(server):
    response = patch(server, "tiny-local", {"type": "vision", "family": "qwen2_vl", "add_tags": ["coding"],
                                            "display_name": "Tiny VL"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["type"] == "vision" and body["model"]["display_name"] == "Tiny VL"
    assert body["notes"] and "database only" in body["notes"][0]  # this test model has no library folder
    shown = get(server, "tiny-local").json()
    assert (shown["type"], shown["family"], shown["tags"]) == ("vision", "qwen2_vl", ["coding"])
    assert shown["overrides"]["type"]["value"] == "vision" and shown["overrides"]["type"]["inferred"] == "text-gen"
    assert shown["overrides"]["tags"]["value"] == {"add": ["coding"], "remove": []}
    assert set(shown["overrides"]) == {"type", "family", "tags", "display_name"}
    # The list filters by the type in effect.
    listed = httpx.get(f"{server['url']}/api/models", params={"type": "vision"},
                       headers={"authorization": f"Bearer {server['admin']}"}, timeout=30).json()
    assert [m["id"] for m in listed["data"]] == ["tiny-local"]

    reset = patch(server, "tiny-local", {"reset": ["type", "display_name"], "confirm": []})
    assert reset.status_code == 200
    shown = get(server, "tiny-local").json()
    assert shown["type"] == "text-gen" and shown["display_name"] is None
    assert set(shown["overrides"]) == {"family", "tags"}


def test_a_type_change_the_profiles_do_not_fit_is_a_409_until_forced(server):
    refused = patch(server, "tiny-fallback", {"type": "embeddings"})
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["type"] == "conflict"
    assert "chatty (inference -> base, would drop inference.temperature=0.5)" in error["message"]
    assert get(server, "tiny-fallback").json()["type"] == "text-gen"
    forced = patch(server, "tiny-fallback", {"type": "embeddings", "force": True})
    assert forced.status_code == 200, forced.text
    assert forced.json()["converted_profiles"] == [
        {"name": "chatty", "from_type": "inference", "to_type": "base", "dropped": ["inference.temperature=0.5"]}]
    profile = httpx.get(f"{server['url']}/api/profiles/chatty",
                        headers={"authorization": f"Bearer {server['admin']}"}, timeout=30).json()
    assert profile["profile_type"] == "base"


@pytest.mark.parametrize("body,status,fragment", [
    ({"type": "robot"}, 400, "not a model type"),
    ({}, 400, "nothing to change"),
    ({"colour": "red"}, 422, "colour"),
    ({"family": 7}, 422, "family"),
    ({"add_tags": ["two words"]}, 400, "not a tag"),
    ({"reset": ["size"]}, 400, "unknown field"),
    ({"family": "x", "reset": ["family"]}, 400, "not both"),
    ({"confirm": ["tags"]}, 400, "only type and family can be confirmed"),
    ({"display_name": "x" * 300}, 400, "at most 255"),
])
def test_bad_input_is_a_4xx_with_a_json_error(server, body, status, fragment):
    response = patch(server, "tiny-local", body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"type", "message"} and fragment in error["message"], error


def test_a_body_that_is_not_json_and_an_unknown_model(server):
    raw = httpx.patch(f"{server['url']}/api/models/tiny-local", content=b"{nope",
                      headers={"authorization": f"Bearer {server['admin']}", "content-type": "application/json"},
                      timeout=30)
    assert raw.status_code == 400 and raw.json()["error"]["type"]
    missing = patch(server, "no-such-model", {"family": "x"})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


def test_only_an_admin_may_edit(server):
    assert patch(server, "tiny-local", {"family": "x"}, key=None).status_code == 401
    denied = patch(server, "tiny-local", {"family": "x"}, key="user")
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    assert get(server, "tiny-local").json()["family"] != "x"
