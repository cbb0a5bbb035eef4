"""`mlxm keys | users | routes | credentials | audit` through the CLI on a real SQLite home."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from domain.audit.model import AuditEntry, AuditStatus
from entrypoints.cli.main import cli
from tests.support.auth_server import sqlite_container


@pytest.fixture
def run(tmp_path):
    container = sqlite_container(tmp_path, audit_retention_days=7)
    runner = CliRunner()

    def invoke(*args, input=None):
        result = runner.invoke(cli, list(args), obj=container, input=input)
        return result

    invoke.container = container
    return invoke


def test_keys_create_prints_the_key_once_then_only_prefixes(run):
    created = run("keys", "create", "ci")
    assert created.exit_code == 0
    secret = created.stdout.strip()
    assert secret.startswith("mlxm-") and "cannot be shown again" in created.stderr
    assert run.container.api_key_service().authenticate(secret).is_admin
    listed = run("keys", "list")
    assert "ci" in listed.output and secret not in listed.output and secret[:13] in listed.output
    as_json = json.loads(run("keys", "list", "--json").output)
    assert as_json[0]["name"] == "ci" and "key" not in as_json[0]
    duplicate = run("keys", "create", "ci")
    assert duplicate.exit_code != 0 and duplicate.output.startswith("Error:") and "Traceback" not in duplicate.output
    assert run("keys", "revoke", "ci").exit_code == 0
    assert run("keys", "list", "--json").output.strip() == "[]"
    assert json.loads(run("keys", "list", "--all", "--json").output)[0]["active"] is False
    missing = run("keys", "revoke", "nope")
    assert missing.exit_code != 0 and "no API key" in missing.output


def test_users_are_pending_until_approved(run):
    assert run("users", "add", "Dana@Example.com").exit_code == 0
    with_password = run("users", "add", "erin@example.com", "--with-password", input="long-password\nlong-password\n")
    assert with_password.exit_code == 0
    users = {u["email"]: u for u in json.loads(run("users", "list", "--json").output)}
    assert users["dana@example.com"]["status"] == "pending" and not users["dana@example.com"]["is_admin"]
    key = run("keys", "create", "dana-key", "--user", "dana@example.com").stdout.strip()
    from application.errors import Unauthorized

    with pytest.raises(Unauthorized):
        run.container.api_key_service().authenticate(key)
    assert "approved" in run("users", "approve", "dana@example.com").output
    assert run.container.api_key_service().authenticate(key).email == "dana@example.com"
    assert "disabled" in run("users", "disable", "dana@example.com").output
    bad = run("users", "add", "not-an-email")
    assert bad.exit_code != 0 and "email" in bad.output


def test_routes_add_list_rm_and_unsafe_regex(run):
    added = run("routes", "add", "gpt-", "openai", "--type", "prefix", "--fallback", "local", "--priority", "3",
                "--json")
    assert added.exit_code == 0
    mapping = json.loads(added.output)
    assert mapping["fallback_backend"] == "local" and mapping["priority"] == 3
    unsafe = run("routes", "add", "(a|aa)*b", "openai", "--type", "regex")
    assert unsafe.exit_code != 0 and "not allowed" in unsafe.output
    assert "gpt-" in run("routes", "list").output
    assert run("routes", "rm", str(mapping["id"])).exit_code == 0
    assert "every model runs locally" in run("routes", "list").output
    assert run("routes", "rm", str(mapping["id"])).exit_code != 0


def test_audit_list_filters_summary_and_retention_cleanup(run):
    now = datetime.now(timezone.utc)
    entries = [
        AuditEntry("r-old", now - timedelta(days=10), "m1", "local", "/v1/chat/completions", 5, AuditStatus.SUCCESS, 1, 1),
        AuditEntry("r1", now - timedelta(hours=3), "m1", "local", "/v1/chat/completions", 5, AuditStatus.SUCCESS, 3, 4),
        AuditEntry("r2", now - timedelta(minutes=5), "m1", "openai", "/v1/messages", 9, AuditStatus.ERROR, 2, 0,
                   error_type="BackendTimeout"),
        AuditEntry("r3", now - timedelta(minutes=1), "m2", "local", "/v1/completions", 7, AuditStatus.SUCCESS, 5, 6),
    ]
    run.container.audit_service().write(entries)
    recent = json.loads(run("audit", "--since", "1h", "--json").output)
    assert [r["request_id"] for r in recent["items"]] == ["r3", "r2"] and recent["total"] == 2
    m1 = json.loads(run("audit", "--model", "m1", "--json").output)
    assert m1["total"] == 3 and all(r["model"] == "m1" for r in m1["items"])
    errors = json.loads(run("audit", "--status", "error", "--json").output)["items"]
    assert [(r["request_id"], r["error_type"]) for r in errors] == [("r2", "BackendTimeout")]
    table = run("audit", "--limit", "2")
    assert "BackendTimeout" in table.output and "--offset 2" in table.output
    summary = json.loads(run("audit", "summary", "--since", "1d", "--json").output)
    per_model = {m["model"]: m for m in summary["models"]}
    assert per_model["m1"]["requests"] == 2 and per_model["m1"]["error_rate"] == 0.5
    assert summary["requests"] == 3 and summary["completion_tokens"] == 10
    assert "Deleted 1 audit rows" in run("audit", "cleanup").output
    assert json.loads(run("audit", "--json").output)["total"] == 3
    bad = run("audit", "--since", "yesterday-ish")
    assert bad.exit_code != 0 and "30m" in bad.output


def test_the_servers_audit_writer_enforces_retention_periodically(tmp_path):
    """The container's sink (a background writer on SQLite) stores rows and runs the retention cleanup."""
    from adapters.threads.audit_writer import ThreadedAuditWriter
    from domain.audit.model import AuditQuery

    container = sqlite_container(tmp_path, audit_retention_days=7)
    audit = container.audit_service()
    now = datetime.now(timezone.utc)
    audit.write([AuditEntry("old", now - timedelta(days=8), "m", "local", "/v1/chat/completions", 1,
                            AuditStatus.SUCCESS)])
    sink = container.audit_sink()
    assert isinstance(sink, ThreadedAuditWriter)
    sink.record(AuditEntry("new", now, "m", "local", "/v1/chat/completions", 1, AuditStatus.SUCCESS, 2, 3))
    sink.close()
    rows = audit.query(AuditQuery()).items
    assert [r.request_id for r in rows] == ["new"] and (rows[0].prompt_tokens, rows[0].completion_tokens) == (2, 3)


def test_server_start_up_runs_the_retention_cleanup(tmp_path):
    from starlette.testclient import TestClient

    from domain.audit.model import AuditQuery
    from entrypoints.http.app import create_app

    container = sqlite_container(tmp_path, audit_retention_days=1)
    now = datetime.now(timezone.utc)
    container.audit_service().write([
        AuditEntry("stale", now - timedelta(days=2), "m", "local", "/v1/chat/completions", 1, AuditStatus.SUCCESS),
        AuditEntry("fresh", now - timedelta(hours=1), "m", "local", "/v1/chat/completions", 1, AuditStatus.SUCCESS),
    ])
    with TestClient(create_app(container)):
        pass  # no request at all: start-up alone starts the writer and its cleanup
    assert [e.request_id for e in container.audit_service().query(AuditQuery()).items] == ["fresh"]
