"""Start-up recovery after a crash mid-import or mid-delete (fakes for the database, real files).

A crash is simulated by letting the step fail with every clean-up of the dying process
skipped (`Crash` is raised and the undo steps are no-ops), which is what `kill -9` leaves.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.library.deletion import PendingRemoval
from application.library.importing import ImportRequest, ImportService
from application.library.service import LibraryService
from adapters.filesystem.model_store import FilesystemModelStore
from domain.library.layout import Manifest
from application.library.recovery import LibraryRecovery
from tests.support.model_folders import write_model_folder


class Crash(BaseException):
    """The process dies here."""


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.uow = InMemoryUnitOfWork()
        self.layout = FilesystemModelStore(self.home)
        catalog = EmbeddedCatalogProvider()
        self.importer = ImportService(lambda: self.uow, self.layout, catalog, FakeClock())
        self.library = LibraryService(lambda: self.uow, catalog, FakeClock(), models_dir=self.layout.models_dir,
                                      store=self.layout)
        self.recovery = LibraryRecovery(lambda: self.uow, self.layout, self.importer)

    def row(self, model_id: str):
        with self.uow:
            return self.uow.models.get(model_id)


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


def crash_during_import(env: Env, monkeypatch, request: ImportRequest, *, after_install: bool = False):
    """Import until the database step, then die without any clean-up."""
    monkeypatch.setattr(ImportService, "_put_back", staticmethod(lambda *a, **k: None))
    monkeypatch.setattr(ImportService, "_uninstall", staticmethod(lambda *a, **k: None))
    monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: None)  # the model store's clean-up
    if after_install:
        def dying_commit():
            raise Crash()
        monkeypatch.setattr(env.uow, "commit", dying_commit)
    else:
        def dying_register(*a, **k):
            raise Crash()
        monkeypatch.setattr(ImportService, "_register", dying_register)
    with pytest.raises(Crash):
        env.importer.import_model(request)
    monkeypatch.undo()


def test_a_moved_folder_of_a_dead_import_goes_back_to_the_user(env, monkeypatch):
    source = write_model_folder(env.tmp / "mine")
    (source / ".notes").mkdir()
    (source / ".notes" / "todo.txt").write_text("keep")
    crash_during_import(env, monkeypatch, ImportRequest(str(source), move=True))
    assert not source.exists() and list(env.layout.staging_dir.glob("import-*")), "the crash left it in staging"

    report = env.recovery.recover()

    assert report.restored == [str(source)]
    assert (source / "model.safetensors").exists() and (source / ".notes" / "todo.txt").read_text() == "keep"
    assert not list(env.layout.staging_dir.glob("import-*")), "the workspace is swept"
    assert not list(env.layout.staging_dir.glob("*.lock"))


def test_a_copy_of_a_dead_import_is_swept_and_the_source_untouched(env, monkeypatch):
    source = write_model_folder(env.tmp / "src")
    before = sorted(p.name for p in source.iterdir())
    crash_during_import(env, monkeypatch, ImportRequest(str(source)))
    [workspace] = env.layout.staging_dir.glob("import-*")
    assert (workspace / "model" / "model.safetensors").exists()

    report = env.recovery.recover()

    assert report.staging_removed == [str(workspace)] and report.restored == []
    assert not workspace.exists()
    assert sorted(p.name for p in source.iterdir()) == before


def test_a_live_import_is_left_alone(env):
    workspace = env.layout.staging_dir / "import-live"
    (workspace / "model").mkdir(parents=True)
    with env.layout.model_lock(workspace.name, wait=False) as got:
        assert got
        # Another process's view: flock is per open file, so a second open cannot take it.
        report = env.recovery.recover()
    assert report.staging_removed == [] and workspace.exists()


def test_an_install_whose_row_never_got_written_is_indexed_again(env, monkeypatch):
    source = write_model_folder(env.tmp / "src")
    crash_during_import(env, monkeypatch, ImportRequest(str(source), name="orphan"), after_install=True)
    assert env.row("orphan") is None and (env.layout.models_dir / "orphan").is_symlink()

    report = env.recovery.recover()

    assert report.adopted == ["orphan"]
    model = env.row("orphan")
    assert model is not None and model.managed and model.local_path == str(env.layout.models_dir / "orphan")
    assert {f.path for f in model.files} == {"config.json", "model.safetensors", "tokenizer.json"}
    assert all(len(f.sha256) == 64 for f in model.files)
    assert env.recovery.recover().adopted == [], "once"


def test_an_orphan_whose_files_no_longer_match_is_reported_and_kept(env, monkeypatch):
    source = write_model_folder(env.tmp / "src")
    crash_during_import(env, monkeypatch, ImportRequest(str(source), name="tampered"), after_install=True)
    weights = env.layout.models_dir / "tampered" / "model.safetensors"
    weights.write_bytes(b"changed")

    report = env.recovery.recover()

    assert report.adopted == [] and any("tampered" in line for line in report.unindexed)
    assert weights.read_bytes() == b"changed" and env.row("tampered") is None


def test_a_folder_mlxm_did_not_create_is_reported_never_deleted(env):
    folder = env.layout.revision_dir("someone/else", "abc")
    folder.mkdir(parents=True)
    (folder / "weights.safetensors").write_bytes(b"user data")
    (folder / ".mlxm.json").write_text(Manifest(key="someone/else", repo_id="someone/else", revision="abc",
                                                source="hf", created_by="adopted").to_json())
    report = env.recovery.recover()
    assert any("someone/else" in line for line in report.unindexed)
    assert (folder / "weights.safetensors").read_bytes() == b"user data"


def crash_during_delete(env: Env, monkeypatch, model_id: str, *, after_commit: bool) -> None:
    def die(self, *a, **k):
        self._release()  # the kernel drops a dead process's flock
        raise Crash()

    if after_commit:
        monkeypatch.setattr(PendingRemoval, "finish", die)
    else:
        monkeypatch.setattr(PendingRemoval, "undo", lambda self: self._release())

        def dying_commit():
            raise Crash()
        monkeypatch.setattr(env.uow, "commit", dying_commit)
    with pytest.raises(Crash):
        env.library.delete(model_id)
    monkeypatch.undo()


def test_a_delete_that_died_before_its_commit_puts_the_folder_back(env, monkeypatch):
    model = env.importer.import_model(ImportRequest(str(write_model_folder(env.tmp / "src")), name="kept")).model
    before = sorted(p.name for p in Path(model.local_path).iterdir())
    crash_during_delete(env, monkeypatch, "kept", after_commit=False)
    assert not os.path.lexists(model.local_path) and env.row("kept") is not None

    report = env.recovery.recover()

    assert str(env.layout.models_dir / "kept") in report.restored
    assert sorted(p.name for p in Path(model.local_path).iterdir()) == before
    assert not (env.layout.models_dir / ".trash").exists()


def test_a_delete_that_died_after_its_commit_empties_the_trash(env, monkeypatch):
    model = env.importer.import_model(ImportRequest(str(write_model_folder(env.tmp / "src")), name="gone")).model
    crash_during_delete(env, monkeypatch, "gone", after_commit=True)
    assert env.row("gone") is None and any((env.layout.models_dir / ".trash").iterdir())

    report = env.recovery.recover()

    assert len(report.trash_emptied) == 1 and report.restored == []
    assert not (env.layout.models_dir / ".trash").exists()
    assert not os.path.lexists(model.local_path)


def test_server_start_up_runs_the_recovery(tmp_path, monkeypatch):
    from entrypoints.http.app import create_app
    from tests.support.frontends import fake_container

    home = tmp_path / "home"
    monkeypatch.setenv("MLX_MANAGER_HOME", str(home))
    container, _ = fake_container(home)
    workspace = home / "staging" / "import-dead"
    (workspace / "model").mkdir(parents=True)
    (workspace / "model" / "partial.safetensors").write_bytes(b"half")
    with TestClient(create_app(container)):
        assert not workspace.exists()


def test_cli_import_and_rm_settle_crash_leftovers_first(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from entrypoints.cli.main import cli
    from tests.support.frontends import fake_container

    home = tmp_path / "home"
    monkeypatch.setenv("MLX_MANAGER_HOME", str(home))
    container, _ = fake_container(home)
    for command in (["import", str(write_model_folder(tmp_path / "fresh"))], ["rm", "fresh"]):
        workspace = home / "staging" / "import-dead"
        (workspace / "model").mkdir(parents=True)
        result = CliRunner().invoke(cli, command, obj=container)
        assert result.exit_code == 0, result.output
        assert not workspace.exists(), command[0]
