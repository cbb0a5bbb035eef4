"""The library's full-text index, kept behind the adapter.

On SQLite it is an FTS5 table whose rowid is `models.id`; the model repository rewrites a
model's row in the same transaction as every write. Elsewhere (e.g. PostgreSQL later) a
portable LIKE scan stands in, so the rest of the adapter stays dialect-free.
"""

from __future__ import annotations

import re
from typing import Iterable

from sqlalchemy import Connection, Integer, Select, and_, column, false, or_, select, table, text
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from adapters.sqlalchemy.tables import ModelAliasRecord, ModelRecord, ModelTagRecord

SEARCH_INDEX_TABLE = "library_fts"
INDEXED_COLUMNS = ("model_id", "repo_id", "canonical_id", "aliases", "family", "model_type", "tags", "description")
MAX_QUERY_TERMS = 16

# The same token characters as FTS5's unicode61 tokenizer: letters and digits; everything
# else (quotes, dashes, '*', ':', '_', ...) separates terms, so no user input reaches FTS syntax.
_TERM = re.compile(r"[^\W_]+", re.UNICODE)

CREATE_SEARCH_INDEX_SQL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {SEARCH_INDEX_TABLE} USING fts5("
    + ", ".join(INDEXED_COLUMNS)
    + ", tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')"
)


def is_search_index_table(name: str) -> bool:
    """The FTS5 virtual table and its shadow tables (`library_fts_data`, ...)."""
    return name == SEARCH_INDEX_TABLE or name.startswith(SEARCH_INDEX_TABLE + "_")


def search_terms(user_text: str | None) -> list[str]:
    """Lower-case terms of free user input; never raises."""
    return [t.lower() for t in _TERM.findall(user_text or "")][:MAX_QUERY_TERMS]


def fts_match_expression(terms: Iterable[str]) -> str:
    """Every term as a quoted prefix query, ANDed: `"qwe"* "4"*`. Terms hold no quotes."""
    return " ".join(f'"{term}"*' for term in terms)


def uses_fts(bind) -> bool:
    return bind.dialect.name == "sqlite"


def create_search_index(connection: Connection) -> None:
    if uses_fts(connection):
        connection.execute(text(CREATE_SEARCH_INDEX_SQL))


def drop_search_index(connection: Connection) -> None:
    if uses_fts(connection):
        connection.execute(text(f"DROP TABLE IF EXISTS {SEARCH_INDEX_TABLE}"))


def rebuild_search_index(connection: Connection) -> int:
    """Re-index every model from the tables (after a migration copied data in)."""
    if not uses_fts(connection):
        return 0
    connection.execute(text(f"DELETE FROM {SEARCH_INDEX_TABLE}"))
    aliases = _grouped(connection, "model_aliases", "alias")
    tags = _grouped(connection, "model_tags", "tag")
    rows = connection.execute(
        text("SELECT id, model_id, repo_id, canonical_id, family, model_type, description FROM models")
    ).all()
    for row in rows:
        connection.execute(
            _insert_statement(),
            _document(row.id, row.model_id, row.repo_id, row.canonical_id, aliases.get(row.id, []), row.family,
                      row.model_type, tags.get(row.id, []), row.description),
        )
    return len(rows)


def _grouped(connection: Connection, table: str, column: str) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for model_pk, value in connection.execute(text(f"SELECT model_pk, {column} FROM {table} ORDER BY position")):
        grouped.setdefault(model_pk, []).append(value)
    return grouped


def _insert_statement():
    columns = ", ".join(("rowid",) + INDEXED_COLUMNS)
    values = ", ".join(":" + c for c in ("rowid",) + INDEXED_COLUMNS)
    return text(f"INSERT INTO {SEARCH_INDEX_TABLE} ({columns}) VALUES ({values})")


def _document(pk, model_id, repo_id, canonical_id, aliases, family, model_type, tags, description) -> dict:
    return {
        "rowid": pk,
        "model_id": model_id or "",
        "repo_id": repo_id or "",
        "canonical_id": canonical_id or "",
        "aliases": " ".join(aliases),
        "family": family or "",
        "model_type": model_type or "",
        "tags": " ".join(tags),
        "description": description or "",
    }


class LibrarySearchIndex:
    """Writes and queries the index within the caller's session (hence its transaction)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._fts = uses_fts(session.get_bind())

    def index(self, record: ModelRecord) -> None:
        if not self._fts:
            return
        self.unindex(record.id)
        self._session.execute(
            _insert_statement(),
            _document(record.id, record.model_id, record.repo_id, record.canonical_id,
                      [a.alias for a in record.aliases], record.family, record.model_type,
                      [t.tag for t in record.tags], record.description),
        )

    def unindex(self, model_pk: int) -> None:
        if self._fts:
            self._session.execute(text(f"DELETE FROM {SEARCH_INDEX_TABLE} WHERE rowid = :pk"), {"pk": model_pk})

    def page_without_filters(self, user_text: str | None, limit: int, offset: int) -> tuple[int, list[int]] | None:
        """(total, model ids) of a text-only search straight from the index, in id order.

        None when the index cannot answer alone (no terms, or no FTS on this database).
        """
        terms = search_terms(user_text)
        if not terms or not self._fts:
            return None
        params = {"q": fts_match_expression(terms), "limit": limit, "offset": offset}
        total = self._session.execute(
            text(f"SELECT COUNT(*) FROM {SEARCH_INDEX_TABLE} WHERE {SEARCH_INDEX_TABLE} MATCH :q"), params
        ).scalar_one()
        ids = self._session.execute(
            text(f"SELECT rowid FROM {SEARCH_INDEX_TABLE} WHERE {SEARCH_INDEX_TABLE} MATCH :q "
                 "ORDER BY rowid LIMIT :limit OFFSET :offset"), params
        ).scalars().all()
        return total, list(ids)

    def restrict(self, statement: Select, user_text: str | None) -> tuple[Select, ColumnElement] | None:
        """`statement` (a select over `models`) narrowed to the text's matches, with the column to
        order by (the same model ids); None when the text has no terms."""
        terms = search_terms(user_text)
        if not terms:
            return None
        models_id = ModelRecord.__table__.c.id
        if self._fts:
            # Driven by the index: its matches join models, then the caller's filters apply. Ordering
            # by the index's rowid (= models.id) lets SQLite stop after one page instead of sorting.
            narrowed = statement.join(_FTS, _FTS.c.rowid == models_id).where(
                _FTS.c[SEARCH_INDEX_TABLE].op("MATCH")(fts_match_expression(terms))
            )
            return narrowed, _FTS.c.rowid
        return statement.where(and_(*(self._like_term(term) for term in terms))), models_id

    @staticmethod
    def _like_term(term: str) -> ColumnElement[bool]:
        # Portable fallback: substring match over the same fields (terms carry no LIKE wildcards).
        pattern = f"%{term}%"
        columns = [ModelRecord.model_id, ModelRecord.repo_id, ModelRecord.canonical_id, ModelRecord.family,
                   ModelRecord.model_type, ModelRecord.description]
        return or_(
            false(),
            *(c.ilike(pattern) for c in columns),
            ModelRecord.id.in_(select(ModelAliasRecord.model_pk).where(ModelAliasRecord.alias_key.like(pattern))),
            ModelRecord.id.in_(select(ModelTagRecord.model_pk).where(ModelTagRecord.tag.ilike(pattern))),
        )


# The FTS5 table as Core sees it: its rowid (= models.id) and the hidden column named like the table.
_FTS = table(SEARCH_INDEX_TABLE, column("rowid", Integer), column(SEARCH_INDEX_TABLE))
