import pytest
from starlette.testclient import TestClient

from domain.enums import ModelType
from domain.library.models import Model
from entrypoints.http.app import create_app
from tests.support.frontends import add_models, fake_container
from tests.support.model_folders import kept_folder_note, write_safetensors


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path, max_body_bytes=4096, allowed_model_dirs=(tmp_path,))
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN), ("tiny-whisper", ModelType.AUDIO),
               ("tiny-embed", ModelType.EMBEDDINGS))
    with TestClient(create_app(container)) as client:
        yield client, container, uow


def _error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["type"] and body["error"]["message"]
    return body["error"]


def test_models_list_search_filters_and_show(env):
    client, _, _ = env
    listing = client.get("/api/models").json()
    assert listing["total"] == 3 and {m["id"] for m in listing["data"]} == {"tiny-llama", "tiny-whisper", "tiny-embed"}
    audio = client.get("/api/models", params={"type": "audio"}).json()
    assert [m["id"] for m in audio["data"]] == ["tiny-whisper"]
    page = client.get("/api/models", params={"q": "tiny", "limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and len(page["data"]) == 1
    assert client.get("/api/models/tiny-llama").json()["type"] == "text-gen"
    assert _error(client.get("/api/models", params={"type": "speech"}), 422)["param"] == "type"
    assert _error(client.get("/api/models", params={"limit": "many"}), 422)["param"] == "limit"
    missing = _error(client.get("/api/models/tiny-lama"), 404)
    assert "tiny-llama" in missing["suggestions"]


def test_import_then_delete_through_the_api(env, tmp_path):
    client, _, _ = env
    folder = tmp_path / "outside" / "m"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    write_safetensors(folder / "model.safetensors")  # the import pipeline refuses corrupt weights
    created = client.post("/api/models/import", json={"path": str(folder), "name": "local-llama"})
    assert created.status_code == 201 and created.json()["type"] == "text-gen"
    # The same content again is a no-op reporting the existing id (issue 7).
    again = client.post("/api/models/import", json={"path": str(folder), "name": "local-llama"})
    assert again.status_code == 200 and again.json()["id"] == "local-llama" and again.json()["created"] is False
    _error(client.post("/api/models/import", json={"path": str(tmp_path / "nope"), "name": "x"}), 400)
    assert client.delete("/api/models/local-llama").json() == {"id": "local-llama", "deleted": True}
    assert folder.exists()  # the import copied it: the source is never deleted
    _error(client.get("/api/models/local-llama"), 404)


def test_profiles_crud_with_the_422_and_409_rules(env):
    client, _, _ = env
    created = client.post("/api/profiles", json={
        "name": "chatty", "model": "tiny-llama",
        "inference": {"temperature": 0, "max_tokens": 32}, "context": {"system_prompt": "Be brief"},
    })
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["profile_type"] == "inference"
    assert body["inference"]["temperature"] == 0 and body["context"]["system_prompt"] == "Be brief"
    assert body["audio"] == {"voice": None, "speed": None, "sample_rate": None, "stt_language": None}

    assert _error(client.post("/api/profiles", json={"name": "chatty", "model": "tiny-llama"}), 409)["type"] == "conflict"
    mismatch = _error(client.post("/api/profiles", json={"name": "v", "model": "tiny-llama", "audio": {"voice": "af"}}), 422)
    assert mismatch["param"] == "audio.voice"
    embed = _error(client.post("/api/profiles", json={"name": "e", "model": "tiny-embed", "inference": {"top_p": 0.5}}), 422)
    assert embed["param"] == "inference.top_p"
    assert _error(client.post("/api/profiles", json={"name": "t", "model": "tiny-llama", "inference": {"temperature": 9}}), 422)["param"] == "inference.temperature"
    assert _error(client.post("/api/profiles", json={"name": "t", "model": "tiny-llama", "inference": {"temperature": "hot"}}), 422)
    _error(client.post("/api/profiles", json={"name": "t", "model": "no-such"}), 404)

    updated = client.patch("/api/profiles/chatty", json={"name": "terse", "inference": {"temperature": 0.2}})
    assert updated.status_code == 200 and updated.json()["name"] == "terse"
    assert updated.json()["id"] == body["id"]
    assert client.get(f"/api/profiles/{body['id']}").json()["name"] == "terse"
    assert [p["name"] for p in client.get("/api/profiles").json()["data"]] == ["terse"]
    assert client.delete("/api/profiles/terse").status_code == 200
    _error(client.get("/api/profiles/terse"), 404)


def test_selection_get_normalises_and_set_stores_the_canonical_id(env):
    client, container, uow = env
    with uow:
        uow.settings.set("selected_model", "qwen3-4b")  # a legacy alias
        uow.commit()
    current = client.get("/api/selection").json()
    assert current == {"model_id": "qwen3-4b-instruct-2507-4bit-v1", "changed": True,
                       "reason": "alias 'qwen3-4b' -> qwen3-4b-instruct-2507-4bit-v1"}
    assert client.get("/api/selection").json()["changed"] is False  # written back canonical
    # Issue 15: only an installed model can be the default; the 404 says how to get it.
    refused = _error(client.put("/api/selection", json={"model": "llama3.2-1b"}), 404)
    assert "--pull" in refused["message"]
    with uow:
        uow.models.add(Model("llama-3.2-1b-instruct-4bit-v1", model_type=ModelType.TEXT_GEN, local_path="/l"))
        uow.commit()
    chosen = client.put("/api/selection", json={"model": "llama3.2-1b"}).json()
    assert chosen["model_id"] == "llama-3.2-1b-instruct-4bit-v1"
    assert _error(client.put("/api/selection", json={"model": "nonsense-model"}), 404)["type"] == "model_not_found"


def test_client_mistakes_are_4xx_json(env):
    client, _, _ = env
    assert _error(client.post("/api/profiles", content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert _error(client.post("/api/profiles", content=b"[1, 2]", headers={"content-type": "application/json"}), 400)
    assert _error(client.post("/api/profiles", content=b""), 400)
    # A body that is not declared JSON never reaches the parser (no simple cross-site POST).
    assert _error(client.post("/api/profiles", content=b"[1, 2]"), 415)["type"] == "unsupported_media_type"
    assert _error(client.post("/api/profiles", json={"name": "x"}), 422)["param"] == "model"
    assert _error(client.post("/api/profiles", json={"name": "x", "model": "tiny-llama", "colour": 1}), 422)
    assert _error(client.put("/api/models"), 405)
    assert _error(client.get("/api/nothing-here"), 404)


def test_oversized_bodies_are_413_declared_or_streamed(env):
    client, _, _ = env
    big = b'{"name": "' + b"x" * 5000 + b'"}'
    assert _error(client.post("/api/profiles", content=big, headers={"content-type": "application/json"}), 413)["type"] == "request_too_large"

    def chunks():  # no Content-Length: the limit applies while reading
        for _ in range(10):
            yield b"x" * 1000

    assert _error(client.post("/api/profiles", content=chunks(), headers={"content-type": "application/json"}), 413)


def test_request_id_is_returned_kept_and_logged(env):
    import structlog

    client, _, _ = env
    generated = client.get("/api/health").headers["x-request-id"]
    assert len(generated) == 32
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        kept = client.get("/api/health", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    request_lines = [e for e in logs if e.get("event") == "request"]
    assert request_lines and all(e["request_id"] == "abc-123" for e in request_lines)
    # An unsafe incoming id is replaced, never echoed.
    assert client.get("/api/health", headers={"X-Request-ID": "bad id\n"}).headers["x-request-id"] != "bad id\n"


def test_openapi_describes_every_mounted_route_with_schemas(env):
    client, _, _ = env
    document = client.get("/openapi.json").json()
    app_routes = client.app.routes
    from starlette.routing import Route

    from entrypoints.http.openapi import _openapi_path

    for route in app_routes:
        if not isinstance(route, Route) or not route.include_in_schema:
            continue
        path, _ = _openapi_path(route.path)
        for method in route.methods - {"HEAD"}:
            assert method.lower() in document["paths"][path], f"{method} {path} missing"
            operation = document["paths"][path][method.lower()]
            # Declared through api_route: a success response with content (a schema), never the generic stub.
            success = {status: r for status, r in operation["responses"].items() if status.startswith("2")}
            assert success, f"{method} {path} has no success response"
            for status, response in success.items():
                if status == "204":
                    assert "content" not in response, f"{method} {path}: 204 has no body"
                    continue
                assert "content" in response, f"{method} {path} has no response schema"
                json_schema = response["content"].get("application/json", {}).get("schema")
                # A JSON answer names its DTO; {"type": "string"} was the placeholder of an undeclared one.
                assert json_schema is None or "$ref" in json_schema, f"{method} {path}: {json_schema}"
            if method in ("POST", "PUT", "PATCH") and "requestBody" not in operation:
                assert not getattr(route, "openapi").body, f"{method} {path} lost its request body"
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatCompletionRequest")
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    schemas = document["components"]["schemas"]
    assert {"ChatCompletionRequest", "ChatCompletion", "ProfileResponse", "ProfileCreate", "ErrorResponse"} <= set(schemas)
    assert set(schemas["ProfileResponse"]["properties"]) >= {"inference", "context", "audio"}
    params = {p["name"] for p in document["paths"]["/api/models"]["get"]["parameters"]}
    assert params == {"q", "type", "capability", "status", "limit", "offset"}
    # Every $ref resolves.
    import json
    import re

    for ref in set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document))):
        assert ref in schemas, ref


def test_a_profile_named_like_a_model_is_a_409(env):
    client, _, _ = env
    for name in ("tiny-whisper", "qwen3-4b"):  # a library id, a catalog alias
        error = _error(client.post("/api/profiles", json={"name": name, "model": "tiny-llama"}), 409)
        assert error["type"] == "conflict" and name in error["message"]
    assert client.get("/api/profiles").json()["data"] == []


def test_deleting_a_loaded_model_unloads_it(env, tmp_path):
    client, container, _ = env
    assert client.post("/api/pool/load", json={"model": "tiny-embed"}).status_code == 200
    # Its folder here is a plain one mlxm did not create: it stays, and the response says so.
    note = kept_folder_note(tmp_path / "models" / "tiny-embed")
    assert client.delete("/api/models/tiny-embed").json() == {"id": "tiny-embed", "deleted": True, "kept": [note]}
    assert client.get("/api/pool").json()["loaded"] == []
    assert container.runtime().unloads == ["tiny-embed"]
    assert client.delete("/api/models/tiny-whisper").status_code == 200  # never loaded: still deleted
