"""A downloaded model's row written again from its installed revision after the database was lost
(LibraryRecovery + DownloadedRevisions on the in-memory store and unit of work)."""

from __future__ import annotations

import json

import pytest

from adapters.catalog.embedded import StaticCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.downloads.service import DownloadService
from application.library.importing import ImportService
from application.library.metadata_edit import MetadataEdit, MetadataEditService
from application.library.rebuild import DownloadedRevisions
from application.library.recovery import LibraryRecovery
from application.library.service import LibraryService
from domain.catalog.model import catalog_from_dict
from domain.enums import ModelType
from tests.support.fake_downloader import FakeDownloader
from tests.support.memory_paths import MemPath

CONFIG = json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}).encode()
WEIGHTS = bytes(range(256)) * 40
CATALOG = catalog_from_dict({"default_model": "tiny-v1", "models": [
    {"id": "tiny-v1", "type": "text-gen", "family": "llama", "aliases": ["tiny"], "tags": ["chat"],
     "description": "A tiny model", "sources": [{"kind": "huggingface_repo", "value": "org/tiny"}]}]})


@pytest.fixture
def env():
    home, uow, fake = MemPath.new_home(), InMemoryUnitOfWork(), FakeDownloader()
    fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    fake.add_repo("someone/other", {"config.json": CONFIG, "model.safetensors": WEIGHTS[::-1]})
    fake.store = home.store
    downloads = DownloadService(lambda: uow, StaticCatalogProvider(CATALOG), fake, FakeClock(), home.store,
                                max_workers=2)
    return home, uow, downloads


def recover(home, uow):
    catalog = StaticCatalogProvider(CATALOG)
    importer = ImportService(lambda: uow, home.store, catalog, FakeClock())
    return LibraryRecovery(lambda: uow, home.store, importer,
                           downloaded=DownloadedRevisions(lambda: uow, home.store, catalog, FakeClock())).recover()


def test_a_pulled_model_comes_back_with_its_catalog_metadata_and_the_users_overlays(env):
    home, uow, downloads = env
    pulled = downloads.pull("tiny").model
    library = LibraryService(lambda: uow, StaticCatalogProvider(CATALOG), FakeClock(), store=home.store)
    MetadataEditService(lambda: uow, library.show, FakeClock(), store=home.store).edit(
        "tiny", MetadataEdit(model_type="vision", add_tags=("coding",), display_name="Tiny VL"))
    fresh = InMemoryUnitOfWork()  # the database is lost
    report = recover(home, fresh)
    assert report.adopted == ["tiny-v1"] and report.unindexed == []
    with fresh:
        model, overlays = fresh.models.get("tiny-v1"), fresh.overlays.get("tiny-v1")
    assert (model.repo_id, model.canonical_id, model.revision) == ("org/tiny", "tiny-v1", pulled.revision)
    assert {(f.path, f.sha256) for f in model.files} == {(f.path, f.sha256) for f in pulled.files}
    assert (model.model_type, model.family, model.display_name) == (ModelType.VISION, "llama", "Tiny VL")
    assert model.tags == ["chat", "coding"] and model.aliases == ["tiny"] and model.is_installed
    assert overlays.items["model_type"].inferred is ModelType.TEXT_GEN
    assert recover(home, fresh).adopted == []  # once


def test_a_repo_pulled_outside_the_catalog_takes_its_type_and_family_from_config(env):
    home, uow, downloads = env
    downloads.pull("someone/other")
    fresh = InMemoryUnitOfWork()
    assert recover(home, fresh).adopted == ["someone/other"]
    with fresh:
        model = fresh.models.get("someone/other")
    assert (model.model_type, model.family, model.canonical_id) == (ModelType.TEXT_GEN, "qwen2", None)


def test_a_file_that_no_longer_matches_is_reported_and_left_alone(env):
    home, uow, downloads = env
    downloads.pull("tiny")
    weights = home / "models" / "tiny-v1" / "model.safetensors"
    weights.write_bytes(b"changed")
    fresh = InMemoryUnitOfWork()
    report = recover(home, fresh)
    assert report.adopted == [] and any("tiny-v1" in line for line in report.unindexed)
    assert weights.read_bytes() == b"changed"
    with fresh:
        assert fresh.models.get("tiny-v1") is None


def test_a_revision_being_installed_by_a_pull_is_not_an_orphan(env):
    home, uow, downloads = env
    downloads.pull("tiny")
    fresh = InMemoryUnitOfWork()
    with home.store.model_lock("tiny-v1", wait=False) as got:  # the pull that writes the row holds it
        assert got
        report = recover(home, fresh)
    assert report.adopted == [] and any("tiny-v1" in line for line in report.unindexed)
