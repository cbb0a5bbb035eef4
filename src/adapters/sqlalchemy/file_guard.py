"""A SQLite database file that vanished, was replaced or is damaged makes requests fail with 503.

SQLite keeps working on a deleted file through the connections that have it open: writes "succeed"
into an unlinked inode and are gone at restart. So every pool checkout compares the file's identity
(device, inode) with the one the engine first opened; once it differs, every later checkout fails
(until restart: a new empty file in its place is not the user's database either). A damaged file
("database disk image is malformed", "file is not a database") is turned into the same 503, with
SQLite's reason, by `translate_damage`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.exc import DatabaseError as SqlDatabaseError

from application.errors import Unavailable

_DAMAGE_MARKERS = ("malformed", "not a database", "file is encrypted", "disk i/o error")


class DatabaseGone(Unavailable):
    """The database file is not the one the server opened (deleted or replaced): 503 until restart."""


class DatabaseDamaged(Unavailable):
    """SQLite reports the database file as damaged: 503 with its reason."""


class DatabaseFileGuard:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._identity: tuple[int, int] | None = None
        self._problem: str | None = None
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return None
        return info.st_dev, info.st_ino

    def on_connect(self, *_args) -> None:
        with self._lock:
            if self._identity is None and self._problem is None:
                self._identity = self._stat()

    def on_checkout(self, *_args) -> None:
        if self._problem is None and self._identity is not None:
            current = self._stat()
            if current != self._identity:
                with self._lock:
                    what = "was deleted" if current is None else "was replaced by another file"
                    self._problem = (f"the database file {self.path} {what} while the server ran; "
                                     "restart mlxm (nothing is written until then)")
        if self._problem is not None:
            raise DatabaseGone(self._problem)


def install_file_guard(engine: Engine, path: Path) -> DatabaseFileGuard:
    guard = DatabaseFileGuard(path)
    event.listen(engine, "connect", guard.on_connect)
    event.listen(engine, "checkout", guard.on_checkout)
    return guard


def translate_damage(exc: BaseException) -> None:
    """Raise DatabaseDamaged for a SQLAlchemy error that reports a damaged file; return otherwise."""
    if isinstance(exc, SqlDatabaseError):
        reason = str(getattr(exc, "orig", exc))
        if any(marker in reason.lower() for marker in _DAMAGE_MARKERS):
            raise DatabaseDamaged(f"the database is damaged ({reason}); restore it from a backup "
                                  "(mlxm keeps mlxm.db.before-*.bak copies from upgrades)") from exc
