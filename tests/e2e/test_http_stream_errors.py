"""An error after a response has started, on a real uvicorn server.

Before, an OSError (or any error) raised once the headers were out (the download events stream, a static
file that cannot be read) reached Starlette's exception middleware, which logged "Caught handled exception,
but response already started" with a traceback; the events stream was cut in the middle of a chunk.
Now an events stream ends with an error event, and anything else is one log line and a closed connection.
"""

from __future__ import annotations

import errno
import json
import logging

import anyio
import httpx
import pytest
import starlette.responses
import structlog
from dependency_injector import providers

from application.downloads.progress import PullProgress
from domain.enums import DownloadStatus
from entrypoints.http.app import create_app
from tests.support.auth_server import sqlite_container
from tests.support.frontends import serve_in_thread


class _FailsAfterFirstEvent:
    """A download service whose progress can be read once, then the disk fails."""

    def __init__(self, error: OSError) -> None:
        self.error = error
        self.reads = 0

    def get(self, download_id):
        return None  # the row exists (the route only checks this before the stream starts)

    def is_active_here(self, download_id):
        return True

    def progress_of(self, download_id):
        self.reads += 1
        if self.reads > 1:
            raise self.error
        return PullProgress(download_id, "org/model", DownloadStatus.DOWNLOADING, 1, 10)


def _events(lines: list[str]) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: "):])))
    return events


@pytest.mark.parametrize("error, expected_type", [
    (OSError(errno.EIO, "Input/output error"), "server_error"),
    (OSError(errno.ENOSPC, "No space left on device"), "insufficient_storage"),
])
def test_an_os_error_after_the_download_stream_started_ends_it_with_an_error_event(
        tmp_path, caplog, error, expected_type):
    container = sqlite_container(tmp_path)
    container.download_service.override(providers.Object(_FailsAfterFirstEvent(error)))
    caplog.set_level(logging.WARNING)
    with structlog.testing.capture_logs() as logs, serve_in_thread(create_app(container)) as url:
        # A cut connection would raise httpx.RemoteProtocolError ("incomplete chunked read") here.
        with httpx.stream("GET", url + "/api/downloads/1/events", timeout=30) as response:
            assert response.status_code == 200
            lines = list(response.iter_lines())
    events = _events(lines)
    assert [name for name, _ in events] == ["progress", "error"]
    assert events[1][1]["error"]["type"] == expected_type
    stream_logs = [entry for entry in logs if entry["event"] == "stream ended by an error after it started"]
    assert len(stream_logs) == 1
    assert stream_logs[0]["error_type"] == "OSError" and stream_logs[0]["path"] == "/api/downloads/1/events"
    assert not [r for r in caplog.records if "response already started" in r.getMessage()
                or "Exception in ASGI application" in r.getMessage()]


class _UnreadableFiles:
    """`anyio` as starlette.responses sees it, except that no file can be opened (a disk error)."""

    def __getattr__(self, name):
        return getattr(anyio, name)

    async def open_file(self, *args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")


def test_a_file_that_cannot_be_read_after_its_headers_is_one_log_line_and_a_closed_connection(
        tmp_path, caplog, monkeypatch):
    container = sqlite_container(tmp_path)
    caplog.set_level(logging.WARNING)
    with structlog.testing.capture_logs() as logs, serve_in_thread(create_app(container)) as url:
        monkeypatch.setattr(starlette.responses, "anyio", _UnreadableFiles())  # the headers are sent before the open
        # The client must see the body cut short, not a short body that looks complete.
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url + "/ui/static/app.css", timeout=30)
    failed = [entry for entry in logs if entry["event"] == "response failed after it started; connection closed"]
    assert [(entry["error_type"], entry["path"]) for entry in failed] == [("OSError", "/ui/static/app.css")]
    assert not [r for r in caplog.records if r.exc_info or "response already started" in r.getMessage()]
