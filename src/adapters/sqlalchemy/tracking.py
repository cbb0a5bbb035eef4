"""Plumbing shared by the SQLAlchemy repositories: change tracking of handed-out objects, flush, child-row sync.

SQLAlchemy repositories: collections over one session. They flush, never commit.

Records are mapped to and from the domain dataclasses here. Domain objects handed out are
tracked (with a snapshot): when the unit of work commits, every tracked object that changed
is written back, so "get, mutate, commit" works as it does with the in-memory fakes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Generic, Iterable, TypeVar

from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from application.errors import Conflict


T = TypeVar("T")


def _flush(session: Session) -> None:
    """Flush; a broken constraint (e.g. a duplicate unique name) becomes a `Conflict` users can act on.

    No rollback here: the unit of work owns the transaction and rolls it back as a whole.
    """
    try:
        session.flush()
    except SqlIntegrityError as exc:
        raise Conflict(f"conflicts with stored data: {exc.orig}") from exc


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _Tracker(Generic[T]):
    """Domain objects handed out in this unit of work, keyed by primary key.

    The snapshot is the object's repr: dataclass reprs show every value (nested ones too),
    and taking one costs a fraction of a deepcopy, which matters for pages of search results.
    """

    def __init__(self) -> None:
        self._items: dict[object, tuple[T, str]] = {}

    def track(self, key: object, obj: T) -> T:
        existing = self._items.get(key)
        if existing is not None:
            return existing[0]
        self._items[key] = (obj, repr(obj))
        return obj

    def retrack(self, key: object, obj: T) -> None:
        self._items[key] = (obj, repr(obj))

    def forget(self, key: object) -> None:
        self._items.pop(key, None)

    def changed(self) -> list[T]:
        return [obj for obj, snapshot in list(self._items.values()) if repr(obj) != snapshot]


def _sync_children(current: list, wanted_keys: list, child_key: Callable, build: Callable, update: Callable) -> list:
    """Keep child rows whose key stays, update them, drop the rest, add new ones.

    Rewriting in place avoids delete-then-insert of the same unique key inside one flush.
    """
    by_key = {child_key(child): child for child in current}
    result = []
    for position, key in enumerate(wanted_keys):
        child = by_key.pop(key, None)
        if child is None:
            child = build(key)
        update(child, key, position)
        result.append(child)
    return result


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
    return list(seen)
