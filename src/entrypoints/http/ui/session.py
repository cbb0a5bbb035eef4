"""Web UI sessions: an HttpOnly, SameSite=Strict cookie standing in for the API key, plus CSRF.

The browser never holds an API key. Logging in (with a key, or email + password, which mints a
key through the same `ApiKeyService.login` as `POST /api/auth/login`) stores the key server-side
under a random session id; the cookie carries only that id. `UiSessionMiddleware` turns a valid
session cookie into `Authorization: Bearer <key>` for the API's own auth middleware, so the UI
passes exactly the checks an API client does. A state-changing request that rides on the cookie
must also carry the session's CSRF token in `X-CSRF-Token` (the page embeds it); the cookie alone
is never enough. Sessions are kept by a `WebSessionStore` (the container's: `<home>/sessions.sqlite`, so a
restart keeps everyone logged in; at rest only hashed session ids and keys sealed under them).
"""

from __future__ import annotations

import hmac
import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

from application.identity.web_sessions import SESSION_SECONDS, WebSession, WebSessionStore
from entrypoints.http.errors import error_response

UiSession = WebSession
COOKIE = "mlxm_session"
CSRF_HEADER = b"x-csrf-token"
__all__ = ["COOKIE", "SESSION_SECONDS", "UiSession", "UiSessionMiddleware", "new_csrf", "session_id_of"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def session_id_of(scope: Scope) -> str | None:
    headers = dict(scope.get("headers") or [])
    raw = headers.get(b"cookie", b"").decode("latin-1")
    for part in raw.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value or None
    return None


class UiSessionMiddleware:
    """Pure ASGI, outside the API-key middleware: cookie session -> bearer key, with a CSRF check."""

    def __init__(self, app: ASGIApp, store: WebSessionStore) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = list(scope.get("headers") or [])
        has_authorization = any(name == b"authorization" for name, _ in headers)
        session = None if has_authorization else self.store.get(session_id_of(scope))
        if session is not None:
            if scope.get("method", "GET") not in SAFE_METHODS:
                presented = dict(headers).get(CSRF_HEADER, b"").decode("latin-1")
                if not presented or not hmac.compare_digest(presented, session.csrf):
                    await error_response(403, "csrf_error", "missing or wrong X-CSRF-Token for this session")(
                        scope, receive, send)
                    return
            scope = dict(scope)
            scope["headers"] = [*headers, (b"authorization", f"Bearer {session.key}".encode("latin-1"))]
            scope.setdefault("state", {})["ui_session"] = session
        await self.app(scope, receive, send)
