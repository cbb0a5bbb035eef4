"""`mlxm db copy --to URL`: a SQLite library into PostgreSQL and back, every row and the search index."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from click.testing import CliRunner
from sqlalchemy import create_engine, text

from adapters.sqlalchemy.migrate import upgrade_database
from application.library.ports import ModelQuery
from domain.audit.model import AuditEntry, AuditQuery, AuditStatus
from domain.identity.model import ApiKey, User
from domain.library.dependency_model import DependencyBinding, DependencyProfile, Requirement
from domain.downloads.model import Download
from domain.enums import BackendType, DownloadStatus, UserStatus
from domain.library.mapping import LinkMethod, LinkRecord
from domain.routing.model import BackendMapping
from entrypoints.cli.main import cli
from tests.contract.test_model_repository_contract import library
from tests.contract.test_profile_repository_contract import chat_profile, embed_profile, voice_profile
from tests.support.database import SqliteUnitOfWorks as UnitOfWorks

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
QUERIES = [ModelQuery(text="llama"), ModelQuery(text="qwe sma"), ModelQuery(capability="tools"),
           ModelQuery(text="llama", status=DownloadStatus.DOWNLOADING), ModelQuery(limit=2, offset=1), ModelQuery()]


def _fill(url: str) -> None:
    uows = UnitOfWorks(url)
    try:
        with uows() as uow:
            for model in library():
                uow.models.add(model)
            for i in range(40):  # more than one page of search results
                from domain.library.models import Model

                uow.models.add(Model(f"bulk-{i:02d}", family="llama", description=f"bulk model {i}"))
            for profile in (chat_profile(), voice_profile(), embed_profile()):
                uow.profiles.add(profile)
            uow.downloads.add(Download(model_id="hermes-3b", status=DownloadStatus.DOWNLOADING, started_at=T0,
                                       total_bytes=10, downloaded_bytes=4))
            uow.settings.set("theme", "dark")
            uow.backend_mappings.add(BackendMapping("gpt-", "prefix", BackendType.OPENAI))
            owner = uow.users.add(User(email="bob@example.com", password_hash="scrypt$x", status=UserStatus.APPROVED,
                                       created_at=T0))
            uow.api_keys.add(ApiKey(name="bob", user_id=owner.id, key_hash="h" * 64, prefix="mlxm_abc",
                                    created_at=T0))
            uow.audit.add_many([AuditEntry(f"r{i}", T0 + timedelta(minutes=i), "qwen", "local", "/v1/chat", 5,
                                           AuditStatus.SUCCESS, host="mac-a") for i in range(5)])
            uow.links.add(LinkRecord(app="studio", model_id="qwen2.5-0.5b-4bit", rule_target="llm", folder="q",
                                     source_path="/lib/q/f", target_path="/apps/q/f", method=LinkMethod.SYMLINK,
                                     created_at=T0))
            uow.dependency_profiles.add(DependencyProfile("mine", 1, "python-venv",
                                                          (Requirement("numpy", "==1.26.4"),)))
            uow.dependency_bindings.add(DependencyBinding("qwen:mine", "qwen2.5-0.5b-4bit", "mine", 1,
                                                          "python-venv", "*", "*"))
            uow.commit()
    finally:
        uows.dispose()


def _snapshot(url: str) -> dict:
    """What a user sees: search pages and totals, profiles as their subclasses, audit rows."""
    uows = UnitOfWorks(url)
    try:
        with uows() as uow:
            searches = [([m.model_id for m in page.items], page.total)
                        for page in (uow.models.search(q) for q in QUERIES)]
            qwen = uow.models.get("qwen2.5-0.5b-4bit")
            profiles = [(type(p).__name__, p.name, p.model_id) for p in uow.profiles.list()]
            audit = [(e.request_id, e.host, e.timestamp) for e in uow.audit.query(AuditQuery(limit=100)).items]
            return {"searches": searches, "qwen": replace(qwen, id=None), "profiles": profiles, "audit": audit,
                    "theme": uow.settings.get("theme"),
                    "binding": uow.dependency_bindings.get("qwen:mine"),
                    "keys": [(k.name, k.prefix) for k in uow.api_keys.list()]}
    finally:
        uows.dispose()


def _counts(url: str) -> dict[str, int]:
    from adapters.sqlalchemy.all_tables import metadata

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            counts = {t.name: connection.execute(text(f"SELECT COUNT(*) FROM {t.name}")).scalar()
                      for t in metadata.sorted_tables}
            counts["library_fts"] = connection.execute(text("SELECT COUNT(*) FROM library_fts")).scalar()
            return counts
    finally:
        engine.dispose()


def _mlxm(database_url: str, home, *args):
    env = {"MLX_MANAGER_HOME": str(home), "MLX_MANAGER_DATABASE_URL": database_url}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_a_sqlite_library_copies_to_postgresql_and_back(tmp_path, postgres_templates):
    sqlite_url = f"sqlite:///{tmp_path / 'mlxm.db'}"
    upgrade_database(sqlite_url)
    _fill(sqlite_url)
    before = _snapshot(sqlite_url)
    assert before["searches"][0][1] == 42 and before["profiles"]  # the library really has content

    pg_url = postgres_templates.empty_database()
    try:
        result = _mlxm(sqlite_url, tmp_path, "db", "copy", "--to", pg_url)
        assert result.exit_code == 0, result.output
        assert "Counts verified" in result.output and "search index: 46 of 46 models" in result.output
        assert _counts(pg_url) == _counts(sqlite_url)
        assert _snapshot(pg_url) == before  # same search pages and totals, same rows

        # New rows on PostgreSQL get fresh ids (sequences moved past the copied ids).
        uows = UnitOfWorks(pg_url)
        try:
            with uows() as uow:
                uow.settings.set("after", "copy")
                uow.backend_mappings.add(BackendMapping("claude-", "prefix", BackendType.ANTHROPIC))
                uow.commit()
        finally:
            uows.dispose()

        back_url = f"sqlite:///{tmp_path / 'back.db'}"
        result = _mlxm(pg_url, tmp_path, "db", "copy", "--to", back_url, "--json")
        assert result.exit_code == 0, result.output
        assert _counts(back_url) == _counts(pg_url)
        assert _snapshot(back_url) == before
    finally:
        postgres_templates.drop(pg_url)


def test_copy_refuses_a_target_that_holds_data_and_leaves_it_unchanged(tmp_path, postgres_url):
    sqlite_url = f"sqlite:///{tmp_path / 'mlxm.db'}"
    upgrade_database(sqlite_url)
    _fill(sqlite_url)
    uows = UnitOfWorks(postgres_url)
    try:
        with uows() as uow:
            uow.settings.set("mine", "keep")
            uow.commit()
    finally:
        uows.dispose()
    before = _counts(postgres_url)
    result = CliRunner().invoke(cli, ["db", "copy", "--to", postgres_url],
                                env={"MLX_MANAGER_HOME": str(tmp_path), "MLX_MANAGER_DATABASE_URL": sqlite_url})
    assert result.exit_code == 1
    assert result.output.startswith("Error: the target already holds data (settings)")
    assert "Traceback" not in result.output
    assert _counts(postgres_url) == before


def test_copy_to_an_unusable_url_is_a_one_line_error(tmp_path):
    sqlite_url = f"sqlite:///{tmp_path / 'mlxm.db'}"
    upgrade_database(sqlite_url)
    result = CliRunner().invoke(cli, ["db", "copy", "--to", "nonsense://x"],
                                env={"MLX_MANAGER_HOME": str(tmp_path), "MLX_MANAGER_DATABASE_URL": sqlite_url})
    # The forms MLX_MANAGER_DATABASE_URL takes: anything else is a usage error before any work.
    assert result.exit_code == 2 and "Error: Invalid value for '--to': not a database URL mlxm uses" in result.output
    assert os.path.exists(tmp_path / "mlxm.db")


# -- a full disk under the target: exit 10 (README: a full disk is exit 10 everywhere), the target unchanged ------
def _source_with_data(tmp_path) -> tuple[str, object]:
    home = tmp_path / "home"
    source_url = f"sqlite:///{home / 'mlxm.db'}"
    upgrade_database(source_url)
    uows = UnitOfWorks(source_url)
    try:
        with uows() as uow:
            uow.settings.set("notes", "x" * 200_000)  # needs pages the full target cannot add
            uow.commit()
    finally:
        uows.dispose()
    return source_url, home


def test_a_copy_into_a_full_sqlite_target_is_exit_10_and_leaves_it_unchanged(tmp_path):
    from sqlalchemy import Engine, event

    source_url, home = _source_with_data(tmp_path)
    target = tmp_path / "elsewhere" / "mlxm.db"
    target_url = f"sqlite:///{target}"
    upgrade_database(target_url)  # its schema fits; its rows will not
    before = _counts(target_url)

    def _full(dbapi_connection, _record) -> None:  # the target's file cannot grow by one page: SQLITE_FULL
        files = [row[2] for row in dbapi_connection.execute("PRAGMA database_list").fetchall()]
        if str(target) in files:
            pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(Engine, "connect", _full)
    try:
        result = _mlxm(source_url, home, "db", "copy", "--to", target_url)
    finally:
        event.remove(Engine, "connect", _full)
    assert result.exit_code == 10, result.output  # was exit 1, "copy failed ...: database or disk is full"
    assert result.output.strip() == (
        f"Error: copy failed, the target was not changed: the target database {target_url} cannot grow: "
        "no space left on device; free space on that disk")
    assert _counts(target_url) == before


def test_a_full_disk_making_the_target_folder_is_exit_10(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    source_url, home = _source_with_data(tmp_path)
    folder = tmp_path / "elsewhere"
    mkdir = Path.mkdir

    def _full_mkdir(self, *args, **kwargs):
        if self == folder:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", _full_mkdir)
    result = _mlxm(source_url, home, "db", "copy", "--to", f"sqlite:///{folder / 'mlxm.db'}")
    assert result.exit_code == 10, result.output  # was exit 7, "cannot open the target database"
    assert result.output.strip() == (
        f"Error: cannot create the target database sqlite:///{folder / 'mlxm.db'}: No space left on device: "
        f"{folder}; free space on that disk")
    assert not folder.exists()


def test_a_copy_into_a_postgresql_target_whose_disk_is_full_is_exit_10_and_leaves_it_unchanged(tmp_path,
                                                                                               postgres_url):
    # The server raises its own disk_full (SQLSTATE 53100) at the first row, as PostgreSQL does when it cannot
    # extend a table's file: a test cannot fill the server's disk, the error and its path through psycopg are real.
    source_url, home = _source_with_data(tmp_path)
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "CREATE FUNCTION disk_is_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'could not extend file \"base/1/2\": No space left on device' "
                "USING ERRCODE = 'disk_full'; END $$"))
            connection.execute(text("CREATE TRIGGER full_disk BEFORE INSERT ON settings "
                                    "FOR EACH ROW EXECUTE FUNCTION disk_is_full()"))
    finally:
        engine.dispose()
    before = _counts(postgres_url)
    result = _mlxm(source_url, home, "db", "copy", "--to", postgres_url)
    assert result.exit_code == 10, result.output  # was exit 1, "copy failed ...: could not extend file ..."
    safe = create_engine(postgres_url).url.render_as_string(hide_password=True)
    assert result.output.strip() == (
        f"Error: copy failed, the target was not changed: the target database {safe} cannot grow: "
        "no space left on device; free space on the database server's disk")
    assert _counts(postgres_url) == before
