"""Small rules of the auth area: which routes need what, loopback detection, masking, parsing."""

import pytest

from domain.routing.credentials import CloudCredential, api_type_for, mask_secret
from domain.enums import ApiType, BackendType
from domain.errors import InvalidParameter
from entrypoints.cli.audit.commands import parse_since
from entrypoints.http.auth import auth_required, is_loopback, needs_admin
from entrypoints.composition.settings import ManagerSettings, Settings


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("myhost.local", False), ("", False),
])
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("auth, host, required", [
    ("auto", "127.0.0.1", False), ("off", "127.0.0.1", False), ("on", "127.0.0.1", True), ("ON", "::1", True),
    ("auto", "0.0.0.0", True), ("off", "0.0.0.0", True), ("auto", "10.0.0.5", True),
])
def test_when_auth_is_required(auth, host, required):
    assert auth_required(Settings(manager=ManagerSettings(auth=auth, host=host))) is required


@pytest.mark.parametrize("value, mode", [
    ("on", "on"), (" ON ", "on"), ("true", "on"), ("yes", "on"), ("1", "on"),
    ("off", "off"), ("False", "off"), ("no", "off"), ("0", "off"), ("auto", "auto"), ("Auto", "auto"),
])
def test_auth_setting_accepts_modes_and_their_synonyms(monkeypatch, value, mode):
    monkeypatch.setenv("MLX_MANAGER_AUTH", value)
    assert ManagerSettings().auth == mode


@pytest.mark.parametrize("value", ["enabled", "y", "disabled", "", "of"])
def test_auth_setting_rejects_unknown_values_instead_of_turning_auth_off(monkeypatch, value):
    from pydantic import ValidationError

    monkeypatch.setenv("MLX_MANAGER_AUTH", value)
    with pytest.raises(ValidationError):
        ManagerSettings()


def test_cli_stops_with_one_line_naming_a_bad_auth_setting(tmp_path):
    from click.testing import CliRunner

    from entrypoints.cli.main import cli

    result = CliRunner().invoke(cli, ["list"], env={"MLX_MANAGER_AUTH": "enabled", "MLX_MANAGER_HOME": str(tmp_path)})
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert line.startswith("Error: invalid setting MLX_MANAGER_AUTH='enabled'") and "\n" not in line
    assert "'on', 'off' or 'auto'" in line


@pytest.mark.parametrize("base_url, open_", [
    ("http://192.0.2.10:10242", False), ("http://[2001:db8::5]:10242", False),
    ("http://127.0.0.1:10242", True), ("http://[::ffff:127.0.0.1]:10242", True), ("http://testserver", True),
])
def test_a_connection_on_a_non_loopback_address_needs_a_key_whatever_the_settings_say(tmp_path, base_url, open_):
    # create_app() served by hand on 0.0.0.0: the settings still say 127.0.0.1, the socket does not.
    from starlette.testclient import TestClient

    from entrypoints.http.app import create_app
    from tests.support.frontends import fake_container

    container, _ = fake_container(tmp_path, auth="auto")
    assert container.settings().manager.host == "127.0.0.1"
    with TestClient(create_app(container), base_url=base_url) as client:
        anonymous = client.get("/v1/models")
        assert (anonymous.status_code == 200) is open_, anonymous.text
        if not open_:
            assert anonymous.status_code == 401
            secret = container.api_key_service().create("admin").secret
            assert client.get("/v1/models", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        assert client.get("/api/health").status_code == 200


@pytest.mark.parametrize("method, path, admin", [
    ("GET", "/v1/models", False), ("POST", "/v1/chat/completions", False), ("POST", "/v1/messages", False),
    ("GET", "/api/models", False), ("GET", "/api/mappings", False), ("POST", "/api/chat", False),
    ("POST", "/api/keys", False), ("DELETE", "/api/keys/3", False),
    ("POST", "/api/profiles", True), ("DELETE", "/api/models/x", True), ("POST", "/api/downloads", True),
    ("PUT", "/api/credentials/openai", True), ("POST", "/api/mappings", True), ("POST", "/api/users/1/approve", True),
    ("GET", "/api/users", True), ("GET", "/api/credentials", True), ("GET", "/api/audit/summary", True),
    ("GET", "/api/auditx", False),  # prefix match is by path segment, not by string
])
def test_which_calls_need_an_admin(method, path, admin):
    assert needs_admin(method, path) is admin


def test_masking_and_backend_kinds():
    assert mask_secret("sk-proj-abcdefghijklmnop1234") == "sk-...1234"
    assert mask_secret("short") == "***"
    assert api_type_for(BackendType.ANTHROPIC_COMPATIBLE) is ApiType.ANTHROPIC
    assert api_type_for("openai") is ApiType.OPENAI
    with pytest.raises(InvalidParameter):
        api_type_for(BackendType.LOCAL)
    with pytest.raises(InvalidParameter):
        CloudCredential(BackendType.OPENAI_COMPATIBLE, "token")  # needs a base_url
    with pytest.raises(InvalidParameter):
        CloudCredential(BackendType.OPENAI, "token", base_url="ftp://x")
    assert "token" not in repr(mask_secret("token-token-token"))


def test_since_accepts_relative_and_iso_times():
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    assert abs((now - parse_since("2h")) - timedelta(hours=2)) < timedelta(seconds=5)
    assert parse_since("2026-01-31T12:00") == datetime(2026, 1, 31, 12, tzinfo=timezone.utc)
    assert parse_since(None) is None
    import click

    with pytest.raises(click.BadParameter):
        parse_since("soon")
