"""Issue 12 item 1: a crash during `mlxm import --move` never costs the user's folder; interrupted
imports and deletes are reported by `mlxm list` / `mlxm show` until recovery runs.

The import is killed for real (`kill -9` of the console script) right after its folder moved into
staging; a sparse 1 GiB file keeps it hashing long enough to be caught there (no disk space used).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from application.library.deletion import PendingRemoval
from adapters.filesystem.model_store import FilesystemModelStore
from application.library.import_journal import IMPORT_RECORD, journal_path
from entrypoints.cli.main import cli
from tests.support.frontends import fake_container
from tests.support.model_folders import write_model_folder

MLXM = Path(sys.executable).parent / "mlxm"
BIG = 1 << 30


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_")}
    env["MLX_MANAGER_HOME"] = str(home)
    return env


def _mlxm(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(MLXM), *args], env=_env(home), capture_output=True, text=True, timeout=120)


def _user_folder(path: Path) -> Path:
    write_model_folder(path)
    (path / "notes.json").write_text('{"mine": true}', encoding="utf-8")
    with open(path / "big.dat", "wb") as handle:  # sparse: hashing it takes seconds, storing it nothing
        handle.truncate(BIG)
    return path


def _kill_import_after_the_move(home: Path, source: Path) -> Path:
    process = subprocess.Popen([str(MLXM), "import", str(source), "--name", "x", "--move"], env=_env(home),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while True:
            assert process.poll() is None, f"the import ended before it could be killed: {process.stderr.read()!r}"
            staging = home / "staging"
            workspaces = [w for w in staging.glob("import-*") if w.is_dir()] if staging.exists() else []
            if workspaces and (workspaces[0] / "model" / "notes.json").exists() and not source.exists():
                break
            assert time.monotonic() < deadline, "the import never moved the folder"
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    return workspaces[0]


@pytest.mark.slow
@pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")
def test_kill_9_after_the_move_then_the_path_is_taken_keeps_the_users_files(tmp_path):
    home, source = tmp_path / "home", _user_folder(tmp_path / "DIR")
    workspace = _kill_import_after_the_move(home, source)
    journal = FilesystemModelStore(home).read_journal(journal_path(workspace))
    # "moving" (journaled before the rename, killed before the update) or "moved": the payload is the user's.
    assert journal["state"] in ("moving", "moved") and journal["source"] == str(source) and journal["model_id"] == "x"

    # Until recovery runs, list and show say so.
    listed = _mlxm(home, "list")
    assert listed.returncode == 0 and "import of x interrupted" in listed.stderr
    shown = _mlxm(home, "show", "x")
    assert shown.returncode != 0 and "import of x interrupted" in shown.stderr

    source.mkdir()  # the user makes DIR again, empty
    recovered = _mlxm(home, "rm", "other")  # any command that runs crash recovery
    assert "your files are at" in recovered.stderr, recovered.stderr

    assert list(source.iterdir()) == []  # the new DIR is left as the user made it
    [aside] = tmp_path.glob("DIR.mlxm-recovered-*")
    assert json.loads((aside / "notes.json").read_text()) == {"mine": True}
    assert (aside / "model.safetensors").exists() and (aside / "big.dat").stat().st_size == BIG
    assert not (aside / ".mlxm.json").exists()
    assert not workspace.exists()
    assert "interrupted" not in _mlxm(home, "list").stderr


@pytest.mark.slow
@pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")
def test_kill_9_after_the_move_with_the_path_free_puts_the_folder_back(tmp_path):
    home, source = tmp_path / "home", _user_folder(tmp_path / "DIR")
    _kill_import_after_the_move(home, source)
    recovered = _mlxm(home, "import", str(write_model_folder(tmp_path / "other")), "--name", "other")
    assert recovered.returncode == 0, recovered.stderr
    assert f"your files are back at {source}" in recovered.stderr
    assert json.loads((source / "notes.json").read_text()) == {"mine": True}
    assert not list(tmp_path.glob("DIR.mlxm-recovered-*"))


def test_recovery_keeps_the_workspace_when_the_folder_cannot_be_returned(tmp_path):
    """Never an rmtree of the user's folder: if neither the old path nor a path beside it works, it stays."""
    container, _ = fake_container(tmp_path / "home")
    workspace = tmp_path / "home" / "staging" / "import-dead"
    (workspace / "model").mkdir(parents=True)
    (workspace / "model" / "weights.safetensors").write_bytes(b"user data")
    (workspace / IMPORT_RECORD).write_text(json.dumps({
        "model_id": "x", "source": str(tmp_path / "gone" / "DIR"), "move": True, "file": None, "state": "moved"}))
    # The folder that held DIR is gone: neither DIR nor a path beside it can take the files back.
    report = container.library_recovery().recover()
    assert (workspace / "model" / "weights.safetensors").read_bytes() == b"user data"
    assert any("could not return them" in line for line in report.unindexed)


def test_a_crashed_delete_is_listed_as_deleting_until_recovery(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("MLX_MANAGER_HOME", str(home))
    container, uow = fake_container(home)
    runner = CliRunner()
    assert runner.invoke(cli, ["import", str(write_model_folder(tmp_path / "src")), "--name", "kept"],
                         obj=container).exit_code == 0

    class Crash(BaseException):
        pass

    def dying_commit():
        raise Crash()

    # kill -9 between moving the folders into .trash and the commit: no undo runs.
    monkeypatch.setattr(PendingRemoval, "undo", lambda self: self._release())
    monkeypatch.setattr(uow, "commit", dying_commit)
    with pytest.raises(Crash):
        container.library_service().delete("kept")
    monkeypatch.undo()
    monkeypatch.setenv("MLX_MANAGER_HOME", str(home))
    assert any((home / "models" / ".trash").iterdir())

    listed = runner.invoke(cli, ["list", "--json"], obj=container)
    assert listed.exit_code == 0
    assert [m["status"] for m in json.loads(listed.stdout) if m["id"] == "kept"] == ["deleting"]
    assert "delete of kept interrupted" in listed.stderr
    table = runner.invoke(cli, ["list"], obj=container)
    assert "deleting" in table.stdout
    shown = runner.invoke(cli, ["show", "kept", "--json"], obj=container)
    assert json.loads(shown.stdout)["status"] == "deleting"

    runner.invoke(cli, ["rm", "nothing-here"], obj=container)  # recovery runs first
    after = json.loads(runner.invoke(cli, ["list", "--json"], obj=container).stdout)
    assert [m["status"] for m in after if m["id"] == "kept"] == ["completed"]
    assert "interrupted" not in runner.invoke(cli, ["list"], obj=container).stderr
