"""ImportService on the in-memory unit of work and the in-memory model store. `root` and `home` are
`MemPath`s (tests/support/memory_paths.py): the user's folders and the library live in the store.
(The filesystem adapter's own safetensors header reader is tested in tests/integration/test_import_service.py.)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.errors import Conflict, InvalidRequest
from application.library.importing import ImportRequest, ImportService
from domain.enums import ModelType
from domain.library.importing import InvalidModelName, UnsafeImport
from tests.support.memory_paths import MemPath
from tests.support.model_folders import write_model_folder, write_safetensors


class FailingCommitUnitOfWork(InMemoryUnitOfWork):
    """Fails at the database step, after the import's file step ran."""

    def commit(self) -> None:
        raise RuntimeError("database is gone")


@pytest.fixture
def root() -> MemPath:
    return MemPath.new_home().parent  # the in-memory store's world: user folders beside its home


@pytest.fixture
def home(root) -> MemPath:
    return root / "home"


@pytest.fixture
def uow() -> InMemoryUnitOfWork:
    return InMemoryUnitOfWork()


def make_service(home: MemPath, uow) -> ImportService:
    return ImportService(lambda: uow, home.store, EmbeddedCatalogProvider(), FakeClock())


@pytest.fixture
def service(home, uow) -> ImportService:
    return make_service(home, uow)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def library_entries(home: Path) -> list[str]:
    models = home / "models"
    return sorted(p.name for p in models.iterdir()) if models.exists() else []


def test_copy_import_hashes_every_file_and_installs_atomically(root, home, uow, service):
    source = write_model_folder(root / "src" / "My Model")
    result = service.import_model(ImportRequest(str(source)))

    model = result.model
    assert result.created and result.mode == "copy"
    assert model.model_id == "my-model"
    assert model.model_type is ModelType.TEXT_GEN and model.family == "llama"
    assert model.managed is True
    assert sorted(f.path for f in model.files) == ["config.json", "model.safetensors", "tokenizer.json"]
    for record in model.files:
        assert record.sha256 == sha256(source / record.path)
        assert record.size == (source / record.path).stat().st_size
        assert ((root / model.local_path) / record.path).read_bytes() == (source / record.path).read_bytes()
    assert (source / "model.safetensors").exists(), "a copy leaves the source alone"
    with uow:
        assert uow.models.get("my-model") is not None
    assert not any((home / "staging").iterdir()), "staging is cleaned up"


def test_same_content_twice_is_a_no_op_reporting_the_existing_id(root, home, uow, service):
    source = write_model_folder(root / "a")
    first = service.import_model(ImportRequest(str(source), name="first"))
    copy_elsewhere = write_model_folder(root / "b")  # same bytes, another folder and name
    second = service.import_model(ImportRequest(str(copy_elsewhere), name="second"))

    assert second.created is False
    assert second.model.model_id == first.model.model_id == "first"
    assert second.content_sha256 == first.content_sha256
    with uow:
        assert [m.model_id for m in uow.models.list()] == ["first"]
    assert library_entries(home) == [".revisions", "first"]


def test_different_content_under_a_taken_name_is_a_conflict(root, service):
    service.import_model(ImportRequest(str(write_model_folder(root / "a")), name="taken"))
    with pytest.raises(Conflict, match="already named 'taken'"):
        service.import_model(ImportRequest(str(write_model_folder(root / "b", seed=1)), name="taken"))


def test_catalog_names_are_refused(root, service):
    with pytest.raises(Conflict, match="catalog name"):
        service.import_model(ImportRequest(str(write_model_folder(root / "a")), name="qwen3-0.6b"))


def test_bad_names_are_refused(root, service):
    with pytest.raises(InvalidModelName):
        service.import_model(ImportRequest(str(write_model_folder(root / "a")), name=".."))


def test_move_import_takes_the_folder(root, home, service):
    source = write_model_folder(root / "moving")
    expected = sha256(source / "model.safetensors")
    result = service.import_model(ImportRequest(str(source), move=True))
    assert result.mode == "move"
    assert not source.exists()
    assert sha256((root / result.model.local_path) / "model.safetensors") == expected


def test_move_of_content_already_imported_puts_the_folder_back(root, service):
    service.import_model(ImportRequest(str(write_model_folder(root / "a")), name="kept"))
    duplicate = write_model_folder(root / "dup")
    result = service.import_model(ImportRequest(str(duplicate), move=True))
    assert result.created is False and result.model.model_id == "kept"
    assert (duplicate / "model.safetensors").exists() and (duplicate / "config.json").exists()


def test_move_across_filesystems_deletes_only_what_was_imported(root, home, monkeypatch, service):
    # Renaming the source fails with EXDEV (another filesystem): mlxm copies, then removes the source.
    import errno

    source = write_model_folder(root / "other-fs")
    (source / ".notes").mkdir()
    (source / ".notes" / "todo.txt").write_text("the user's notes")
    (source / "sub").mkdir()
    (source / "sub" / ".keep").write_text("")
    (source / "sub" / "extra.json").write_text("{}")
    real_rename = home.store.rename

    def cross_device(src, dst, *args, **kwargs):
        if Path(src) == source:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(home.store, "rename", cross_device)
    result = service.import_model(ImportRequest(str(source), move=True))
    assert result.created and result.mode == "move"
    assert ((root / result.model.local_path) / "model.safetensors").exists()
    assert (source / ".notes" / "todo.txt").read_text() == "the user's notes", "never imported, never deleted"
    assert (source / "sub" / ".keep").exists()
    assert not (source / "model.safetensors").exists() and not (source / "config.json").exists()
    assert not (source / "sub" / "extra.json").exists()


def test_in_place_registers_without_copying_and_is_unmanaged(root, home, service):
    source = write_model_folder(root / "where-it-is")
    result = service.import_model(ImportRequest(str(source), in_place=True))
    assert result.mode == "in-place"
    assert result.model.managed is False
    assert result.model.local_path == str(source.resolve())
    assert library_entries(home) == []


def test_in_place_needs_a_folder(root, service):
    weights = write_safetensors(root / "lone.safetensors")
    with pytest.raises(InvalidRequest, match="in-place"):
        service.import_model(ImportRequest(str(weights), in_place=True))


def test_single_weights_file_is_imported_and_flagged_for_review(root, service):
    weights = write_safetensors(root / "Lone-Weights.safetensors")
    result = service.import_model(ImportRequest(str(weights)))
    assert result.model.model_id == "lone-weights"
    assert [f.path for f in result.model.files] == ["Lone-Weights.safetensors"]
    assert "needs-review" in result.model.tags
    assert any("no config.json" in r for r in result.model.review_reasons)


def test_disagreeing_signals_are_recorded_on_the_model(root, service):
    source = write_model_folder(root / "odd", tensors=("vision_tower.blocks.0.weight", "encoder.conv1.weight"))
    result = service.import_model(ImportRequest(str(source)))
    assert any("tensor names say" in r for r in result.model.review_reasons)
    assert "needs-review" in result.model.tags


def test_pickle_weights_are_refused_unless_allowed(root, home, service):
    source = write_model_folder(root / "pickled")
    (source / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(UnsafeImport, match="pytorch_model.bin"):
        service.import_model(ImportRequest(str(source)))
    assert library_entries(home) == []
    result = service.import_model(ImportRequest(str(source), allow_pickle=True))
    assert "pytorch_model.bin" in [f.path for f in result.model.files]


def test_symlink_escaping_the_folder_is_refused(root, home, service):
    outside = root / "secret.txt"
    outside.write_text("top secret")
    source = write_model_folder(root / "escaping")
    (source / "innocent.json").symlink_to(outside)
    with pytest.raises(UnsafeImport, match="innocent.json"):
        service.import_model(ImportRequest(str(source)))
    assert library_entries(home) == []


def test_symlinked_folder_escaping_is_refused(root, service):
    (root / "elsewhere").mkdir()
    source = write_model_folder(root / "escaping-dir")
    (source / "extra").symlink_to(root / "elsewhere")
    with pytest.raises(UnsafeImport, match="extra"):
        service.import_model(ImportRequest(str(source)))


def test_symlink_inside_the_folder_is_imported_as_content(root, service):
    source = write_model_folder(root / "linked-inside")
    (source / "tokenizer-copy.json").symlink_to("tokenizer.json")
    result = service.import_model(ImportRequest(str(source)))
    copied = (root / result.model.local_path) / "tokenizer-copy.json"
    assert copied.read_text() == (source / "tokenizer.json").read_text()
    assert not (copied.parent.resolve() / "tokenizer-copy.json").is_symlink()


def test_index_pointing_outside_the_folder_is_refused(root, service):
    source = write_model_folder(root / "sharded")
    index = {"weight_map": {"a": "model.safetensors", "b": "../../outside.safetensors"}}
    (source / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(UnsafeImport, match="outside"):
        service.import_model(ImportRequest(str(source)))


def test_missing_shard_is_refused(root, service):
    source = write_model_folder(root / "sharded")
    index = {"weight_map": {"a": "model.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (source / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(InvalidRequest, match="missing"):
        service.import_model(ImportRequest(str(source)))


def test_truncated_weights_are_refused_and_leave_nothing(root, home, uow, service):
    source = write_model_folder(root / "truncated")
    write_safetensors(source / "model.safetensors", truncate=3)
    with pytest.raises(InvalidRequest, match="outside the file"):
        service.import_model(ImportRequest(str(source)))
    with uow:
        assert uow.models.list() == []
    assert library_entries(home) == []
    assert not any((home / "staging").iterdir())


def test_folder_without_weights_is_refused(root, service):
    source = root / "empty-ish"
    source.mkdir()
    (source / "config.json").write_text("{}")
    with pytest.raises(InvalidRequest, match="no weights"):
        service.import_model(ImportRequest(str(source)))


def test_missing_path_is_an_invalid_request(root, service):
    with pytest.raises(InvalidRequest, match="no such file"):
        service.import_model(ImportRequest(str(root / "nope")))


def test_foreign_folder_in_the_library_is_never_overwritten(root, home, service):
    foreign = home / "models" / "taken-folder"
    foreign.mkdir(parents=True)
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(Conflict, match="will not overwrite"):
        service.import_model(ImportRequest(str(write_model_folder(root / "x")), name="taken-folder"))
    assert (foreign / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("move", [False, True])
def test_failure_between_file_step_and_database_step_leaves_nothing_behind(root, home, move):
    uow = FailingCommitUnitOfWork()
    service = make_service(home, uow)
    source = write_model_folder(root / "src")
    before = {p.name: sha256(p) for p in source.iterdir()}

    with pytest.raises(RuntimeError, match="database is gone"):
        service.import_model(ImportRequest(str(source), name="doomed", move=move))

    with uow:
        assert uow.models.list() == [], "no dangling index row"
    assert not (home / "models" / "doomed").lexists(), "no unindexed model folder"
    assert not (home / "models" / ".revisions" / "doomed").exists()
    assert not any((home / "staging").iterdir())
    assert {p.name: sha256(p) for p in source.iterdir()} == before, "the source is intact (a move is put back)"
