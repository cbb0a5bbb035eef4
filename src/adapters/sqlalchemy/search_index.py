"""The library's full-text index (SQLite FTS5), kept behind the adapter."""

from __future__ import annotations

SEARCH_INDEX_TABLE = "library_fts"


def is_search_index_table(name: str) -> bool:
    """The FTS5 virtual table and its shadow tables (`library_fts_data`, ...)."""
    return name == SEARCH_INDEX_TABLE or name.startswith(SEARCH_INDEX_TABLE + "_")
