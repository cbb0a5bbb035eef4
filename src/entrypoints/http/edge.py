"""The HTTP edge: which Host, Origin and body type a request may come with (pure ASGI).

A local server is reachable from every web page the user opens: a page can send "simple" cross-site
requests (text/plain or form bodies, no preflight), and a rebound DNS name makes the browser treat
the server as the page's own origin. Three checks stop both, before any route runs:

- **Host allow-list.** The `Host` must be a loopback name or address, the configured bind address,
  the address the connection actually arrived on, or one of `MLX_MANAGER_ALLOWED_HOSTS`
  (comma-separated; `*.example.com` matches sub-domains; `*` turns the check off). Anything else is
  421: a rebound name (`rebind.evil.example`) never reaches a route. An IP literal cannot be rebound,
  but only this machine's own addresses are accepted, as above. A Host that is not `host[:port]` (a
  hostname, an IPv4 address or a bracketed IPv6 address; a port 1-65535, or an empty one meaning the
  default as RFC 3986 allows), or a request with two Host headers, is a 400. A request without Host (HTTP/1.0) passes: no browser sends one, so no page can.
- **Origin check** on state-changing methods (everything but GET/HEAD/OPTIONS): a request that
  carries `Origin` must come from the same origin (the Origin's host:port is the request's Host) or
  from one of `MLX_MANAGER_ALLOWED_ORIGINS`; `Origin: null` is refused. A request without `Origin`
  but with `Sec-Fetch-Site: cross-site|same-site` is refused too. Clients that are not browsers (the
  CLI, SDKs, curl) send no Origin and are not affected. Refusals are 403.
- **Body type.** A request with a body must send `Content-Type: application/json` (or `+json`),
  else 415: browsers can send only text/plain, form-urlencoded and multipart without a preflight.
  Multipart is accepted only on routes that declare an upload (their body_content_type), and those
  are state-changing, so the Origin check above applies to them.

The web UI served at `/` passes all three without doing anything special: the browser sends the
server's own Host, a same-origin `Origin`, and the UI's `fetch` calls send JSON bodies.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable
from urllib.parse import urlsplit

from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from application.errors import InvalidRequest
from entrypoints.errors import mapping_for
from entrypoints.http.errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
JSON_TYPES = ("application/json",)
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def split_host(value: str) -> tuple[str, int | None]:
    """`host[:port]` (IPv6 in brackets) -> (lower-case host without brackets or trailing dot, port)."""
    value = value.strip()
    port: int | None = None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, _, raw_port = value.partition(":")
        port = int(raw_port) if raw_port.isdigit() else None
    else:
        host = value
    return host.rstrip(".").lower(), port


_PORT = re.compile(r"[0-9]{1,5}")
# One DNS label (RFC 1123), with `_` too: container and compose service names use it.
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")


def _is_hostname_or_ipv4(host: str) -> bool:
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.lower().split(".")):
        return False
    if name.rsplit(".", 1)[-1].isdigit():  # all-numeric last label: an IPv4 address or nothing
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return False
    return True


def _is_ipv6(host: str) -> bool:
    if "%" in host:  # zone ids never travel in a Host header
        return False
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def parse_host_header(value: str) -> tuple[str, int | None] | None:
    """A `Host` value as (host, port) like `split_host`, or None when it is not a valid `host[:port]`.

    Stricter than `split_host` (which also reads settings and socket addresses): anything a browser
    or an HTTP client would not send for a real server, e.g. `""`, `[::1]evil`, `127.0.0.1:abc`, is None.
    """
    value = value.strip(" \t")
    if value.startswith("["):
        host, closed, tail = value[1:].partition("]")
        if not closed or not _is_ipv6(host):
            return None
    else:
        host, colon, port_text = value.partition(":")
        tail = colon + port_text
        if not _is_hostname_or_ipv4(host):
            return None
    port = None
    if tail and tail != ":":  # `host:` is valid: RFC 3986 `port = *DIGIT`, empty = the scheme's default
        if not tail.startswith(":") or not _PORT.fullmatch(tail[1:]) or not 0 < int(tail[1:]) <= 65535:
            return None
        port = int(tail[1:])
    return host.rstrip(".").lower(), port


def _is_loopback_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def parse_list(raw: str | None) -> tuple[str, ...]:
    """A comma- (or space-) separated setting as a tuple of non-empty, lower-case entries."""
    return tuple(part.strip().lower() for part in (raw or "").replace(" ", ",").split(",") if part.strip())


class HostPolicy:
    """Which Host names this server answers to (see the module docstring)."""

    def __init__(self, bind_host: str | None, extra: Iterable[str] = ()) -> None:
        self.any_host = "*" in extra
        self.names = {name for name in extra if not name.startswith("*.") and name != "*"}
        self.suffixes = tuple(name[1:] for name in extra if name.startswith("*."))  # ".example.com"
        bind = split_host(bind_host or "")[0]
        if bind and bind not in WILDCARD_BINDS:
            self.names.add(bind)

    def allows(self, host: str, scope: Scope) -> bool:
        if self.any_host or host in LOOPBACK_NAMES or _is_loopback_address(host) or host in self.names:
            return True
        if any(host.endswith(suffix) for suffix in self.suffixes):
            return True
        # The address the connection arrived on is this server's own (uvicorn reports the socket's
        # local address; with a wildcard bind that is the interface the client used).
        server = scope.get("server")
        return bool(server and server[0] and split_host(str(server[0]))[0] == host)


def _origin_netloc(origin: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(origin)
        host, port = split_host(parts.netloc)
        return parts.scheme.lower(), host, port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None


class EdgeGuardMiddleware:
    """Host allow-list, Origin check and body-type check (pure ASGI; streams keep their disconnects)."""

    def __init__(self, app: ASGIApp, *, bind_host: str | None, allowed_hosts: Iterable[str] = (),
                 allowed_origins: Iterable[str] = (), upload_routes: Iterable[Route] = ()) -> None:
        self.app = app
        self.hosts = HostPolicy(bind_host, tuple(allowed_hosts))
        self.allowed_origins = {o.rstrip("/") for o in allowed_origins}
        self.upload_routes = tuple(upload_routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, type_, message = refusal
            await error_response(status, type_, message, path=scope.get("path", ""))(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        host_headers = [value for name, value in scope.get("headers") or () if name == b"host"]
        host, port = "", None
        if len(host_headers) > 1:
            return _bad_request("a request must carry one Host header, not several")
        if host_headers:  # none: an HTTP/1.0 client (see the module docstring)
            raw_host = host_headers[0].decode("latin-1")
            parsed = parse_host_header(raw_host)
            if parsed is None:
                return _bad_request(f"Host {raw_host[:100]!r} is not a valid host[:port]")
            host, port = parsed
            if not self.hosts.allows(host, scope):
                return (421, "misdirected_request",
                        f"Host {raw_host[:100]!r} is not served here; add it to MLX_MANAGER_ALLOWED_HOSTS to allow it")
        method = scope.get("method", "GET")
        if method in SAFE_METHODS:
            return None
        origin = headers.get(b"origin")
        if origin is not None:
            origin_text = origin.decode("latin-1").strip()
            if not self._origin_allowed(origin_text, scope, host, port):
                return (403, "forbidden_origin",
                        f"cross-origin {method} from {origin_text[:100]!r} refused; "
                        "add the origin to MLX_MANAGER_ALLOWED_ORIGINS to allow it")
        elif headers.get(b"sec-fetch-site", b"").lower() in (b"cross-site", b"same-site"):
            return 403, "forbidden_origin", f"cross-site {method} refused"
        return self._body_type_refusal(scope, headers)

    def _origin_allowed(self, origin: str, scope: Scope, host: str, port: int | None) -> bool:
        if origin.rstrip("/").lower() in self.allowed_origins:
            return True
        if origin == "null" or not host:
            return False
        parsed = _origin_netloc(origin)
        if parsed is None:
            return False
        scheme, origin_host, origin_port = parsed
        request_scheme = scope.get("scheme", "http")
        request_port = port or _DEFAULT_PORTS.get(request_scheme)
        return scheme == request_scheme and origin_host == host and origin_port == request_port

    def _body_type_refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        length = headers.get(b"content-length", b"").strip()
        has_body = b"transfer-encoding" in headers or (length not in (b"", b"0") and length != b"")
        if not has_body:
            return None
        media_type = headers.get(b"content-type", b"").decode("latin-1").split(";", 1)[0].strip().lower()
        upload = any(route.matches(scope)[0] is Match.FULL for route in self.upload_routes)
        if upload:
            if media_type == "multipart/form-data":
                return None
            return 415, "unsupported_media_type", "this route takes an upload: send multipart/form-data"
        if media_type in JSON_TYPES or (media_type.startswith("application/") and media_type.endswith("+json")):
            return None
        shown = media_type or "no Content-Type"
        return (415, "unsupported_media_type",
                f"request bodies must be JSON: send Content-Type: application/json (got {shown[:80]})")


def _bad_request(message: str) -> tuple[int, str, str]:
    mapping = mapping_for(InvalidRequest(message))  # the one error map decides the status and type
    return mapping.status, mapping.type, message


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope.get("headers") or [])


def upload_routes_of(routes: Iterable) -> list[Route]:
    """The routes whose declared body is multipart (uploads); every other body must be JSON."""
    found = []
    for route in routes:
        doc = getattr(route, "openapi", None)
        if isinstance(route, Route) and doc is not None and doc.body_content_type.startswith("multipart/"):
            found.append(route)
    return found
