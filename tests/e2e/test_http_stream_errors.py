"""An error after a stream has started, on a real uvicorn server: the stream ends cleanly.

Before, an OSError (or any error) raised by the download events stream once its headers were out reached
Starlette's exception middleware, which logged "Caught handled exception, but response already started"
with a traceback, and the client saw a connection cut in the middle of a chunk.
"""

from __future__ import annotations

import errno
import json
import logging

import httpx
import pytest
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
