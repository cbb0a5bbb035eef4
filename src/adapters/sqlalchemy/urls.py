"""The SQLite file a database URL names, for the engine (its folder is made), the migrations and copy (a
file to back up or check) and the errors that name it. Apart from `engine.py` so that `file_guard`, which
`engine` installs, can name the file without importing the engine back."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url


def sqlite_file_path(url: object) -> Path | None:
    """The database file of a SQLite URL, or None (memory database, other dialect)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def sqlite_file_name(url: object) -> str | None:
    """`sqlite_file_path` as text, for an error's path; None also for a URL that does not parse, because
    it is asked while another error is being reported."""
    try:
        path = sqlite_file_path(url)
    except Exception:  # noqa: BLE001 - only a path for the message
        return None
    return str(path) if path is not None else None
