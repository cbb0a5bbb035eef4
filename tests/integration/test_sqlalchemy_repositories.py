"""What only the SQLAlchemy adapter can show: SQL joins, the FTS index's transaction, pragmas, threads."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import event

from application.library.ports import ModelQuery
from domain.library.capabilities import EmbeddingCapabilities, TextGenCapabilities, VisionCapabilities
from domain.enums import ModelType
from domain.library.models import Model, ModelFile
from domain.profiles.model import make_profile
from tests.support.database import SqliteUnitOfWorks, migrated_database

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("template")


@pytest.fixture
def uows(tmp_path, template_dir):
    factory = SqliteUnitOfWorks(migrated_database(tmp_path, template_dir))
    yield factory
    factory.dispose()


def _db_path(uows) -> str:
    return uows.url.removeprefix("sqlite:///")


def _library() -> list[Model]:
    return [
        Model("qwen", model_type=ModelType.TEXT_GEN, capabilities=TextGenCapabilities(supports_native_tools=True)),
        Model("plain", model_type=ModelType.TEXT_GEN, capabilities=TextGenCapabilities(supports_native_tools=False)),
        Model("llava", model_type=ModelType.VISION, capabilities=VisionCapabilities(supports_native_tools=True)),
        Model("bge", model_type=ModelType.EMBEDDINGS, capabilities=EmbeddingCapabilities(is_normalized=True)),
    ]


def _capture_sql(engine) -> list[str]:
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    return statements


def test_text_gen_models_with_native_tools_is_one_sql_join(uows):
    with uows() as uow:
        for model in _library():
            uow.models.add(model)
        uow.commit()
    statements = _capture_sql(uows.engine)
    with uows() as uow:
        names = [m.model_id for m in uow.models.with_capability("tools", ModelType.TEXT_GEN)]
    assert names == ["qwen"]  # not llava (vision), not plain (False)
    selecting_models = [s for s in statements if s.startswith("SELECT models.id, models.model_id")]
    assert len(selecting_models) == 1
    sql = " ".join(selecting_models[0].split())
    where = sql[sql.index(" WHERE "):]  # the filter; the select list also joins each subclass to map rows
    assert "JOIN text_gen_capabilities ON text_gen_capabilities.id = model_capabilities.id" in where
    assert "text_gen_capabilities.supports_native_tools IS 1" in where
    assert "vision_capabilities" not in where


def test_a_profile_is_a_base_row_plus_its_subclass_row(uows):
    with uows() as uow:
        uow.profiles.add(make_profile("chat", ModelType.TEXT_GEN))
        uow.profiles.add(make_profile("embed", ModelType.EMBEDDINGS))
        uow.commit()
    with sqlite3.connect(_db_path(uows)) as db:
        assert db.execute("SELECT name, profile_type FROM execution_profiles ORDER BY name").fetchall() == [
            ("chat", "inference"), ("embed", "base")]
        assert db.execute("SELECT COUNT(*) FROM inference_profiles").fetchone() == (1,)
        assert db.execute("SELECT COUNT(*) FROM audio_profiles").fetchone() == (0,)


def _fts_rows(uows) -> list[tuple]:
    with sqlite3.connect(_db_path(uows)) as db:
        return db.execute("SELECT rowid, model_id, aliases, tags FROM library_fts ORDER BY rowid").fetchall()


def test_the_search_index_changes_in_the_same_transaction_as_the_write(uows):
    with uows() as uow:
        model = uow.models.add(Model("qwen", aliases=["q1"], tags=["chat"]))
        assert uow.models.search(ModelQuery(text="chat")).total == 1  # visible inside the transaction
        assert _fts_rows(uows) == []  # but not outside before commit
        uow.rollback()
        assert uow.models.search(ModelQuery(text="chat")).total == 0
    assert _fts_rows(uows) == []
    with uows() as uow:
        model = uow.models.add(Model("qwen", aliases=["q1"], tags=["chat"]))
        uow.commit()
    assert _fts_rows(uows) == [(model.id, "qwen", "q1", "chat")]
    with uows() as uow:
        loaded = uow.models.get("qwen")
        loaded.tags = ["coder"]
        uow.commit()
    assert _fts_rows(uows) == [(model.id, "qwen", "q1", "coder")]
    with uows() as uow:
        uow.models.remove("qwen")
        uow.commit()
    assert _fts_rows(uows) == []


def test_deleting_a_model_cascades_to_its_rows(uows):
    with uows() as uow:
        uow.models.add(Model("qwen", aliases=["a", "b"], tags=["t"], files=[ModelFile("x", 1)],
                             capabilities=TextGenCapabilities(supports_thinking=True)))
        uow.commit()
    with uows() as uow:
        uow.models.remove("qwen")
        uow.commit()
    with sqlite3.connect(_db_path(uows)) as db:
        for table in ("model_aliases", "model_tags", "model_files", "model_capabilities", "text_gen_capabilities"):
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,), table


def test_sqlite_pragmas(uows):
    with uows.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_a_reader_is_not_blocked_by_a_writer_holding_the_lock(uows):
    with uows() as uow:
        uow.models.add(Model("before"))
        uow.commit()
    writer = uows()
    with writer:
        writer.models.add(Model("during"))  # holds the write lock until the end of this block
        with uows() as reader:
            assert [m.model_id for m in reader.models.list()] == ["before"]
            assert reader.models.search(ModelQuery(text="before")).total == 1
        writer.commit()
    with uows() as uow:
        assert [m.model_id for m in uow.models.list()] == ["before", "during"]


def test_units_of_work_on_many_threads_each_commit(uows):
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(10):
                with uows() as uow:
                    uow.models.add(Model(f"w{worker}-m{i}", tags=[f"worker{worker}"]))
                    uow.settings.set(f"last-{worker}", str(i))
                    uow.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with uows() as uow:
        assert len(uow.models.list()) == 60
        assert all(uow.settings.get(f"last-{n}") == "9" for n in range(6))
        assert uow.models.search(ModelQuery(text="worker3")).total == 10


def test_timestamps_come_back_aware_in_utc(uows):
    with uows() as uow:
        uow.models.add(Model("a", downloaded_at=datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)))
        uow.commit()
    with uows() as uow:
        assert uow.models.get("a").downloaded_at == datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
        assert uow.models.get("a").downloaded_at.tzinfo is not None


def test_listing_more_models_than_fit_in_one_id_list_keeps_their_children(uows):
    with uows() as uow:
        for i in range(620):
            uow.models.add(Model(f"m{i:04d}", aliases=[f"alias-{i}"], tags=["t"]))
        uow.commit()
    with uows() as uow:
        models = uow.models.list()
    assert len(models) == 620
    assert all(m.aliases == [f"alias-{int(m.model_id[1:])}"] and m.tags == ["t"] for m in models)


def test_a_broken_unique_constraint_is_a_conflict_and_rolls_back(uows):
    from application.errors import Conflict

    with uows() as uow:
        uow.profiles.add(make_profile("a", ModelType.TEXT_GEN))
        uow.profiles.add(make_profile("b", ModelType.TEXT_GEN))
        uow.commit()
    with uows() as uow:
        profile = uow.profiles.get("a")
        profile.name = "b"  # renaming onto another profile's name
        with pytest.raises(Conflict):
            uow.profiles.add(profile)
    with uows() as uow:
        assert [p.name for p in uow.profiles.list()] == ["a", "b"]


def test_a_conflict_inside_a_unit_of_work_voids_all_of_it_never_a_part(uows):
    # The repository must not roll back on its own: that would silently drop the earlier writes
    # of this unit of work ("c") and let a later commit() succeed as if all were saved.
    from application.errors import Conflict

    with uows() as uow:
        uow.profiles.add(make_profile("a", ModelType.TEXT_GEN))
        uow.profiles.add(make_profile("b", ModelType.TEXT_GEN))
        uow.commit()
    with uows() as uow:
        uow.profiles.add(make_profile("c", ModelType.TEXT_GEN))
        profile = uow.profiles.get("a")
        profile.name = "b"
        with pytest.raises(Conflict):
            uow.profiles.add(profile)
        with pytest.raises(Conflict, match="nothing was saved"):
            uow.commit()
    with uows() as uow:
        assert [p.name for p in uow.profiles.list()] == ["a", "b"]
