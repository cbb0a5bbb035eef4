"""The library's full-text index, kept behind the adapter.

On SQLite it is an FTS5 table whose rowid is `models.id`; on PostgreSQL a tsvector table with a
GIN index (search_index_postgres.py), same semantics. The model repository rewrites a model's
row in the same transaction as every write. On any other database a portable LIKE scan stands
in, so the rest of the adapter stays dialect-free.
"""

from __future__ import annotations

import re
from typing import Iterable

from sqlalchemy import Connection, Select, and_, false, or_, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from adapters.sqlalchemy.tables import ModelAliasRecord, ModelRecord, ModelTagRecord

SEARCH_INDEX_TABLE = "library_fts"
# Columns users search; `facets` holds filter tokens (type, status, capabilities) that only
# filters match, so a filtered text search is answered by the index alone.
TEXT_COLUMNS = ("model_id", "repo_id", "canonical_id", "aliases", "family", "model_type", "tags", "description")
INDEXED_COLUMNS = TEXT_COLUMNS + ("facets",)
MAX_QUERY_TERMS = 16

# Capability filter name -> (subclass table, boolean column) pairs that say yes to it.
CAPABILITY_FLAGS: dict[str, tuple[tuple[str, str], ...]] = {
    "tools": (("text_gen_capabilities", "supports_native_tools"), ("vision_capabilities", "supports_native_tools")),
    "thinking": (("text_gen_capabilities", "supports_thinking"), ("vision_capabilities", "supports_thinking")),
    "multi_image": (("vision_capabilities", "supports_multi_image"),),
    "video": (("vision_capabilities", "supports_video"),),
    "tts": (("audio_capabilities", "supports_tts"),),
    "stt": (("audio_capabilities", "supports_stt"),),
    "normalized": (("embedding_capabilities", "is_normalized"),),
}

# The same token characters as FTS5's unicode61 tokenizer: letters and digits; everything
# else (quotes, dashes, '*', ':', '_', ...) separates terms, so no user input reaches FTS syntax.
_TERM = re.compile(r"[^\W_]+", re.UNICODE)
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")

CREATE_SEARCH_INDEX_SQL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {SEARCH_INDEX_TABLE} USING fts5("
    + ", ".join(INDEXED_COLUMNS)
    # Prefix indexes for 1-6 characters: a typed prefix (`qwe`, `instr`) reads one doclist instead
    # of merging the doclists of every token it starts (measured 2-5x faster on multi-term queries).
    # detail=column: queries are single-token prefixes and column filters, never phrases, so token
    # positions are not needed; the index is ~45% smaller and ~2x faster to query.
    + ", tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3 4 5 6', detail = column)"
)


def is_search_index_table(name: str) -> bool:
    """The FTS5 virtual table and its shadow tables (`library_fts_data`, ...)."""
    return name == SEARCH_INDEX_TABLE or name.startswith(SEARCH_INDEX_TABLE + "_")


def search_terms(user_text: str | None) -> list[str]:
    """Lower-case terms of free user input; never raises."""
    return [t.lower() for t in _TERM.findall(user_text or "")][:MAX_QUERY_TERMS]


def facet_token(kind: str, value: str) -> str:
    """One alphanumeric token per filter value, e.g. `typetextgen`, `statuspaused`, `captools`."""
    return kind + _NOT_ALNUM.sub("", str(value).lower())


def fts_match_expression(terms: Iterable[str], facets: Iterable[str] = ()) -> str:
    """Terms as quoted prefix queries over the text columns, ANDed with exact facet tokens.

    `{model_id ...} : ("qwe"* "4"*) AND facets : (typetextgen captools)`; without terms, only
    `facets : (...)`. Terms and facets are letters and digits only, so they cannot carry FTS syntax.
    """
    terms, facets = list(terms), list(facets)
    parts = []
    if terms:
        parts.append("{" + " ".join(TEXT_COLUMNS) + "} : (" + " ".join(f'"{term}"*' for term in terms) + ")")
    if facets:
        parts.append("facets : (" + " ".join(facets) + ")")
    return " AND ".join(parts)


def uses_fts(bind) -> bool:
    return bind.dialect.name == "sqlite"


def uses_tsvector(bind) -> bool:
    return bind.dialect.name == "postgresql"


def create_search_index(connection: Connection) -> None:
    if uses_fts(connection):
        connection.execute(text(CREATE_SEARCH_INDEX_SQL))
    elif uses_tsvector(connection):
        from adapters.sqlalchemy import search_index_postgres

        search_index_postgres.create(connection)


def drop_search_index(connection: Connection) -> None:
    if uses_fts(connection):
        connection.execute(text(f"DROP TABLE IF EXISTS {SEARCH_INDEX_TABLE}"))
    elif uses_tsvector(connection):
        from adapters.sqlalchemy import search_index_postgres

        search_index_postgres.drop(connection)


def search_index_columns(connection: Connection) -> list[str] | None:
    """The index table's columns as the database has them; None when it does not exist."""
    rows = connection.exec_driver_sql(f"PRAGMA table_info({SEARCH_INDEX_TABLE})").all()
    return [row[1] for row in rows] or None


def ensure_search_index_shape(engine) -> bool:
    """Rebuild the index when its columns are not today's (an old dev database at head); True if rebuilt.

    The index is derived data: it is dropped, created and refilled from the models tables in one
    transaction, so a failure leaves the old index (and the tables) untouched.
    """
    if not uses_fts(engine):
        return False
    with engine.connect() as connection:
        tables = {row[0] for row in connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
        if "models" not in tables or search_index_columns(connection) == list(INDEXED_COLUMNS):
            return False
        connection.rollback()
        # pysqlite never BEGINs before DDL by itself: take the write lock so drop + create + refill is one unit.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        if search_index_columns(connection) == list(INDEXED_COLUMNS):  # another process rebuilt it meanwhile
            connection.rollback()
            return False
        drop_search_index(connection)
        create_search_index(connection)
        rebuild_search_index(connection)
        connection.commit()
        return True


def rebuild_search_index(connection: Connection) -> int:
    """Re-index every model from the tables (after a migration copied data in)."""
    if not (uses_fts(connection) or uses_tsvector(connection)):
        return 0
    aliases = _grouped(connection, "model_aliases", "alias")
    tags = _grouped(connection, "model_tags", "tag")
    capabilities: dict[int, set[str]] = {}
    for capability, flags in CAPABILITY_FLAGS.items():
        for table_name, flag in flags:
            # The capabilities join: base row + subclass row whose flag is true.
            joined = connection.execute(text(
                f"SELECT mc.model_pk FROM model_capabilities mc JOIN {table_name} sub ON sub.id = mc.id "
                f"WHERE sub.{flag} IS TRUE"
            ))
            for (model_pk,) in joined:
                capabilities.setdefault(model_pk, set()).add(capability)
    rows = connection.execute(
        text("SELECT id, model_id, repo_id, canonical_id, family, model_type, description, status FROM models")
    ).all()
    documents = [
        _document(row.id, row.model_id, row.repo_id, row.canonical_id, aliases.get(row.id, []), row.family,
                  row.model_type, tags.get(row.id, []), row.description,
                  _facets(row.model_type, row.status, capabilities.get(row.id, ())))
        for row in rows
    ]
    if uses_tsvector(connection):
        from adapters.sqlalchemy import search_index_postgres

        search_index_postgres.write_all(connection, documents, TEXT_COLUMNS)
        return len(rows)
    connection.execute(text(f"DELETE FROM {SEARCH_INDEX_TABLE}"))
    if documents:
        connection.execute(_insert_statement(), documents)
    return len(rows)


def _facets(model_type: str | None, status: str | None, capabilities: Iterable[str]) -> str:
    tokens = [facet_token("type", model_type or "none"), facet_token("status", status or "none")]
    tokens += [facet_token("cap", name) for name in sorted(capabilities)]
    return " ".join(tokens)


def record_capabilities(record: ModelRecord) -> list[str]:
    """Capability names the model's capabilities row (its subclass) says yes to."""
    capability_row = record.capabilities
    if capability_row is None:
        return []
    table_name = capability_row.__tablename__
    return [
        name for name, flags in CAPABILITY_FLAGS.items()
        if any(t == table_name and getattr(capability_row, flag, None) is True for t, flag in flags)
    ]


def _grouped(connection: Connection, table: str, column: str) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for model_pk, value in connection.execute(text(f"SELECT model_pk, {column} FROM {table} ORDER BY position")):
        grouped.setdefault(model_pk, []).append(value)
    return grouped


def _insert_statement():
    columns = ", ".join(("rowid",) + INDEXED_COLUMNS)
    values = ", ".join(":" + c for c in ("rowid",) + INDEXED_COLUMNS)
    return text(f"INSERT INTO {SEARCH_INDEX_TABLE} ({columns}) VALUES ({values})")


def _document(pk, model_id, repo_id, canonical_id, aliases, family, model_type, tags, description, facets) -> dict:
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
        "facets": facets,
    }


class LibrarySearchIndex:
    """Writes and queries the index within the caller's session (hence its transaction)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        bind = session.get_bind()
        self._fts = uses_fts(bind)
        self._tsvector = None
        if uses_tsvector(bind):
            from adapters.sqlalchemy.search_index_postgres import PostgresSearchIndex

            self._tsvector = PostgresSearchIndex(session, TEXT_COLUMNS)

    def index(self, record: ModelRecord) -> None:
        """(Re)write the model's row: text columns plus facets from its type, status and capabilities."""
        if not (self._fts or self._tsvector):
            return
        document = _document(record.id, record.model_id, record.repo_id, record.canonical_id,
                             [a.alias for a in record.aliases], record.family, record.model_type,
                             [t.tag for t in record.tags], record.description,
                             _facets(record.model_type, record.status, record_capabilities(record)))
        if self._tsvector is not None:
            self._tsvector.index(document)
            return
        self.unindex(record.id)
        self._session.execute(_insert_statement(), document)

    def unindex(self, model_pk: int) -> None:
        if self._tsvector is not None:
            self._tsvector.unindex(model_pk)
        elif self._fts:
            self._session.execute(text(f"DELETE FROM {SEARCH_INDEX_TABLE} WHERE rowid = :pk"), {"pk": model_pk})

    def page(self, user_text: str | None, facets: list[str], limit: int, offset: int) -> tuple[int, list[int]] | None:
        """(total, model ids) of a text search and/or filters, answered by the index alone, in id order.

        Filters without text are answered here too: counting a facet's doclist is several times
        cheaper than counting the models/capabilities join. None when the index cannot answer
        (neither terms nor facets, or no FTS on this database): the caller then uses plain SQL.
        """
        terms = search_terms(user_text)
        if not (terms or facets):
            return None
        if self._tsvector is not None:
            return self._tsvector.page(terms, facets, limit, offset)
        if not self._fts:
            return None
        params = {"q": fts_match_expression(terms, facets), "limit": limit, "offset": offset}
        total = self._session.execute(
            text(f"SELECT COUNT(*) FROM {SEARCH_INDEX_TABLE} WHERE {SEARCH_INDEX_TABLE} MATCH :q"), params
        ).scalar_one()
        ids = self._session.execute(
            text(f"SELECT rowid FROM {SEARCH_INDEX_TABLE} WHERE {SEARCH_INDEX_TABLE} MATCH :q "
                 "ORDER BY rowid LIMIT :limit OFFSET :offset"), params
        ).scalars().all()
        return total, list(ids)

    def restrict(self, statement: Select, user_text: str | None) -> tuple[Select, ColumnElement] | None:
        """Without FTS: `statement` (over `models`) narrowed by a portable LIKE per term, with the
        column to order by; None when the text has no terms. (With FTS, `page` answers instead.)"""
        terms = search_terms(user_text)
        if not terms:
            return None
        return statement.where(and_(*(self._like_term(term) for term in terms))), ModelRecord.__table__.c.id

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
