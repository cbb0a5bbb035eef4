"""`SqliteWebSessionStore`: web UI sessions that survive a restart, in `<home>/sessions.sqlite` (mode 0600).

At rest the file holds neither a session id nor an API key: a row is found by the sha256 of the session id,
and the key (with the CSRF token) is sealed with Fernet under a key derived from the session id itself, so
only the browser holding the cookie can unseal it. Rows carry their expiry and expired ones are deleted.
A plain stdlib sqlite3 file, apart from the library database (like the hub search cache): sessions are
this server's, disposable, and the library database may be PostgreSQL shared by several hosts. Reads are
served from memory after the first lookup (the middleware asks on every request); writes go through.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable

from cryptography.fernet import Fernet, InvalidToken

from application.identity.web_sessions import WebSession

_SCHEMA = ("CREATE TABLE IF NOT EXISTS web_sessions (sid_hash TEXT PRIMARY KEY, sealed BLOB NOT NULL, "
           "email TEXT, is_admin INTEGER NOT NULL, minted_key_id INTEGER, expires_at REAL NOT NULL)")


def _digest(sid: str) -> str:
    return hashlib.sha256(b"mlxm-web-session-id:" + sid.encode()).hexdigest()


def _fernet(sid: str) -> Fernet:
    # A different derivation from the row key's: the stored hash says nothing about the sealing key.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"mlxm-web-session-seal:" + sid.encode()).digest()))


class SqliteWebSessionStore:
    def __init__(self, path: Path, max_sessions: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self._path = Path(path)
        self._max = max_sessions
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, WebSession] = {}

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if not self._path.exists():
            os.close(os.open(self._path, os.O_CREAT | os.O_WRONLY, 0o600))
        connection = sqlite3.connect(self._path, timeout=5)
        try:
            connection.execute(_SCHEMA)
        except sqlite3.DatabaseError:
            connection.close()
            self._path.unlink(missing_ok=True)  # only ever our own file: a damaged one logs everyone out
            os.close(os.open(self._path, os.O_CREAT | os.O_WRONLY, 0o600))
            connection = sqlite3.connect(self._path, timeout=5)
            connection.execute(_SCHEMA)
        return connection

    def create(self, session: WebSession) -> str:
        sid = secrets.token_urlsafe(32)
        sealed = _fernet(sid).encrypt(json.dumps({"key": session.key, "csrf": session.csrf}).encode())
        with self._lock:
            connection = self._connect()
            try:
                with connection:
                    connection.execute("DELETE FROM web_sessions WHERE expires_at < ?", (self._clock(),))
                    count = connection.execute("SELECT COUNT(*) FROM web_sessions").fetchone()[0]
                    if count >= self._max:  # drop the oldest rather than grow without bound
                        connection.execute(
                            "DELETE FROM web_sessions WHERE sid_hash IN (SELECT sid_hash FROM web_sessions "
                            "ORDER BY expires_at LIMIT ?)", (count - self._max + 1,))
                    connection.execute(
                        "INSERT INTO web_sessions (sid_hash, sealed, email, is_admin, minted_key_id, expires_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (_digest(sid), sealed, session.email, int(session.is_admin), session.minted_key_id,
                         session.expires_at))
            finally:
                connection.close()
            self._cache[sid] = session
        return sid

    def get(self, sid: str | None) -> WebSession | None:
        if not sid:
            return None
        with self._lock:
            session = self._cache.get(sid)
            if session is None:
                session = self._load(sid)
            if session is not None and session.expires_at < self._clock():
                self._delete(sid)
                return None
            if session is not None:
                self._cache[sid] = session
            return session

    def drop(self, sid: str | None) -> WebSession | None:
        if not sid:
            return None
        with self._lock:
            session = self._cache.get(sid) or self._load(sid)
            self._delete(sid)
            return session

    def _load(self, sid: str) -> WebSession | None:
        connection = self._connect()
        try:
            row = connection.execute(
                "SELECT sealed, email, is_admin, minted_key_id, expires_at FROM web_sessions WHERE sid_hash = ?",
                (_digest(sid),)).fetchone()
        finally:
            connection.close()
        if row is None:
            return None
        try:
            secret = json.loads(_fernet(sid).decrypt(row[0]))
        except (InvalidToken, ValueError, TypeError):
            return None
        return WebSession(key=secret["key"], csrf=secret["csrf"], email=row[1], is_admin=bool(row[2]),
                          minted_key_id=row[3], expires_at=row[4])

    def _delete(self, sid: str) -> None:
        self._cache.pop(sid, None)
        connection = self._connect()
        try:
            with connection:
                connection.execute("DELETE FROM web_sessions WHERE sid_hash = ?", (_digest(sid),))
        finally:
            connection.close()
