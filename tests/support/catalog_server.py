"""A loopback catalog server for the signed-catalog tests, and helpers to build signed catalogs.

    with CatalogServer() as server:
        server.put("/catalog.json", data)               # bytes, served with Content-Length
        server.put("/catalog.json.sig", signature)
        server.hang("/catalog.json")                    # accepts, never answers
        server.endless("/catalog.json", declared=10 * 1024**3)   # claims 10 GB, streams zeros
        server.put("/catalog.json", data, gzip=True)    # Content-Encoding: gzip
"""

from __future__ import annotations

import gzip as gzip_module
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CatalogServer:
    def __init__(self) -> None:
        self._routes: dict[str, tuple] = {}
        self.requests: list[str] = []
        self.bytes_sent = 0
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(self.path)
                route = server._routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                kind = route[0]
                if kind == "hang":
                    server._stop.wait(30)
                    return
                if kind == "endless":
                    declared = route[1]
                    self.send_response(200)
                    if declared is not None:
                        self.send_header("Content-Length", str(declared))
                    else:
                        self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"0" * 65536
                    try:
                        while not server._stop.is_set():
                            if declared is None:
                                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            else:
                                self.wfile.write(chunk)
                            server.bytes_sent += len(chunk)
                    except OSError:
                        return
                    return
                _, body, headers = route
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                server.bytes_sent += len(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def put(self, path: str, body: bytes, gzip: bool = False) -> None:
        headers = {"Content-Type": "application/json"}
        if gzip:
            body = gzip_module.compress(body)
            headers["Content-Encoding"] = "gzip"
        self._routes[path] = ("body", body, headers)

    def remove(self, path: str) -> None:
        self._routes.pop(path, None)

    def hang(self, path: str) -> None:
        self._routes[path] = ("hang",)

    def endless(self, path: str, declared: int | None) -> None:
        self._routes[path] = ("endless", declared)

    def __enter__(self) -> "CatalogServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        time.sleep(0)


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def catalog_document(*, sequence: int, key_id: str, models: list[dict] | None = None,
                     issued_at: datetime | None = None, expires_in: timedelta = timedelta(days=30),
                     default_model: str | None = None) -> dict:
    """A remote catalog in the embedded catalog's shape plus the signed header fields."""
    issued = issued_at or datetime.now(timezone.utc) - timedelta(minutes=1)
    models = models if models is not None else [team_model("team-tiny-v1", "org/tiny")]
    return {
        "version": 1,
        "sequence": sequence,
        "issued_at": iso(issued),
        "expires_at": iso(issued + expires_in),
        "key_id": key_id,
        "default_model": default_model or models[0]["id"],
        "models": models,
    }


def team_model(model_id: str, repo: str, *, family: str = "team", revision: str | None = None,
               aliases: list[str] | None = None, supersedes: list[str] | None = None) -> dict:
    entry = {"id": model_id, "display_name": model_id, "type": "text-gen", "family": family,
             "aliases": aliases or [], "sources": [{"kind": "huggingface_repo", "value": repo, "priority": 10}]}
    if revision:
        entry["revision"] = revision
    if supersedes:
        entry["supersedes"] = supersedes
    return entry


def encode(document: dict) -> bytes:
    return (json.dumps(document, indent=1) + "\n").encode("utf-8")
