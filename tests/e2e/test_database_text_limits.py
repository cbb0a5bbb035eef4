"""Text the database cannot hold is a 4xx on SQLite and PostgreSQL alike, never a 500 on PostgreSQL.

A NUL character (U+0000) in text bound for the database is a 400.

PostgreSQL cannot hold U+0000 in text: a model name, profile field, mapping, key name or query parameter
with one was a 500 there (psycopg fails the statement), and the refused request's audit row was dropped.
Prompts never reach the database, so a NUL inside a message still runs."""

from __future__ import annotations

import httpx
import pytest

from domain.audit.model import AuditQuery
from entrypoints.http.app import create_app
from tests.support.auth_server import sqlite_container
from tests.support.frontends import serve_in_thread

NUL = "a\x00b"


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    container = sqlite_container(tmp_path / "home", database_url=url)
    admin = container.api_key_service().create("owner").secret  # admin writes (keys, mappings)
    with serve_in_thread(create_app(container)) as base:
        with httpx.Client(base_url=base, timeout=60, headers={"authorization": f"Bearer {admin}"}) as client:
            yield client, container


def _refused(response: httpx.Response) -> bool:
    return response.status_code == 400 and "NUL character" in response.json()["error"]["message"]


def test_names_and_fields_with_a_nul_are_a_400(server):
    client, _ = server
    cases = {
        "GET model": client.get("/api/models/a%00b"),
        "GET v1 model": client.get("/v1/models/a%00b"),
        "DELETE profile": client.delete("/api/profiles/a%00b"),
        "audit filter": client.get("/api/audit", params={"model": NUL}),
        "create profile": client.post("/api/profiles", json={"name": "p", "model": "tiny-local", "description": NUL}),
        "create key": client.post("/api/keys", json={"name": NUL}),
        "create mapping": client.post("/api/mappings", json={"model_pattern": NUL, "backend_type": "openai"}),
        "chat with model": client.post("/v1/chat/completions", json={
            "model": NUL, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}),
    }
    wrong = {label: (r.status_code, r.text[:200]) for label, r in cases.items() if not _refused(r)}
    assert not wrong
    assert client.get("/api/profiles").json()["data"] == []  # nothing half-written


def test_a_refused_request_keeps_its_audit_row_and_a_nul_in_a_prompt_still_runs(server):
    client, container = server
    refused = client.post("/v1/chat/completions", json={
        "model": NUL, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
    assert _refused(refused)
    answered = client.post("/v1/chat/completions", json={
        "model": "tiny-local", "max_tokens": 2, "messages": [{"role": "user", "content": "a\x00b"}]})
    assert answered.status_code == 200
    container.audit_sink().flush()
    rows = {row.request_id: row for row in container.audit_service().query(AuditQuery(limit=10)).items}
    assert rows[refused.headers["x-request-id"]].model == "a\ufffdb"
    assert rows[answered.headers["x-request-id"]].status.value == "success"


def test_values_longer_than_their_columns_are_a_422_not_a_500_on_postgresql(server):
    # backend_model is VARCHAR(255): PostgreSQL refused a longer one with a 500, SQLite stored it. A
    # base_url of 70k characters was saved, then httpx refused it on every routed request (a 500).
    client, _ = server
    mapping = client.post("/api/mappings", json={"model_pattern": "long-", "pattern_type": "prefix",
                                                 "backend_type": "openai", "backend_model": "m" * 256})
    assert mapping.status_code == 422 and mapping.json()["error"]["param"] == "backend_model"
    assert client.get("/api/mappings").json() == []
    credential = client.put("/api/credentials/openai_compatible",
                            json={"api_key": "sk-0123456789", "base_url": "http://" + "x" * 70_000})
    assert credential.status_code == 422 and credential.json()["error"]["param"] == "base_url"
    assert client.get("/api/credentials").json() == []
