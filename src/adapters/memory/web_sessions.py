"""`InMemoryWebSessionStore`: web UI sessions in a dict (a restart logs everyone out). Tests and `--no-persist` use."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Callable

from application.identity.web_sessions import WebSession


class InMemoryWebSessionStore:
    def __init__(self, max_sessions: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self._sessions: dict[str, WebSession] = {}
        self._lock = threading.Lock()
        self._max = max_sessions
        self._clock = clock

    def create(self, session: WebSession) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            for old in [k for k, s in self._sessions.items() if s.expires_at < now]:
                del self._sessions[old]
            if len(self._sessions) >= self._max:  # drop the oldest rather than grow without bound
                del self._sessions[min(self._sessions, key=lambda k: self._sessions[k].expires_at)]
            self._sessions[sid] = session
        return sid

    def get(self, sid: str | None) -> WebSession | None:
        if not sid:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and session.expires_at < self._clock():
                del self._sessions[sid]
                return None
            return session

    def drop(self, sid: str | None) -> WebSession | None:
        with self._lock:
            return self._sessions.pop(sid, None) if sid else None
