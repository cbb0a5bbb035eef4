import io
import json

import structlog
from dependency_injector import providers
from starlette.testclient import TestClient

from entrypoints.http.app import create_app
from entrypoints.logging import configure_logging
from tests.support.frontends import fake_container


class _BrokenLibrary:
    def search(self, **kwargs):
        raise RuntimeError("a bug")


def test_json_logs_carry_the_request_id_on_every_line_of_a_request(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    try:
        container, _ = fake_container(tmp_path)
        container.library_service.override(providers.Object(_BrokenLibrary()))
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            response = client.get("/api/models", headers={"X-Request-ID": "req-42"})
            ok = client.get("/api/health", headers={"X-Request-ID": "req-43"})
        assert response.status_code == 500
        assert response.json() == {"error": {"type": "server_error", "message": "internal server error"}}
        assert ok.status_code == 200
        lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
        failing = [line for line in lines if line.get("request_id") == "req-42"]
        events = {line["event"] for line in failing}
        assert {"unhandled error", "request"} <= events  # the handler's line and the access line
        assert any("RuntimeError: a bug" in line.get("exception", "") for line in failing)
        assert [line["status"] for line in lines if line.get("request_id") == "req-43"] == [200]
        # Lines outside a request have no request id.
        assert all("request_id" not in line for line in lines if line["event"] == "ready")
    finally:
        structlog.reset_defaults()
        configure_logging("console", "info")


def test_console_format_is_the_default(tmp_path):
    stream = io.StringIO()
    configure_logging("console", "info", stream=stream)
    try:
        structlog.get_logger("t").info("hello", request_id="r1")
        text = stream.getvalue()
        assert "hello" in text and "request_id=r1" in text and not text.lstrip().startswith("{")
    finally:
        configure_logging("console", "info")


def test_console_tracebacks_are_plain_without_locals():
    stream = io.StringIO()
    configure_logging("console", "info", stream=stream)
    try:
        def failing(secret_local="a-local-value-that-must-not-be-logged"):
            raise RuntimeError("boom")

        try:
            failing()
        except RuntimeError:
            structlog.get_logger("t").exception("unhandled error")
        text = stream.getvalue()
        assert "Traceback (most recent call last)" in text and "RuntimeError: boom" in text
        assert "a-local-value-that-must-not-be-logged" not in text
        assert len(text.splitlines()) < 20  # one line plus a short plain traceback
    finally:
        configure_logging("console", "info")
