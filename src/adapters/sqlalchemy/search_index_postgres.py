"""The library's full-text index on PostgreSQL: one `tsvector` per model behind a GIN index.

Same semantics as the SQLite FTS5 index (search_index.py): letters-and-digits terms, each one a
word PREFIX (`qwe` finds `qwen2`, `wen` does not), all terms must match, case and diacritics
folded; filters are exact facet tokens in the same document, so a filtered page and its total
come from the index alone, before LIMIT/OFFSET.

Why lexemes are built here rather than with `to_tsvector`: PostgreSQL's parser has its own idea
of a word (`Qwen2.5-7B` becomes a version number and a hyphenated word, `a/b` a file path), which
would change what matches. `array_to_tsvector` stores the lexemes exactly as this module makes
them with the same tokenizer as the SQLite side, and queries are tsquery literals of the same
lexemes (`'qwe':* & '~typetextgen'`). Facet tokens start with `~`, which no text token can
contain, so a term never prefix-matches a filter token.

The rows are written by the model repository in the caller's session: same transaction as the
models rows.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

TABLE = "library_fts"  # the same name as the SQLite index: migrations and env.py treat both alike
FACET_PREFIX = "~"
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

CREATE_SQL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "rowid BIGINT PRIMARY KEY REFERENCES models (id) ON DELETE CASCADE, "
    "document TSVECTOR NOT NULL)",
    # fastupdate off: a write lands in the index at once instead of a pending list that every
    # search then scans (the library is read far more often than written).
    f"CREATE INDEX IF NOT EXISTS {TABLE}_document ON {TABLE} USING GIN (document) WITH (fastupdate = off)",
)
DROP_SQL = f"DROP TABLE IF EXISTS {TABLE}"
_UPSERT = text(
    f"INSERT INTO {TABLE} (rowid, document) VALUES (:rowid, array_to_tsvector(CAST(:lexemes AS TEXT[]))) "
    "ON CONFLICT (rowid) DO UPDATE SET document = EXCLUDED.document"
)
_DELETE = text(f"DELETE FROM {TABLE} WHERE rowid = :pk")
_COUNT = text(f"SELECT COUNT(*) FROM {TABLE} WHERE document @@ CAST(:q AS TSQUERY)")
_PAGE = text(
    f"SELECT rowid FROM {TABLE} WHERE document @@ CAST(:q AS TSQUERY) ORDER BY rowid LIMIT :limit OFFSET :offset"
)


# PostgreSQL's lexemes hold at most 2046 bytes: a longer tsquery word is an error ("word is too long in
# tsquery": a 500 for a long search) and `array_to_tsvector` silently mangles a longer word (its length
# wraps around). Both sides keep a word's first 2046 bytes; a term is a prefix, so it still finds its word.
MAX_LEXEME_BYTES = 2046


def _fit(token: str) -> str:
    raw = token.encode()
    return token if len(raw) <= MAX_LEXEME_BYTES else raw[:MAX_LEXEME_BYTES].decode(errors="ignore")


def fold(value: str) -> str:
    """Lower case without diacritics (`Café` -> `cafe`), as FTS5's unicode61 remove_diacritics does."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def tokens(value: str | None) -> list[str]:
    return _TOKEN.findall(fold(value or ""))


def lexemes(document: dict, text_columns: Iterable[str]) -> list[str]:
    """Every text token of the model's document, plus its facet tokens marked with `~`."""
    words = {_fit(token) for column in text_columns for token in tokens(document.get(column))}
    words.update(FACET_PREFIX + facet for facet in document["facets"].split())
    return sorted(words)


def tsquery(terms: Iterable[str], facets: Iterable[str]) -> str:
    """`'qwe':* & '4':* & '~captools'`: terms are prefixes, facets exact. Lexemes are letters and
    digits (plus the `~` marker) only, so quoting cannot be broken by user input."""
    parts = [f"'{_fit(token)}':*" for term in terms for token in tokens(term)]
    parts += [f"'{FACET_PREFIX}{facet}'" for facet in facets]
    return " & ".join(parts)


def create(connection: Connection) -> None:
    for statement in CREATE_SQL:
        connection.execute(text(statement))


def drop(connection: Connection) -> None:
    connection.execute(text(DROP_SQL))


def write_all(connection: Connection, documents: list[dict], text_columns: Iterable[str]) -> None:
    connection.execute(text(f"DELETE FROM {TABLE}"))
    columns = tuple(text_columns)
    if documents:
        connection.execute(_UPSERT, [{"rowid": d["rowid"], "lexemes": lexemes(d, columns)} for d in documents])


class PostgresSearchIndex:
    """The tsvector index within the caller's session."""

    def __init__(self, session: Session, text_columns: Iterable[str]) -> None:
        self._session = session
        self._columns = tuple(text_columns)

    def index(self, document: dict) -> None:
        self._session.execute(_UPSERT, {"rowid": document["rowid"], "lexemes": lexemes(document, self._columns)})

    def unindex(self, model_pk: int) -> None:
        self._session.execute(_DELETE, {"pk": model_pk})

    def page(self, terms: list[str], facets: list[str], limit: int, offset: int) -> tuple[int, list[int]]:
        query = tsquery(terms, facets)
        if not query:  # terms that fold to nothing (e.g. only combining marks): nothing can match
            return 0, []
        total = self._session.execute(_COUNT, {"q": query}).scalar_one()
        if total == 0 or offset >= total:
            return total, []
        ids = self._session.execute(_PAGE, {"q": query, "limit": limit, "offset": offset}).scalars().all()
        return total, list(ids)
