"""The two HTTP transports of `fetch_resumable` (split from `http_transfer.py` by size).

Both speak the same small interface: `get(url, headers)` -> a response with `status`,
`header(name)` and `chunks()`.

* `StdlibHttp` (the default): `http.client`, one `recv_into` per chunk into a reused 1 MiB
  buffer. Measured here it costs about half the CPU per byte of httpx's streaming API,
  which matters because verification-on throughput is CPU-bound on small machines.
  It follows redirects (dropping `Authorization` on a host change, as the Hub's CDN expects).
* `HttpxHttp`: any httpx-compatible client, used when a proxy is configured in the environment
  (httpx honours `HTTPS_PROXY`/`NO_PROXY`; `http.client` does not).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import urllib.request
from typing import Iterator
from urllib.parse import urljoin, urlsplit

from application.errors import SourceError

BUFFER_BYTES = 1024 * 1024
DECODED_BLOCK_BYTES = 64 * 1024


class _StdlibResponse:
    def __init__(self, response: http.client.HTTPResponse, buffer_bytes: int) -> None:
        self._response = response
        self.status = response.status
        self._buffer = memoryview(bytearray(buffer_bytes))

    def header(self, name: str) -> str | None:
        return self._response.getheader(name)

    def chunks(self) -> Iterator[memoryview | bytes]:
        """The body's bytes (decoded when the server sent `Content-Encoding: gzip|zstd`)."""
        encoding = (self.header("Content-Encoding") or "identity").strip().lower()
        if encoding in ("", "identity"):
            return self._raw_chunks()
        # Small decoded blocks: bytes decoded before a drop reach the partial file (and are resumed from).
        return _decoded_chunks(encoding, self._response, DECODED_BLOCK_BYTES)

    def _raw_chunks(self) -> Iterator[memoryview | bytes]:
        """Whatever the socket has, up to the buffer size, as views into one reused buffer.

        One `recv_into` per chunk: large chunks when bytes flood in (cheap per byte), small ones
        when the server is slow (progress keeps moving; a drop loses nothing already received).
        Consume each chunk before asking for the next.
        """
        response = self._response
        if response.chunked or response.length is None:
            while chunk := response.read1(len(self._buffer)):
                yield chunk
            return
        # Our own count of the body: the connection is closed after this response, so reading
        # past http.client's bookkeeping is safe and saves a copy per chunk.
        remaining = response.length
        fp = response.fp
        buffer = self._buffer
        while remaining > 0:
            n = fp.readinto1(buffer[: min(len(buffer), remaining)])
            if not n:
                return
            remaining -= n
            yield buffer[:n]


def accepted_encodings() -> str:
    """What a fresh (not resumed) transfer asks for: zstd when `zstandard` is installed, and gzip."""
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return "gzip"
    return "zstd, gzip"


def _decoded_chunks(encoding: str, response: http.client.HTTPResponse, block: int) -> Iterator[bytes]:
    # Decoded through a reader so each read yields at most `block` bytes however well the body
    # compresses (a small body cannot expand into memory all at once).
    import zlib

    errors: tuple[type[BaseException], ...] = (EOFError, ValueError, zlib.error)
    if encoding in ("gzip", "x-gzip"):
        import gzip

        reader = gzip.GzipFile(fileobj=response, mode="rb")
    elif encoding == "zstd":
        try:
            import zstandard
        except ImportError:
            raise SourceError("the source sent Content-Encoding: zstd but zstandard is not installed") from None
        reader = zstandard.ZstdDecompressor().stream_reader(response, read_across_frames=True)
        errors += (zstandard.ZstdError,)
    else:
        raise SourceError(f"the source sent an unsupported Content-Encoding: {encoding}")
    try:
        while data := reader.read(block):
            yield data
    except errors as exc:
        # A body cut mid-stream (or a broken one): the decoded bytes so far are a correct prefix,
        # and the retry resumes from them with a plain (identity) Range request.
        raise ConnectionError(f"compressed body ended early or is corrupt ({exc})") from None


class StdlibHttp:
    """`http.client` with redirects, a socket timeout and a large reused read buffer."""

    errors: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException)

    def __init__(self, timeout_seconds: float = 120.0, max_redirects: int = 10,
                 buffer_bytes: int = BUFFER_BYTES, connect_timeout_seconds: float | None = None,
                 receive_buffer_bytes: int = 0) -> None:
        self._timeout = timeout_seconds  # each read
        self._connect_timeout = connect_timeout_seconds or timeout_seconds
        self._max_redirects = max_redirects
        self._buffer_bytes = buffer_bytes
        self._receive_buffer_bytes = receive_buffer_bytes  # SO_RCVBUF; 0: the OS's autotuning
        self._ssl: ssl.SSLContext | None = None

    def _connection(self, url: str) -> tuple[http.client.HTTPConnection, str]:
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if parts.scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=self._connect_timeout,
                                               context=self._ssl)
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self._connect_timeout)
        else:
            raise SourceError(f"unsupported URL scheme in {url}")
        if self._receive_buffer_bytes:
            conn._create_connection = _connect_with_receive_buffer(self._receive_buffer_bytes)
        return conn, target

    @contextlib.contextmanager
    def get(self, url: str, headers: dict[str, str]):
        headers = dict(headers)
        for _ in range(self._max_redirects + 1):
            conn, target = self._connection(url)
            try:
                conn.connect()  # within the connect timeout; every read after it within the read timeout
                conn.sock.settimeout(self._timeout)
                conn.request("GET", target, headers=headers)
                response = conn.getresponse()
                if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                    location = urljoin(url, response.getheader("Location"))
                    response.read()
                    if urlsplit(location).netloc != urlsplit(url).netloc:
                        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                    url = location
                    continue
                yield _StdlibResponse(response, self._buffer_bytes)
                return
            finally:
                conn.close()
        raise SourceError(f"too many redirects for {url}")


def _connect_with_receive_buffer(size: int):
    """`socket.create_connection` with SO_RCVBUF set before connect (the TCP window scale is agreed then)."""

    def create(address, timeout=None, source_address=None, *args, **kwargs):
        host, port = address
        error: OSError | None = None
        for family, kind, proto, _name, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error or OSError(f"cannot resolve {host}")

    return create


class _HttpxResponse:
    def __init__(self, response) -> None:
        self._response = response
        self.status = response.status_code

    def header(self, name: str) -> str | None:
        return self._response.headers.get(name)

    def chunks(self) -> Iterator[bytes]:
        return self._response.iter_bytes()  # as received: a drop loses no buffered bytes


class HttpxHttp:
    """An httpx(-compatible) client: proxies from the environment, its own redirect handling."""

    def __init__(self, client, errors: tuple[type[BaseException], ...], timeout=None) -> None:
        self._client = client
        self.errors = errors
        self._timeout = timeout

    @contextlib.contextmanager
    def get(self, url: str, headers: dict[str, str]):
        kwargs = {"headers": headers}
        if self._timeout is not None:
            kwargs["timeout"] = self._timeout
        with self._client.stream("GET", url, **kwargs) as response:
            yield _HttpxResponse(response)


def proxy_configured(url: str) -> bool:
    """True when the environment routes `url` through a proxy (then use `HttpxHttp`)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if parts.scheme not in proxies:
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


def checked_base_url(url: str, *, what: str, setting: str, example: str) -> str:
    """`url` when it is an http(s) URL with a host and a valid port; a SourceError naming the setting it came
    from otherwise (`http://[::1` was a ValueError deep in the HTTP client; `notaurl` was retried as if down)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable:
        raise SourceError(f"the {what} {url!r} ({setting}) is not an http(s) URL like {example}")
    return url
