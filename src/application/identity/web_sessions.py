"""Web UI sessions: what a logged-in browser session holds, and the port that keeps them.

The browser only holds a random session id (in an HttpOnly cookie); the API key it stands for stays on the
server, in a `WebSessionStore`. Stores that outlive the process must keep neither the session id nor the key
readable at rest (see adapters/sqlite/web_sessions.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

SESSION_SECONDS = 12 * 3600


@dataclass
class WebSession:
    key: str  # the API key the session presents as `Authorization: Bearer`
    csrf: str
    email: str | None
    is_admin: bool
    minted_key_id: int | None  # a key the login created (revoked at logout)
    expires_at: float = field(default_factory=lambda: time.time() + SESSION_SECONDS)


class WebSessionStore(Protocol):
    def create(self, session: WebSession) -> str:
        """Keep `session`; returns its new random session id (the cookie's value)."""
        ...

    def get(self, sid: str | None) -> WebSession | None:
        """The live session of `sid`; None when unknown or expired (an expired one is forgotten)."""
        ...

    def drop(self, sid: str | None) -> WebSession | None:
        """Forget the session (logout); returns it if it existed."""
        ...
