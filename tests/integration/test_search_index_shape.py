"""An old dev database at head whose FTS index has an older shape is re-indexed on open (issue 6)."""

import sqlite3

from adapters.sqlalchemy.database import open_database
from adapters.sqlalchemy.search_index import INDEXED_COLUMNS, SEARCH_INDEX_TABLE
from adapters.sqlalchemy.unit_of_work import sqlalchemy_uow_factory
from application.library.ports import ModelQuery
from domain.enums import ModelType
from domain.library.models import Model


def _columns(path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[1] for row in db.execute(f"PRAGMA table_info({SEARCH_INDEX_TABLE})")]


def test_an_index_of_an_older_shape_is_rebuilt_from_the_tables_on_open(tmp_path):
    path = tmp_path / "mlxm.db"
    url = f"sqlite:///{path}"
    engine = open_database(url)
    with sqlalchemy_uow_factory(engine)() as uow:
        uow.models.add(Model("qwen-tiny", model_type=ModelType.TEXT_GEN, local_path=str(tmp_path / "m"),
                             family="qwen", size_bytes=1))
        uow.commit()
    engine.dispose()
    # The shape an older dev build left behind: no `facets` column, and nothing indexed.
    with sqlite3.connect(path) as db:
        db.execute(f"DROP TABLE {SEARCH_INDEX_TABLE}")
        db.execute(f"CREATE VIRTUAL TABLE {SEARCH_INDEX_TABLE} USING fts5(model_id, repo_id, family, description)")
    assert "facets" not in _columns(path)

    engine = open_database(url)
    try:
        assert _columns(path) == list(INDEXED_COLUMNS)
        with sqlalchemy_uow_factory(engine)() as uow:
            page = uow.models.search(ModelQuery(text="qwe", model_type=ModelType.TEXT_GEN))
            assert [m.model_id for m in page.items] == ["qwen-tiny"]  # re-indexed from the models table
            uow.models.add(Model("llama-tiny", model_type=ModelType.TEXT_GEN, local_path=str(tmp_path / "l")))
            uow.commit()  # writes reach the rebuilt index (no "has no column named facets")
            assert uow.models.search(ModelQuery(text="llama")).total == 1
    finally:
        engine.dispose()


def test_an_index_of_todays_shape_is_left_alone(tmp_path):
    path = tmp_path / "mlxm.db"
    open_database(f"sqlite:///{path}").dispose()
    with sqlite3.connect(path) as db:
        before = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (SEARCH_INDEX_TABLE,)).fetchone()
        db.execute(f"INSERT INTO {SEARCH_INDEX_TABLE} (rowid, model_id) VALUES (999, 'marker')")
    open_database(f"sqlite:///{path}").dispose()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (SEARCH_INDEX_TABLE,)).fetchone() == before
        assert db.execute(f"SELECT model_id FROM {SEARCH_INDEX_TABLE} WHERE rowid = 999").fetchone() == ("marker",)
