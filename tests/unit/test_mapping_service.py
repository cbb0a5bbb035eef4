"""MappingService on fakes: the in-memory unit of work, linker and config store."""

from __future__ import annotations

import pytest

from adapters.memory.library import InMemoryLinker, InMemoryMappingConfigStore
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.errors import NotFound
from application.library.mapping import MappingService, forget_model_links, linked_tag, remove_link_files
from domain.enums import DownloadStatus, ModelType
from domain.library.mapping import ConflictPolicy, LinkAction, LinkMethod, MappingRule, AppMapping
from domain.library.models import Model, ModelFile

FILES = ("config.json", "model.safetensors")
ROOT = "/apps/lm"


class FailingCommitUnitOfWork(InMemoryUnitOfWork):
    def commit(self) -> None:
        raise RuntimeError("database is gone")


def add_model(uow, linker, model_id, model_type=ModelType.TEXT_GEN, status=DownloadStatus.COMPLETED, tags=()):
    local = f"/lib/{model_id}"
    for name in FILES:
        linker.add_file(f"{local}/{name}", size=len(model_id) + len(name))
    with uow:
        uow.models.add(Model(model_id=model_id, model_type=model_type, family="llama", local_path=local,
                             status=status, tags=list(tags),
                             files=[ModelFile(path=name, size=1, sha256="0" * 64) for name in FILES]))
        uow.commit()


@pytest.fixture
def world():
    uow = InMemoryUnitOfWork()
    linker = InMemoryLinker()
    configs = InMemoryMappingConfigStore([
        AppMapping("lm", ROOT, (MappingRule("llm", model_types=(ModelType.TEXT_GEN,)),)),
    ])
    add_model(uow, linker, "m1")
    add_model(uow, linker, "m2")
    add_model(uow, linker, "voice", model_type=ModelType.AUDIO)
    add_model(uow, linker, "half", status=DownloadStatus.DOWNLOADING)
    service = MappingService(lambda: uow, configs, linker, FakeClock())
    return uow, linker, configs, service


def target(model_id, name="model.safetensors", folder=None):
    return f"{ROOT}/llm/{folder or model_id}/{name}"


def test_preview_plans_a_per_model_subfolder_so_files_never_collide(world):
    _, _, _, service = world
    plan = service.preview("lm")
    assert {e.target_path for e in plan.entries} == {target(m, f) for m in ("m1", "m2") for f in FILES}
    assert plan.summary == {"create": 4, "exists": 0, "conflict": 0, "broken": 0}


def test_apply_links_records_and_tags_then_preview_says_exists(world):
    uow, linker, _, service = world
    report = service.apply("lm")
    assert len(report.created) == 4 and {m for _, m in report.created} == {"symlink"}
    assert linker.readlink(target("m1")) == "/lib/m1/model.safetensors"
    with uow:
        records = uow.links.list(app="lm")
        assert {r.target_path for r in records} == {target(m, f) for m in ("m1", "m2") for f in FILES}
        assert all(r.folder in {"m1", "m2"} and r.method is LinkMethod.SYMLINK for r in records)
        assert linked_tag("lm") in uow.models.get("m1").tags
        assert linked_tag("lm") not in uow.models.get("voice").tags
    assert service.preview("lm").summary["exists"] == 4
    again = service.apply("lm")
    assert again.created == [] and len(again.existing) == 4


def test_dangling_symlink_is_broken_skipped_and_never_written_through(world):
    _, linker, _, service = world
    linker.add_symlink(target("m1"), "/nowhere/file")
    entry = next(e for e in service.preview("lm").entries if e.target_path == target("m1"))
    assert entry.action is LinkAction.BROKEN

    report = service.apply("lm", ConflictPolicy.SKIP)
    assert [(e.target_path, why) for e, why in report.skipped] == [(target("m1"), "dangling symlink")]
    assert linker.readlink(target("m1")) == "/nowhere/file"
    assert not linker.lexists("/nowhere/file"), "nothing was written through the dangling link"

    cleaned = service.clean("lm")
    assert target("m1") in cleaned.removed
    assert service.preview("lm").summary["create"] == 1


def test_conflict_skip_leaves_the_other_file(world):
    _, linker, _, service = world
    linker.add_file(target("m1"), size=999)
    assert next(e for e in service.preview("lm").entries if e.target_path == target("m1")).action is LinkAction.CONFLICT
    report = service.apply("lm")
    assert [e.target_path for e, _ in report.skipped] == [target("m1")]
    assert linker.entries[target("m1")][0] == "file"


def test_conflict_overwrite_replaces_the_file(world):
    _, linker, _, service = world
    linker.add_file(target("m1"), size=999)
    report = service.apply("lm", "overwrite")
    assert [e.target_path for e, _ in report.replaced] == [target("m1")]
    assert linker.readlink(target("m1")) == "/lib/m1/model.safetensors"
    assert not any(".mlxm-replaced" in path for path in linker.entries), "the replaced file is gone after commit"


def test_conflict_overwrite_never_removes_a_directory(world):
    _, linker, _, service = world
    linker.add_dir(target("m1"))
    linker.add_file(target("m1") + "/inside.txt")
    report = service.apply("lm", "overwrite")
    assert (target("m1") in [e.target_path for e, why in report.skipped if "directory" in why])
    assert linker.lexists(target("m1") + "/inside.txt")


def test_conflict_rename_moves_the_whole_model_to_a_free_folder(world):
    uow, linker, _, service = world
    linker.add_file(target("m1"), size=999)
    report = service.apply("lm", "rename")
    assert report.renamed == {"m1@llm": "m1.2"}
    assert linker.readlink(target("m1", folder="m1.2")) == "/lib/m1/model.safetensors"
    assert linker.readlink(target("m1", "config.json", folder="m1.2")) == "/lib/m1/config.json"
    assert linker.entries[target("m1")][0] == "file", "the other file is untouched"
    # The next preview follows the recorded folder.
    plan = service.preview("lm")
    assert {e.action for e in plan.entries} == {LinkAction.EXISTS}
    with uow:
        assert {r.folder for r in uow.links.list(model_id="m1")} == {"m1.2"}


@pytest.mark.parametrize(
    ("symlinks", "hardlinks", "method"),
    [(False, True, LinkMethod.HARDLINK), (False, False, LinkMethod.COPY)],
)
def test_falls_back_to_hardlink_then_copy(symlinks, hardlinks, method):
    uow = InMemoryUnitOfWork()
    linker = InMemoryLinker(symlinks=symlinks, hardlinks=hardlinks)
    add_model(uow, linker, "m1")
    configs = InMemoryMappingConfigStore([AppMapping("lm", ROOT, (MappingRule("llm"),))])
    service = MappingService(lambda: uow, configs, linker, FakeClock())
    report = service.apply("lm")
    assert {m for _, m in report.created} == {method.value}
    with uow:
        assert {r.method for r in uow.links.list()} == {method}
    assert service.preview("lm").summary["exists"] == 2, "hardlinks and recorded copies count as ours"


def test_failed_database_step_takes_the_links_back(world):
    uow, linker, configs, _ = world
    linker.add_file(target("m2"), size=999)  # overwritten, then restored
    failing = FailingCommitUnitOfWork()
    failing.models = uow.models
    service = MappingService(lambda: failing, configs, linker, FakeClock())
    with pytest.raises(RuntimeError):
        service.apply("lm", "overwrite")
    assert not linker.lexists(target("m1"))
    assert linker.entries[target("m2")] [0] == "file" and linker.entries[target("m2")][2] == 999
    assert not any(".mlxm-replaced" in path for path in linker.entries)
    with failing:
        assert failing.links.list() == []
        assert linked_tag("lm") not in failing.models.get("m1").tags


def test_clean_removes_broken_links_and_forgets_vanished_ones(world):
    uow, linker, _, service = world
    service.apply("lm")
    linker.delete("/lib/m1")  # the model's files vanished: its links dangle
    linker.remove(target("m2", "config.json"))  # someone deleted one link
    report = service.clean("lm")
    assert sorted(report.removed) == sorted([target("m1"), target("m1", "config.json")])
    assert report.forgotten == [target("m2", "config.json")]
    assert not linker.lexists(f"{ROOT}/llm/m1"), "the emptied per-model folder is pruned"
    with uow:
        assert {r.target_path for r in uow.links.list()} == {target("m2")}
        assert linked_tag("lm") not in uow.models.get("m1").tags
        assert linked_tag("lm") in uow.models.get("m2").tags


def test_deleting_a_model_removes_its_links_and_nothing_else(world):
    uow, linker, _, service = world
    service.apply("lm")
    linker.remove(target("m1", "config.json"))
    linker.add_file(target("m1", "config.json"), size=5)  # a user replaced one of our links
    linker.add_file(f"{ROOT}/llm/m1/notes.txt")  # and left a file of their own
    with uow:
        removal = forget_model_links(uow, linker, "m1")
        uow.commit()
    removed = remove_link_files(linker, removal)
    assert removed == [target("m1")]
    assert linker.lexists(target("m1", "config.json")) and linker.lexists(f"{ROOT}/llm/m1/notes.txt")
    assert linker.readlink(target("m2")) == "/lib/m2/model.safetensors"
    with uow:
        assert uow.links.list(model_id="m1") == []
        assert len(uow.links.list(model_id="m2")) == 2


def test_deleting_a_model_keeps_a_same_size_file_that_replaced_a_copy():
    uow = InMemoryUnitOfWork()
    linker = InMemoryLinker(symlinks=False, hardlinks=False)
    add_model(uow, linker, "m1")
    configs = InMemoryMappingConfigStore([AppMapping("lm", ROOT, (MappingRule("llm"),))])
    MappingService(lambda: uow, configs, linker, FakeClock()).apply("lm")
    with uow:
        assert all(r.fingerprint for r in uow.links.list()), "every copy records what it made"
    size = linker.entries[target("m1")][2]
    linker.remove(target("m1"))
    linker.add_file(target("m1"), size=size)  # the user's own file, same size as our copy was
    user_file = linker.entries[target("m1")]
    with uow:
        removal = forget_model_links(uow, linker, "m1")
        uow.commit()
    assert remove_link_files(linker, removal) == [target("m1", "config.json")]
    assert linker.entries[target("m1")] == user_file


def test_links_of_a_model_whose_files_already_moved_are_still_recognised(world):
    uow, linker, _, service = world
    service.apply("lm")
    linker.delete("/lib/m1")
    with uow:
        removal = forget_model_links(uow, linker, "m1")
        uow.commit()
    assert sorted(remove_link_files(linker, removal)) == sorted([target("m1"), target("m1", "config.json")])
    assert not linker.lexists(f"{ROOT}/llm/m1")


def test_unknown_app_is_not_found(world):
    *_, service = world
    with pytest.raises(NotFound, match="known: lm"):
        service.preview("nope")
