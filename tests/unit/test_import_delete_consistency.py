"""Delete keeps the library index, the model's folder and its app links consistent (fakes; the files are
in the in-memory model store, seen through `MemPath`s: tests/support/memory_paths.py)."""

from __future__ import annotations

import os

import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.memory.library import InMemoryLinker, InMemoryMappingConfigStore
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.library.importing import ImportRequest, ImportService
from application.library.service import LibraryService
from domain.library.layout import Manifest
from application.library.mapping import MappingService
from domain.library.mapping import AppMapping, MappingRule
from domain.sizes import human_size
from tests.support.memory_paths import MemPath
from tests.support.model_folders import write_model_folder


class FailOnce:
    """A unit of work whose next commit fails (the database step after the file step)."""

    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self.uow = uow
        self.fail = False

    def __call__(self):
        uow = self.uow
        if self.fail:
            def broken_commit():
                raise RuntimeError("database is gone")
            uow.commit = broken_commit  # type: ignore[method-assign]
        else:
            uow.__dict__.pop("commit", None)
        return uow


@pytest.fixture
def env():
    home = MemPath.new_home()
    root = home.parent
    uow = InMemoryUnitOfWork()
    factory = FailOnce(uow)
    layout = home.store
    importer = ImportService(factory, layout, EmbeddedCatalogProvider(), FakeClock())
    library = LibraryService(factory, EmbeddedCatalogProvider(), FakeClock(), models_dir=layout.models_dir, store=layout)
    return root, home, uow, factory, importer, library


def test_delete_removes_row_folder_and_revision(env):
    root, home, uow, _, importer, library = env
    model = importer.import_model(ImportRequest(str(write_model_folder(root / "src")), name="doomed")).model
    library.delete("doomed")
    with uow:
        assert uow.models.get("doomed") is None
    assert not (root / model.local_path).lexists()
    assert not (home / "models" / ".revisions" / "doomed").exists()
    assert not (home / "models" / ".trash").exists()
    assert (root / "src" / "model.safetensors").exists(), "the import's source is not the library's to delete"


def test_failed_commit_on_delete_puts_the_folder_back(env):
    root, home, uow, factory, importer, library = env
    model = importer.import_model(ImportRequest(str(write_model_folder(root / "src")), name="kept")).model
    before = sorted(p.name for p in (root / model.local_path).iterdir())
    factory.fail = True
    with pytest.raises(RuntimeError, match="database is gone"):
        library.delete("kept")
    factory.fail = False
    with uow:
        assert uow.models.get("kept") is not None, "the index row is still there"
    assert sorted(p.name for p in (root / model.local_path).iterdir()) == before, "and so is its folder"
    assert not (home / "models" / ".trash").exists()


def test_in_place_import_folder_is_never_deleted(env):
    root, _, uow, _, importer, library = env
    folder = write_model_folder(root / "mine")
    importer.import_model(ImportRequest(str(folder), name="mine", in_place=True))
    library.delete("mine")
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    with uow:
        assert uow.models.get("mine") is None


def test_adopted_revisions_stay_when_the_model_is_deleted(env):
    root, home, _, _, importer, library = env
    model = importer.import_model(ImportRequest(str(write_model_folder(root / "src")), name="mixed")).model
    adopted = home / "models" / ".revisions" / "mixed" / "older"
    adopted.mkdir(parents=True)
    (adopted / ".mlxm.json").write_text(Manifest(key="mixed", repo_id=None, revision="older", source=None,
                                                 created_by="adopted").to_json())
    (adopted / "weights.safetensors").write_bytes(b"user data")
    library.delete("mixed")
    assert (adopted / "weights.safetensors").read_bytes() == b"user data"
    assert not (root / model.local_path).lexists()
    assert [p.name for p in (home / "models" / ".revisions" / "mixed").iterdir()] == ["older"]


def test_delete_removes_the_models_links_only(env):
    root, home, uow, factory, importer, _ = env
    linker = InMemoryLinker()
    library = LibraryService(factory, EmbeddedCatalogProvider(), FakeClock(), models_dir=home.store.models_dir, linker=linker,
                             store=home.store)
    for name, seed in (("one", 0), ("two", 1)):
        model = importer.import_model(ImportRequest(str(write_model_folder(root / name, seed=seed)), name=name)).model
        for f in model.files:
            linker.add_file(os.path.join(model.local_path, f.path))
    configs = InMemoryMappingConfigStore([AppMapping("app", "/apps/x", (MappingRule("llm"),))])
    MappingService(factory, configs, linker, FakeClock()).apply("app")
    linker.add_file("/apps/x/llm/one/README.user")  # the user's own file next to our links

    library.delete("one")

    assert not linker.lexists("/apps/x/llm/one/model.safetensors")
    assert linker.lexists("/apps/x/llm/one/README.user")
    assert linker.readlink("/apps/x/llm/two/model.safetensors") is not None
    with uow:
        assert uow.links.list(model_id="one") == []
        assert len(uow.links.list(model_id="two")) == 3


def test_failed_row_removal_on_delete_puts_the_folder_back(env, monkeypatch):
    # The failure comes at the row step (a flush: database locked), before any commit.
    root, home, uow, _, importer, library = env
    model = importer.import_model(ImportRequest(str(write_model_folder(root / "src")), name="locked")).model
    before = sorted(p.name for p in (root / model.local_path).iterdir())

    def locked(model_id):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(uow.models, "remove", locked)
    with pytest.raises(RuntimeError, match="database is locked"):
        library.delete("locked")
    monkeypatch.undo()
    with uow:
        assert uow.models.get("locked") is not None
    assert sorted(p.name for p in (root / model.local_path).iterdir()) == before, "the folder is back in place"
    assert not (home / "models" / ".trash").exists()


def test_a_users_folder_in_place_of_mlxms_link_is_never_deleted(env):
    # The user replaced mlxm's link `models/<key>` with a real folder of their own: provenance, not the
    # row's `managed` flag, decides; the row goes, the folder stays, mlxm's own revision goes.
    root, home, uow, _, importer, library = env
    model = importer.import_model(ImportRequest(str(write_model_folder(root / "src")), name="swapped")).model
    link = root / model.local_path
    link.unlink()
    link.mkdir()
    (link / "my-notes.txt").write_text("the user's own work")

    removal = library.remove("swapped")

    assert (link / "my-notes.txt").read_text() == "the user's own work"
    assert [note for note in removal.kept if str(link) in note and "did not create" in note], removal.kept
    with uow:
        assert uow.models.get("swapped") is None
    assert not (home / "models" / ".revisions" / "swapped").exists()
    assert not (home / "models" / ".trash").exists()


def test_a_users_link_in_place_of_mlxms_link_stays(env):
    root, home, _, _, importer, library = env
    model = importer.import_model(ImportRequest(str(write_model_folder(root / "src")), name="relinked")).model
    mine = write_model_folder(root / "mine")
    link = root / model.local_path
    link.unlink()
    link.symlink_to(mine)

    removal = library.remove("relinked")

    assert link.is_symlink() and (mine / "model.safetensors").exists()
    assert any("a link mlxm did not create" in note for note in removal.kept), removal.kept
    assert not (home / "models" / ".revisions" / "relinked").exists()


def test_a_copied_and_edited_revision_folder_in_place_of_mlxms_link_is_kept(env):
    # `cp -r models/.revisions/<key>/<rev> models/<key>` copies mlxm's manifest too; today's mlxm never puts
    # a real folder at `models/<key>`, so the manifest does not make the (edited) copy mlxm's to delete.
    root, home, uow, _, importer, library = env
    model = importer.import_model(ImportRequest(str(write_model_folder(root / "src")), name="copied")).model
    link = root / model.local_path
    revision = link.resolve()
    link.unlink()
    link.mkdir()
    for item in revision.iterdir():
        (link / item.name).write_bytes(item.read_bytes())
    assert (link / ".mlxm.json").is_file()
    (link / "config.json").write_text('{"model_type": "llama", "edited": true}')
    size = human_size(sum(len((link / item.name).read_bytes()) for item in link.iterdir()))

    removal = library.remove("copied")

    assert (link / "config.json").read_text() == '{"model_type": "llama", "edited": true}'
    assert (link / ".mlxm.json").is_file() and (link / "model.safetensors").is_file()
    assert (f"{link} ({size}): a folder mlxm did not create (mlxm keeps only a link there); left alone: delete it "
            "yourself to free its space") in removal.kept
    with uow:
        assert uow.models.get("copied") is None
    assert not (home / "models" / ".revisions" / "copied").exists(), "mlxm's own revision goes"


def test_a_pre_redesign_folder_is_kept_with_its_size_and_how_to_free_it(env):
    # Migration 0002 kept legacy rows `managed` with their flat `models/<alias>` folder (a real folder, which
    # today's mlxm never writes there): the row goes, the folder stays, and the note says what it holds.
    from domain.library.models import Model

    root, home, uow, _, _, library = env
    folder = home / "models" / "llama"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w" * 3_355_000)
    (folder / "config.json").write_bytes(b"c" * 443)  # 3,355,443 bytes in all: 3.2 MB
    elsewhere = root / "big.bin"
    elsewhere.write_bytes(b"b" * 10_000_000)
    (folder / "extra.bin").symlink_to(elsewhere)  # a link frees nothing: not counted
    with uow:
        uow.models.add(Model("llama-3.2-1b", managed=True, local_path=str(folder)))
        uow.commit()

    removal = library.remove("llama-3.2-1b")

    assert list(removal.kept) == [f"{folder} (3.2 MB): a folder mlxm did not create (mlxm keeps only a link there); "
                                  "left alone: delete it yourself to free its space"]
    assert (folder / "model.safetensors").exists() and elsewhere.exists()
    with uow:
        assert uow.models.get("llama-3.2-1b") is None
