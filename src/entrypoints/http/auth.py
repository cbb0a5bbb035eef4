"""API-key authentication for `/v1` and `/api`, and the request context used by the audit log.

Auth is on with `MLX_MANAGER_AUTH=on`, and always when the server is bound to a non-loopback
address (peers leave their inference endpoints open; mlxm does not). On loopback it is off
unless turned on. When on:
- every `/v1/*` and `/api/*` route except `/api/health` (and the password login) needs
  `Authorization: Bearer <key>`; `/v1/messages` also accepts `x-api-key` (Anthropic clients), and both
  at once only when they carry the same key (401 otherwise);
- a missing or wrong key is 401; a management write (or a read of users, credentials or the
  audit log) by a non-admin is 403.
A request carrying a credential header twice (`Authorization`, `x-api-key`, the local CLI token) is a
401 in every mode: which one counts would otherwise be up to each reader (first here, last there).

With auth off, writes that create users or keys or change credentials or routes (CREDENTIAL_WRITES)
still need an admin key, or the local CLI's token (entrypoints.local_admin): an open loopback server
must not let any process or page that reaches it mint accounts and keys. A request that presents the
local token from a loopback client is the local admin whatever the auth mode.
"""

from __future__ import annotations

import ipaddress

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from application.identity.service import LOCAL_PRINCIPAL
from application.errors import ApplicationError, Conflict, Unauthorized
from application.routing.service import RequestContext
from entrypoints.errors import mapping_for
from entrypoints import local_admin
from entrypoints.http.errors import error_response
from entrypoints.request_context import REQUEST_CONTEXT as _REQUEST_CONTEXT

log = structlog.get_logger("mlxm.auth")

OPEN_PATHS = frozenset({"/api/health", "/api/auth/login"})
# Writes under /api that are not management: inference, and a user's own keys (the service checks ownership).
NON_ADMIN_WRITES = ("/api/chat", "/api/keys")
ADMIN_READS = ("/api/users", "/api/credentials", "/api/audit")
X_API_KEY_PATHS = ("/v1/messages",)
# Writes that make accounts or keys, or change credentials or routes: an admin's even with auth off.
CREDENTIAL_WRITES = ("/api/users", "/api/keys", "/api/credentials", "/api/mappings")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CREDENTIAL_HEADERS = (b"authorization", b"x-api-key", local_admin.HEADER.encode())



def _loopback_ip(address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def is_loopback(host: str | None) -> bool:
    if not host or host == "localhost":
        return host == "localhost"
    try:
        return _loopback_ip(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return False  # a hostname could resolve anywhere: treat it as exposed


def auth_required(settings) -> bool:
    """`MLX_MANAGER_AUTH=on`, or a non-loopback bind address (then even `off` does not turn it off)."""
    return settings.manager.auth == "on" or not is_loopback(settings.manager.host)


def reached_from_outside(scope: Scope) -> bool:
    """The connection arrived on a non-loopback local address.

    The server reports the socket's own address in `scope["server"]`, so this holds even when the app
    was served by hand (create_app + uvicorn on 0.0.0.0) without the settings knowing the bind address.
    A name that is not an IP (a test client's "testserver", a unix socket path) leaves it to the settings.
    """
    server = scope.get("server")
    if not server or not server[0]:
        return False
    try:
        address = ipaddress.ip_address(str(server[0]).strip("[]"))
    except ValueError:
        return False
    return not _loopback_ip(address)


def ensure_servable(container, host: str) -> None:
    """Refuse to expose the server with auth on and no API key at all (nobody could use it)."""
    settings = container.settings()
    settings.manager.host = host  # the middleware decides from the address really bound
    if not auth_required(settings):
        return
    # Only keys made by the owner's CLI or by an admin count: a key minted by whoever reached an open
    # server (or made before mlxm recorded who made keys) must not be what lets the server be exposed.
    if container.api_key_service().count_active(trusted_only=True) == 0:
        where = f"on {host}" if not is_loopback(host) else "with MLX_MANAGER_AUTH=on"
        raise Conflict(
            f"refusing to serve {where} without an API key made by you or an admin: create one with "
            "`mlxm keys create NAME` (it prints the key once), then send it as `Authorization: Bearer <key>`"
        )
    if settings.manager.auth == "off":
        log.warning("MLX_MANAGER_AUTH=off ignored: the server is bound to a non-loopback address", host=host)


def _protected(path: str) -> bool:
    if path in OPEN_PATHS:
        return False
    return path == "/v1" or path.startswith("/v1/") or path == "/api" or path.startswith("/api/")


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def needs_admin(method: str, path: str) -> bool:
    if not path.startswith("/api/"):
        return False  # /v1 is inference: any approved user
    if method in READ_METHODS:
        return _under(path, ADMIN_READS)
    return not _under(path, NON_ADMIN_WRITES)


def needs_admin_proof(method: str, path: str) -> bool:
    """With auth off, these still need an admin key or the local CLI token."""
    return method not in READ_METHODS and _under(path, CREDENTIAL_WRITES)


def _client_is_loopback(scope: Scope) -> bool:
    client = scope.get("client")
    if not client or not client[0]:
        return False
    try:
        return _loopback_ip(ipaddress.ip_address(str(client[0]).strip("[]")))
    except ValueError:
        return False


def repeated_credential(scope: Scope) -> str | None:
    """The name of a credential header the request carries more than once, if any."""
    names = [name for name, _ in scope.get("headers") or () if name in CREDENTIAL_HEADERS]
    return next((name.decode("latin-1") for name in CREDENTIAL_HEADERS if names.count(name) > 1), None)


def _presented_key(scope: Scope) -> str | None:
    """The API key the request presents: its Bearer token, or (on /v1/messages) its x-api-key.

    Both at once with different keys is a 401 (`Unauthorized`): the Anthropic SDK sends both when a client
    sets `api_key` and `auth_token`, and letting one silently win would authenticate (and audit) whichever
    key this server happens to prefer. The same key in both is unambiguous and accepted.
    """
    headers = dict(scope.get("headers") or [])
    authorization = headers.get(b"authorization", b"").decode("latin-1").strip()
    bearer = authorization[7:].strip() or None if authorization[:7].lower() == "bearer " else None
    if not _under(scope["path"], X_API_KEY_PATHS):
        return bearer
    api_key = headers.get(b"x-api-key", b"").decode("latin-1").strip() or None
    if bearer is not None and api_key is not None and bearer != api_key:
        raise Unauthorized("Authorization and x-api-key carry different keys: send one of them")
    return bearer or api_key


class ApiKeyAuthMiddleware:
    """Pure ASGI (streams keep seeing client disconnects). Sets `scope["state"]["principal"]`."""

    def __init__(self, app: ASGIApp, container) -> None:
        self.app = app
        self._container = container
        self._local_token: str | None = None  # read on first use (the home may not exist at import)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        repeated = repeated_credential(scope)
        if repeated is not None:
            # 401 like a missing or wrong key (the neighbouring refusals): the client's credentials are what is
            # wrong, and SDKs report a 401 as an authentication problem rather than a malformed request.
            await _refuse(Unauthorized(f"send the {repeated} header once, not several times"), scope, receive, send)
            return
        state = scope.setdefault("state", {})
        token = _REQUEST_CONTEXT.set(RequestContext(endpoint=scope["path"], request_id=state.get("request_id")))
        try:
            path, method = scope["path"], scope.get("method", "GET")
            principal = LOCAL_PRINCIPAL
            if self._local_cli(scope):
                pass  # the machine owner's CLI: the local admin in every auth mode
            elif _protected(path) and (reached_from_outside(scope) or auth_required(self._container.settings())):
                principal = await self._authenticate(scope, receive, send)
                if principal is None:
                    return
                if needs_admin(method, path) and not principal.is_admin:
                    await error_response(403, "permission_error", f"{method} {path} needs an admin key", path=path)(
                        scope, receive, send
                    )
                    return
            elif needs_admin_proof(method, path):
                if _presented_key(scope) is None:
                    await error_response(
                        403, "permission_error",
                        f"{method} {path} needs an admin key (Authorization: Bearer <key>) even with auth off; "
                        "or use the mlxm CLI on this machine", path=path,
                    )(scope, receive, send)
                    return
                principal = await self._authenticate(scope, receive, send)
                if principal is None:
                    return
                if not principal.is_admin:
                    await error_response(403, "permission_error", f"{method} {path} needs an admin key", path=path)(
                        scope, receive, send
                    )
                    return
            state["principal"] = principal
            await self.app(scope, receive, send)
        finally:
            _REQUEST_CONTEXT.reset(token)

    async def _authenticate(self, scope: Scope, receive: Receive, send: Send):
        """The key's principal, or None after answering 401."""
        try:
            key = _presented_key(scope)  # raises Unauthorized for two different keys
            return await run_in_threadpool(self._container.api_key_service().authenticate, key)
        except ApplicationError as exc:  # a wrong key; or e.g. the database is unavailable (outside the handlers)
            await _refuse(exc, scope, receive, send)
            return None

    def _local_cli(self, scope: Scope) -> bool:
        presented = dict(scope.get("headers") or []).get(local_admin.HEADER.encode())
        if presented is None or not _client_is_loopback(scope):
            return False
        if self._local_token is None:
            self._local_token = local_admin.ensure_token(self._container.settings().manager.home) or ""
        return local_admin.token_matches(self._local_token, presented.decode("latin-1"))


async def _refuse(exc: ApplicationError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer `exc` as the one error map says (a 401 also names the scheme to use)."""
    mapping = mapping_for(exc)
    response = error_response(mapping.status, mapping.type, str(exc), path=scope.get("path", ""))
    if mapping.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    await response(scope, receive, send)


def principal_of(request):
    """The caller of a request (the local admin when auth is off)."""
    return request.scope.get("state", {}).get("principal", LOCAL_PRINCIPAL)
