from starlette.testclient import TestClient

from entrypoints.composition.container import Container
from entrypoints.http.app import create_app


def test_health_and_catalog_routes():
    with TestClient(create_app(Container())) as client:
        assert client.get("/api/health").json()["status"] == "ok"
        listing = client.get("/api/catalog").json()
        assert any(m["id"] == "gemma-3-1b-it-4bit-v1" for m in listing["data"])
        shown = client.get("/api/catalog/llama3.2-1b")
        assert shown.status_code == 200 and shown.json()["id"] == "llama-3.2-1b-instruct-4bit-v1"


def test_unknown_catalog_name_is_404_json_error_with_suggestions():
    with TestClient(create_app(Container())) as client:
        response = client.get("/api/catalog/kokoroo")
        assert response.status_code == 404
        body = response.json()
        assert body["error"]["type"] == "model_not_found"
        assert "kokoro" in body["error"]["suggestions"]
        missing = client.get("/no/such/route")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
