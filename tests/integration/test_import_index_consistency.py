"""Import, delete and link apply keep files, rows and the FTS library index consistent, on real SQLite.

Each failure test injects an error between the file step and the database step: the unit of
work flushes the rows (and the index writes that go with them) into the transaction, then its
commit fails. Afterwards neither a dangling index row nor an unindexed model folder may remain.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.filesystem.linker import FilesystemLinker
from adapters.filesystem.mapping_configs import FileMappingConfigStore
from adapters.memory.repositories import FakeClock
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from application.library.importing import ImportRequest, ImportService
from application.library.service import LibraryService
from adapters.filesystem.model_store import FilesystemModelStore
from application.library.mapping import MappingService
from application.library.ports import ModelQuery
from tests.support.database import SqliteUnitOfWorks, migrated_database
from tests.support.model_folders import write_model_folder


class BrokenCommitUnitOfWork(SqlAlchemyUnitOfWork):
    """Writes reach the transaction (flush), then the commit fails: the database step breaks."""

    def commit(self) -> None:
        for name in self.REPOSITORY_NAMES:
            getattr(self, name).save_changes()
        self.session.flush()
        raise RuntimeError("disk I/O error")


class Switchable:
    """A uow factory that can be told to hand out broken units of work."""

    def __init__(self, uows: SqliteUnitOfWorks) -> None:
        self.uows = uows
        self.broken = False

    def __call__(self):
        if self.broken:
            return BrokenCommitUnitOfWork(self.uows()._session_factory)
        return self.uows()


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("template")


@pytest.fixture
def env(tmp_path, template_dir):
    uows = SqliteUnitOfWorks(migrated_database(tmp_path, template_dir))
    factory = Switchable(uows)
    home = tmp_path / "home"
    layout = FilesystemModelStore(home)
    catalog = EmbeddedCatalogProvider()
    linker = FilesystemLinker()
    importer = ImportService(factory, layout, catalog, FakeClock())
    library = LibraryService(factory, catalog, FakeClock(), models_dir=layout.models_dir, linker=linker,
                             store=layout)
    configs = home / "mapping-configs"
    configs.mkdir(parents=True)
    (configs / "studio.json").write_text(json.dumps(
        {"app": "studio", "root": str(tmp_path / "apps" / "studio"), "rules": [{"target": "llm"}]}))
    mapping = MappingService(factory, FileMappingConfigStore(configs), linker, FakeClock())
    yield tmp_path, home, factory, importer, library, mapping
    uows.dispose()


def indexed(factory, text: str) -> list[str]:
    with factory() as uow:
        return [m.model_id for m in uow.models.search(ModelQuery(text=text)).items]


def test_import_is_indexed_in_the_same_transaction(env):
    tmp_path, _, factory, importer, _, _ = env
    importer.import_model(ImportRequest(str(write_model_folder(tmp_path / "src")), name="zebra-model"))
    assert indexed(factory, "zebra") == ["zebra-model"]
    assert indexed(factory, "imported") == ["zebra-model"]  # the tag is in the index too


def test_import_failing_at_the_database_step_leaves_no_row_no_index_entry_no_folder(env):
    tmp_path, home, factory, importer, _, _ = env
    factory.broken = True
    with pytest.raises(RuntimeError, match="disk I/O"):
        importer.import_model(ImportRequest(str(write_model_folder(tmp_path / "src")), name="zebra-model"))
    factory.broken = False
    with factory() as uow:
        assert uow.models.get("zebra-model") is None
    assert indexed(factory, "zebra") == []
    assert not os.path.lexists(home / "models" / "zebra-model")
    assert not (home / "models" / ".revisions" / "zebra-model").exists()
    # And the same import then succeeds: nothing half-done is in the way.
    importer.import_model(ImportRequest(str(tmp_path / "src"), name="zebra-model"))
    assert indexed(factory, "zebra") == ["zebra-model"]


def test_delete_failing_at_the_database_step_keeps_row_index_folder_and_links(env):
    tmp_path, home, factory, importer, library, mapping = env
    model = importer.import_model(ImportRequest(str(write_model_folder(tmp_path / "src")), name="zebra-model")).model
    mapping.apply("studio")
    link = tmp_path / "apps" / "studio" / "llm" / "zebra-model" / "model.safetensors"
    assert link.is_symlink()

    factory.broken = True
    with pytest.raises(RuntimeError, match="disk I/O"):
        library.delete("zebra-model")
    factory.broken = False

    assert indexed(factory, "zebra") == ["zebra-model"]
    assert (Path(model.local_path) / "model.safetensors").is_file()
    assert link.is_symlink() and link.exists(), "the link still points at the model's file"
    with factory() as uow:
        assert len(uow.links.list(model_id="zebra-model")) == 3

    library.delete("zebra-model")
    assert indexed(factory, "zebra") == []
    assert not os.path.lexists(model.local_path) and not os.path.lexists(link)
    assert not (home / "models" / ".trash").exists()
    with factory() as uow:
        assert uow.links.list(model_id="zebra-model") == []


def test_link_apply_failing_at_the_database_step_takes_its_links_back(env):
    tmp_path, _, factory, importer, _, mapping = env
    importer.import_model(ImportRequest(str(write_model_folder(tmp_path / "src")), name="zebra-model"))
    factory.broken = True
    with pytest.raises(RuntimeError, match="disk I/O"):
        mapping.apply("studio")
    factory.broken = False
    assert not (tmp_path / "apps" / "studio" / "llm" / "zebra-model" / "model.safetensors").is_symlink()
    assert indexed(factory, "studio") == [], "no linked:studio tag in the index"
    with factory() as uow:
        assert uow.links.list() == []
    mapping.apply("studio")
    assert indexed(factory, "studio") == ["zebra-model"]


class FailsWhenRecordingAnInstall(SqlAlchemyUnitOfWork):
    """The pull's rows reach the transaction (and the FTS index with them); the commit that
    records the completed install fails."""

    def commit(self) -> None:
        from domain.enums import DownloadStatus

        for name in self.REPOSITORY_NAMES:
            getattr(self, name).save_changes()
        self.session.flush()
        model = self.models.get("tiny-v1")
        if model is not None and model.status is DownloadStatus.COMPLETED:
            raise RuntimeError("disk I/O error")
        super().commit()


def test_pull_failing_at_the_database_step_leaves_no_index_row_and_no_install(tmp_path, template_dir):
    from adapters.catalog.embedded import StaticCatalogProvider
    from application.downloads.service import DownloadService
    from domain.catalog.model import catalog_from_dict
    from domain.enums import DownloadStatus
    from tests.support.fake_downloader import FakeDownloader

    uows = SqliteUnitOfWorks(migrated_database(tmp_path, template_dir))
    catalog = catalog_from_dict({"default_model": "tiny-v1", "models": [{
        "id": "tiny-v1", "type": "text-gen", "family": "tinyfam", "aliases": ["tiny"],
        "sources": [{"kind": "huggingface_repo", "value": "org/tiny", "priority": 10}],
    }]})
    downloader = FakeDownloader()
    downloader.add_repo("org/tiny", {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"w" * 4096})
    failing = True

    def factory():
        return FailsWhenRecordingAnInstall(uows()._session_factory) if failing else uows()

    service = DownloadService(factory, StaticCatalogProvider(catalog), downloader, FakeClock(),
                              FilesystemModelStore(tmp_path / "home"), max_workers=1)
    try:
        with pytest.raises(RuntimeError, match="disk I/O error"):
            service.pull("tiny")
        link = tmp_path / "home" / "models" / "tiny-v1"
        assert not os.path.lexists(link), "no installed model the index does not describe"
        with uows() as uow:
            done = uow.models.search(ModelQuery(text="tinyfam", status=DownloadStatus.COMPLETED))
            assert done.total == 0 and done.items == [], "no index row for an install that did not happen"
            model = uow.models.get("tiny-v1")
            assert model is None or model.status is not DownloadStatus.COMPLETED
        failing = False
        result = service.pull("tiny")
        assert (Path(result.model.local_path) / "model.safetensors").read_bytes() == b"w" * 4096
        assert indexed(uows, "tinyfam") == ["tiny-v1"]
    finally:
        uows.dispose()
