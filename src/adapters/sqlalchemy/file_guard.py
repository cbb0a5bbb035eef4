"""A SQLite database file that vanished, was replaced or is damaged makes requests fail with 503.

SQLite keeps working on a deleted file through the connections that have it open: writes "succeed"
into an unlinked inode and are gone at restart. So every pool checkout compares the file's identity
(device, inode) with the one the engine first opened; once it differs, every later checkout fails
(until restart: a new empty file in its place is not the user's database either). A damaged file
("database disk image is malformed", "file is not a database") is turned into the same 503, with
SQLite's reason, by `translate_damage`; so is a file that cannot be opened at all (a folder in its place,
a read-only folder, a symlink loop), a database locked past the busy timeout, or a server that refuses the
connection: each a one-line "unavailable" naming the database, never an internal error.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.exc import DatabaseError as SqlDatabaseError, OperationalError as SqlOperationalError

from adapters.sqlalchemy.urls import sqlite_file_name
from application.errors import OutOfSpace, Unavailable

_DAMAGE_MARKERS = ("malformed", "not a database", "file is encrypted", "disk i/o error")
# psycopg's words for a server it could not reach (refused, unknown host, timed out, authentication)
_CONNECT_MARKERS = ("connection failed", "could not connect", "connection refused", "connection timeout expired")


class DatabaseGone(Unavailable):
    """The database file is not the one the server opened (deleted or replaced): 503 until restart."""


class DatabaseDamaged(Unavailable):
    """SQLite reports the database file as damaged: 503 with its reason."""


class DatabaseUnreachable(Unavailable):
    """The database cannot be opened or used right now (no file access, locked, server unreachable)."""


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


def translate_damage(exc: BaseException, url: object = None) -> None:
    """Raise DatabaseDamaged for a SQLAlchemy error that reports a damaged file, DatabaseUnreachable for one
    that could not open or lock the database, OutOfSpace for a full disk (`url`, an engine URL, names it);
    return otherwise."""
    if not isinstance(exc, SqlDatabaseError):
        return
    reason = " ".join(str(getattr(exc, "orig", exc)).split())
    lowered = reason.lower()
    where = describe_database(url)
    if is_disk_full(exc, url):  # before the damage markers: a full disk may read "disk I/O error"
        raise OutOfSpace(f"the database{where} cannot grow: no space left on device; nothing of this change "
                         "was written", path=sqlite_file_name(url), server=is_server(url)) from exc
    if any(marker in lowered for marker in _DAMAGE_MARKERS):
        raise DatabaseDamaged(f"the database is damaged ({reason}); restore it from a backup "
                              "(mlxm keeps mlxm.db.before-*.bak copies from upgrades)") from exc
    if not isinstance(exc, SqlOperationalError):
        return
    if "unable to open database file" in lowered:
        raise DatabaseUnreachable(f"cannot open the database{where} ({reason}): it must be a file that can be "
                                  "read and written, in a folder that can be written") from exc
    if "database is locked" in lowered:  # after the engine's busy timeout
        raise DatabaseUnreachable(f"the database{where} is locked by another process; "
                                  "try again when it is done") from exc
    if any(marker in lowered for marker in _CONNECT_MARKERS):
        raise DatabaseUnreachable(f"cannot connect to the database{where}: {reason}") from exc


# Less free than this beside the database file, at the moment a write failed, is a full disk: SQLite grows
# its file, journal or WAL by pages (4 KiB by default) and a transaction by many of them.
ROOM_TO_WRITE = 1 << 20


PG_DISK_FULL = "53100"  # PostgreSQL's SQLSTATE disk_full


def is_disk_full(exc: BaseException, url: object = None) -> bool:
    """SQLite's SQLITE_FULL ("database or disk is full"), or its SQLITE_IOERR ("disk I/O error") while the disk
    under the database file (`url`) has next to nothing free: SQLite reports a full disk that way when the
    journal or WAL cannot grow (and for any failed write but ENOSPC, so a disk with room stays "damaged");
    or PostgreSQL's disk_full."""
    if not isinstance(exc, SqlOperationalError):
        return False
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) == PG_DISK_FULL:  # psycopg's DiskFull: the server's disk
        return True
    reason = str(orig).lower()
    if "database or disk is full" in reason:
        return True
    return "disk i/o error" in reason and _folder_nearly_full(sqlite_file_name(url))


def _folder_nearly_full(database: str | None) -> bool:
    if not database or database == ":memory:" or database.startswith("file:"):
        return False  # no file of its own on a disk (or a URI filename this check does not parse)
    try:
        return _free_bytes(os.path.dirname(os.path.abspath(database))) < ROOM_TO_WRITE
    except OSError:  # the folder is gone or unreadable: no evidence of a full disk
        return False


def _free_bytes(folder: str) -> int:
    return shutil.disk_usage(folder).free  # what an unprivileged writer may still use (f_bavail)


def is_server(url: object) -> bool:
    """`url` names a database server (PostgreSQL), not a SQLite file on this machine."""
    from sqlalchemy.engine import make_url

    try:
        return url is not None and make_url(url).get_backend_name() != "sqlite"
    except Exception:  # noqa: BLE001 - unknown: not a server
        return False


def describe_database(url: object) -> str:
    """' <file>' for a SQLite file, ' <url without password>' for a server, '' when unknown."""
    if url is None:
        return ""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - only a name for the message
        return ""
    if parsed.get_backend_name() == "sqlite":
        return f" {parsed.database}" if parsed.database else ""
    return " " + parsed.render_as_string(hide_password=True)
