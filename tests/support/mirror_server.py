"""A loopback plain-HTTP mirror (`{base}/{repo}/{path}?revision=sha`), separate from the fake hub.

    with MirrorServer() as mirror:
        mirror.add("org/tiny", sha, {"config.json": b"{}", "model.safetensors": weights})
        mirror.publish_manifest("org/tiny", sha)        # manifest.json beside the files
        mirror.publish_checksums("org/tiny", sha, {"config.json": "<sha256>"})
        mirror.encoding = "zstd"                         # compress whole-file answers when asked
        mirror.corrupt("model.safetensors")              # serve flipped bytes
        mirror.drop_after("model.safetensors", 100_000)  # cut the next transfer after N wire bytes
        mirror.down = True                               # 503 for everything

`wire_bytes[path]` counts body bytes sent (compressed when encoded); `requests` records
(path, headers) for each GET.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class MirrorServer:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}
        self.extra: dict[tuple[str, str], bytes] = {}  # (repo, name) -> manifest/checksums bytes
        self.encoding: str | None = None
        self.down = False
        self.wire_bytes: dict[str, int] = {}
        self.requests: list[tuple[str, dict]] = []
        self._corrupt: set[str] = set()
        self._drops: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _plain(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                server.requests.append((parts.path, dict(self.headers)))
                if server.down:
                    return self._plain(503)
                path = unquote(parts.path).lstrip("/")
                revision = parse_qs(parts.query).get("revision", [None])[0]
                segments = path.split("/")
                repo, name = "/".join(segments[:2]), "/".join(segments[2:])
                if name in ("manifest.json", "checksums.sha256"):
                    body = server.extra.get((repo, name))
                    return self._plain(200, body) if body is not None else self._plain(404)
                data = server._lookup(repo, revision, name)
                if data is None:
                    return self._plain(404)
                self._send_file(name, data)

            def _send_file(self, name: str, data: bytes) -> None:
                if name in server._corrupt:
                    data = bytes(b ^ 0xFF for b in data)
                start = 0
                range_header = self.headers.get("Range")
                accept = self.headers.get("Accept-Encoding", "")
                encoding = None
                if range_header and range_header.startswith("bytes="):
                    start = int(range_header[6:].split("-")[0])
                    body, status = data[start:], 206
                else:
                    body, status = data, 200
                    if server.encoding and server.encoding in accept:
                        encoding = server.encoding
                        body = _compress(encoding, data)
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                if encoding:
                    self.send_header("Content-Encoding", encoding)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with server._lock:
                    cut = server._drops.pop(name, None)
                if cut is not None and cut < len(body):
                    self.wfile.write(body[:cut])
                    server._count(name, cut)
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)
                server._count(name, len(body))

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def _count(self, name: str, n: int) -> None:
        with self._lock:
            self.wire_bytes[name] = self.wire_bytes.get(name, 0) + n

    def _lookup(self, repo: str, revision: str | None, name: str) -> bytes | None:
        if revision is None:
            matches = [files for (r, _), files in self.files.items() if r == repo]
            files = matches[-1] if matches else {}
        else:
            files = self.files.get((repo, revision), {})
        return files.get(name)

    def add(self, repo: str, revision: str, files: dict[str, bytes]) -> None:
        self.files[(repo, revision)] = dict(files)

    def publish_manifest(self, repo: str, revision: str, sha256: dict[str, str] | None = None) -> None:
        files = self.files[(repo, revision)]
        entries = [{"path": p, "size": len(b), "sha256": (sha256 or {}).get(p, hashlib.sha256(b).hexdigest())}
                   for p, b in sorted(files.items())]
        self.extra[(repo, "manifest.json")] = json.dumps(
            {"repo_id": repo, "revision": revision, "files": entries}).encode()

    def publish_checksums(self, repo: str, revision: str, digests: dict[str, str] | None = None) -> None:
        files = self.files[(repo, revision)]
        digests = digests or {p: hashlib.sha256(b).hexdigest() for p, b in files.items()}
        self.extra[(repo, "checksums.sha256")] = "".join(f"{d}  {p}\n" for p, d in sorted(digests.items())).encode()

    def corrupt(self, name: str) -> None:
        self._corrupt.add(name)

    def drop_after(self, name: str, wire_bytes: int) -> None:
        self._drops[name] = wire_bytes

    def gets_for(self, name: str) -> list[dict]:
        return [headers for path, headers in self.requests if path.endswith("/" + name)]

    def __enter__(self) -> "MirrorServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _compress(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(encoding)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (a source that is down: connection refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
