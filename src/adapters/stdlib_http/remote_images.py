"""`GuardedImageFetcher`: fetch a chat image from an http(s) URL without becoming an SSRF proxy.

- The host is resolved first and EVERY address it resolves to must be public (not loopback,
  private, link-local, shared/CGNAT, multicast, reserved or unspecified; IPv4-mapped IPv6 is
  unwrapped); the connection then goes to that vetted address (pinned), so a DNS answer that
  changes between check and connect (rebinding) cannot slip an internal address in.
- Redirects are followed (at most 3), each hop vetted the same way.
- Bounded: the whole fetch has one deadline, and the body is read in chunks up to `max_bytes`.
- stdlib `http.client` on purpose: it connects where we say (httpx/urllib resolve again and honour
  proxy variables), and it never reads a proxy from the environment.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from typing import Callable
from urllib.parse import urljoin, urlsplit

from application.errors import InvalidRequest
from application.inference.ports import ImageInput

MAX_REDIRECTS = 3
CHUNK = 64 * 1024


def refusal(address: str) -> str | None:
    """Why `address` may not be fetched, or None when it is a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attribute, kind in (("is_loopback", "loopback"), ("is_unspecified", "unspecified"),
                            ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                            ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(ip, attribute):
            return kind
    if not ip.is_global:
        return "non-public"
    return None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # SNI + certificate for the name


class GuardedImageFetcher:
    def __init__(self, resolve: Callable = socket.getaddrinfo, refuse: Callable[[str], str | None] = refusal,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._resolve = resolve
        self._refuse = refuse  # tests of the size/time bounds swap this to reach a loopback server
        self._clock = clock

    def fetch(self, url: str, *, max_bytes: int, timeout: float) -> ImageInput:
        deadline = self._clock() + timeout
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InvalidRequest(f"image URL {url[:100]!r}: only http(s) and data: URLs are accepted")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = self._vetted_address(parts.hostname, port)
            cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
            connection = cls(parts.hostname, port, address, timeout=self._remaining(deadline, url))
            try:
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                connection.request("GET", path, headers={"User-Agent": "mlxm", "Accept": "image/*"})
                response = connection.getresponse()
                if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                    url = urljoin(url, response.getheader("Location"))
                    continue
                if response.status != 200:
                    raise InvalidRequest(f"image URL {url[:100]!r} answered HTTP {response.status}")
                length = response.getheader("Content-Length")
                if length and length.isdigit() and int(length) > max_bytes:
                    raise InvalidRequest(f"image URL {url[:100]!r} is larger than {max_bytes} bytes")
                data = self._read(response, max_bytes, deadline, url, connection)
                media_type = (response.getheader("Content-Type") or "").split(";")[0].strip() or None
                return ImageInput(data=data, media_type=media_type)
            except (OSError, http.client.HTTPException) as exc:
                raise InvalidRequest(f"image URL {url[:100]!r} could not be fetched: {exc.__class__.__name__}") from exc
            finally:
                connection.close()
        raise InvalidRequest(f"image URL redirected more than {MAX_REDIRECTS} times")

    def _vetted_address(self, host: str, port: int) -> str:
        try:
            infos = self._resolve(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise InvalidRequest(f"image URL host {host!r} does not resolve") from exc
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        if not addresses:
            raise InvalidRequest(f"image URL host {host!r} does not resolve")
        for address in addresses:
            kind = self._refuse(address)
            if kind is not None:
                raise InvalidRequest(f"image URL host {host!r} resolves to a {kind} address ({address}); refused")
        return addresses[0]

    def _remaining(self, deadline: float, url: str) -> float:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise InvalidRequest(f"image URL {url[:100]!r} took too long")
        return remaining

    def _read(self, response, max_bytes: int, deadline: float, url: str, connection) -> bytes:
        chunks, total = [], 0
        while True:
            if connection.sock is not None:  # each read waits at most what is left of the deadline
                connection.sock.settimeout(self._remaining(deadline, url))
            chunk = response.read1(CHUNK)  # what has arrived: a dripping server cannot hold one read open
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > max_bytes:
                raise InvalidRequest(f"image URL {url[:100]!r} is larger than {max_bytes} bytes")
            chunks.append(chunk)
            self._remaining(deadline, url)  # a server dripping bytes still ends at the deadline
