"""`WebSessionStore` contract: the in-memory fake and the SQLite file store behave alike; the file store
also survives a restart and keeps neither session ids nor keys readable at rest."""

from __future__ import annotations

import os
import stat

import pytest

from adapters.memory.web_sessions import InMemoryWebSessionStore
from adapters.sqlite.web_sessions import SqliteWebSessionStore
from application.identity.web_sessions import WebSession

KEY = "mlxm-sk-0123456789abcdefSECRET"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request, tmp_path):
    def make(clock: Clock, max_sessions: int = 100):
        if request.param == "memory":
            return InMemoryWebSessionStore(max_sessions=max_sessions, clock=clock)
        return SqliteWebSessionStore(tmp_path / "sessions.sqlite", max_sessions=max_sessions, clock=clock)
    return make


def _session(clock: Clock, email: str = "a@example.com", ttl: float = 3600) -> WebSession:
    return WebSession(key=KEY, csrf="csrf-token-1", email=email, is_admin=True, minted_key_id=7,
                      expires_at=clock.now + ttl)


def test_create_get_drop(make_store):
    clock = Clock()
    store = make_store(clock)
    sid = store.create(_session(clock))
    assert len(sid) >= 40
    got = store.get(sid)
    assert (got.key, got.csrf, got.email, got.is_admin, got.minted_key_id) == (KEY, "csrf-token-1", "a@example.com",
                                                                                True, 7)
    assert store.get("not-a-session") is None and store.get(None) is None and store.get("") is None
    assert store.drop(sid).key == KEY
    assert store.get(sid) is None and store.drop(sid) is None


def test_expired_sessions_are_gone(make_store):
    clock = Clock()
    store = make_store(clock)
    sid = store.create(_session(clock, ttl=60))
    clock.now += 61
    assert store.get(sid) is None


def test_the_oldest_session_makes_room(make_store):
    clock = Clock()
    store = make_store(clock, max_sessions=2)
    first = store.create(_session(clock, "1@example.com", ttl=100))
    second = store.create(_session(clock, "2@example.com", ttl=200))
    third = store.create(_session(clock, "3@example.com", ttl=300))
    assert store.get(second).email == "2@example.com" and store.get(third).email == "3@example.com"
    fresh = make_store(clock, max_sessions=2)  # the file store: what is on disk, not a memory cache
    if isinstance(fresh, SqliteWebSessionStore):
        assert fresh.get(first) is None and fresh.get(third).email == "3@example.com"
    else:
        assert store.get(first) is None


def test_file_store_survives_a_restart_and_forgets_logouts(tmp_path):
    clock = Clock()
    path = tmp_path / "sessions.sqlite"
    before = SqliteWebSessionStore(path, clock=clock)
    kept = before.create(_session(clock))
    gone = before.create(_session(clock, "b@example.com"))
    before.drop(gone)
    after = SqliteWebSessionStore(path, clock=clock)  # a new process on the same home
    assert after.get(kept).key == KEY and after.get(kept).email == "a@example.com"
    assert after.get(gone) is None
    clock.now += 7200
    assert after.get(kept) is None
    assert SqliteWebSessionStore(path, clock=clock).get(kept) is None  # deleted, not only hidden


def test_file_store_keeps_no_session_id_or_key_readable(tmp_path):
    clock = Clock()
    path = tmp_path / "sessions.sqlite"
    store = SqliteWebSessionStore(path, clock=clock)
    sid = store.create(_session(clock))
    raw = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("sessions.sqlite-*"))
    assert sid.encode() not in raw and KEY.encode() not in raw and b"csrf-token-1" not in raw
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # A cookie value that is not the session id (say, its stored hash) unseals nothing.
    import sqlite3

    digest = sqlite3.connect(path).execute("SELECT sid_hash FROM web_sessions").fetchone()[0]
    assert SqliteWebSessionStore(path, clock=clock).get(digest) is None


def test_a_damaged_file_is_replaced_not_fatal(tmp_path):
    clock = Clock()
    path = tmp_path / "sessions.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    store = SqliteWebSessionStore(path, clock=clock)
    assert store.get("whatever") is None
    sid = store.create(_session(clock))
    assert SqliteWebSessionStore(path, clock=clock).get(sid).key == KEY
