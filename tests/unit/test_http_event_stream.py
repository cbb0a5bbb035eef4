"""`EventStreamResponse`: once the headers are out, an error ends the stream instead of escaping it."""

from __future__ import annotations

import asyncio

import structlog

from entrypoints.http.event_stream import EventStreamResponse


def _scope(spec_version: str) -> dict:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": spec_version}, "method": "GET",
            "path": "/api/downloads/1/events", "headers": []}


async def _no_disconnect():
    await asyncio.sleep(3600)
    return {"type": "http.disconnect"}


def _run(response, scope, send):
    asyncio.run(response(scope, _no_disconnect, send))


async def _two_events_then(error: Exception):
    yield "event: progress\ndata: {}\n\n"
    yield "event: progress\ndata: {}\n\n"
    raise error


def test_an_error_from_the_events_becomes_the_last_event_and_the_body_ends():
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    response = EventStreamResponse(_two_events_then(OSError(5, "Input/output error")),
                                   error_event=lambda exc: f"event: error\ndata: {type(exc).__name__}\n\n")
    with structlog.testing.capture_logs() as logs:
        _run(response, _scope("2.3"), send)
    bodies = [m.get("body", b"") for m in sent if m["type"] == "http.response.body"]
    assert bodies[-2:] == [b"event: error\ndata: OSError\n\n", b""]
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert [(e["event"], e["error_type"]) for e in logs if e["log_level"] == "warning"] == [
        ("stream ended by an error after it started", "OSError")]


def test_a_client_gone_on_an_asgi_2_4_server_is_a_log_line_not_an_error():
    # Such servers raise OSError from `send` once the client left; Starlette turns it into ClientDisconnect,
    # which would reach the exception middleware after the response started.
    started: list[dict] = []

    async def send(message):
        if message["type"] == "http.response.body":
            raise OSError(32, "Broken pipe")
        started.append(message)

    async def endless():
        while True:
            yield "event: progress\ndata: {}\n\n"

    with structlog.testing.capture_logs() as logs:
        _run(EventStreamResponse(endless()), _scope("2.4"), send)  # returns instead of raising
    assert started and started[0]["type"] == "http.response.start"
    assert [e["event"] for e in logs] == ["client disconnected during a stream"]
