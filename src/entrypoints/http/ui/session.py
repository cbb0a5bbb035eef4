"""Web UI sessions: an HttpOnly, SameSite=Strict cookie standing in for the API key, plus CSRF.

The browser never holds an API key. Logging in (with a key, or email + password, which mints a
key through the same `ApiKeyService.login` as `POST /api/auth/login`) stores the key server-side
under a random session id; the cookie carries only that id. `UiSessionMiddleware` turns a valid
session cookie into `Authorization: Bearer <key>` for the API's own auth middleware, so the UI
passes exactly the checks an API client does. A state-changing request that rides on the cookie
must also carry the session's CSRF token in `X-CSRF-Token` (the page embeds it); the cookie alone
is never enough. Sessions live in memory: a server restart logs everyone out (by design).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from entrypoints.http.errors import error_response

COOKIE = "mlxm_session"
CSRF_HEADER = b"x-csrf-token"
SESSION_SECONDS = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class UiSession:
    key: str
    csrf: str
    email: str | None
    is_admin: bool
    minted_key_id: int | None  # a key the login created (revoked at logout)
    expires_at: float = field(default_factory=lambda: time.time() + SESSION_SECONDS)


class SessionStore:
    def __init__(self, max_sessions: int = 10_000) -> None:
        self._sessions: dict[str, UiSession] = {}
        self._lock = threading.Lock()
        self._max = max_sessions

    def create(self, session: UiSession) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            for old in [k for k, s in self._sessions.items() if s.expires_at < now]:
                del self._sessions[old]
            if len(self._sessions) >= self._max:  # drop the oldest rather than grow without bound
                del self._sessions[min(self._sessions, key=lambda k: self._sessions[k].expires_at)]
            self._sessions[sid] = session
        return sid

    def get(self, sid: str | None) -> UiSession | None:
        if not sid:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and session.expires_at < time.time():
                del self._sessions[sid]
                return None
            return session

    def drop(self, sid: str | None) -> UiSession | None:
        with self._lock:
            return self._sessions.pop(sid, None) if sid else None


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

    def __init__(self, app: ASGIApp, store: SessionStore) -> None:
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
