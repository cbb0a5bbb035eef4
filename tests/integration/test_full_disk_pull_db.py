"""A disk that fills during a pull or a database write (ENOSPC / SQLITE_FULL, injected at the write), in-process
(CliRunner) with the real container: one line, exit 10, what to do; a pull keeps its bytes and resumes."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import pytest
from click.testing import CliRunner

import adapters.downloads.http_transfer as http_transfer
from entrypoints.cli.main import cli
from tests.support.fake_hub import FakeHub
from tests.support.full_disk import FillingDisk
from tests.support.hub_container import hub_container

WEIGHTS = os.urandom(300_000)
ROOM = 100_000  # bytes of the weights that fit before the disk is full


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.add_repo("org/tiny", {"config.json": b'{"model_type": "llama"}', "model.safetensors": WEIGHTS})
        yield h


@pytest.fixture
def container(hub, tmp_path, monkeypatch):
    return hub_container(hub, tmp_path, monkeypatch, {"default_model": "tiny-v1", "models": [
        {"id": "tiny-v1", "aliases": ["tiny"], "type": "text-gen", "family": "llama",
         "sources": [{"kind": "huggingface_repo", "value": "org/tiny"}]}]})


def run(container, *args):
    return CliRunner().invoke(cli, list(args), obj=container)


def test_a_pull_that_fills_the_disk_is_one_line_exit_10_and_keeps_its_bytes_for_resume(container, hub, tmp_path,
                                                                                      monkeypatch):
    disk = FillingDisk(ROOM, "model.safetensors")
    monkeypatch.setattr(http_transfer, "open", disk, raising=False)  # the transfer writes through it
    result = run(container, "pull", "tiny", "--quiet")
    assert disk.refused == 1
    assert result.exit_code == 10, result.output  # was exit 2, as if the user had made a mistake
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert line.startswith("Error: model.safetensors: cannot write ") and "No space left on device" in line
    assert f"({ROOM} bytes kept; free space, then resume)" in line
    assert line.endswith(f"; free space under MLX_MANAGER_HOME ({tmp_path}), or point MLX_MANAGER_HOME at a disk "
                         "with room")
    assert len(hub.requests_for("model.safetensors", "GET")) == 1  # not retried as a network failure
    partial = [p for p in (tmp_path / "staging").rglob("*") if p.is_file() and "model.safetensors" in p.name]
    assert [p.stat().st_size for p in partial] == [ROOM]  # the partial data stays

    monkeypatch.delattr(http_transfer, "open")  # space freed
    resumed = run(container, "downloads", "resume", "1")
    assert resumed.exit_code == 0, resumed.output
    assert (tmp_path / "models" / "tiny-v1" / "model.safetensors").read_bytes() == WEIGHTS
    assert hub.requests_for("model.safetensors", "GET")[-1].headers.get("Range") == f"bytes={ROOM}-"


def test_a_database_write_on_a_full_disk_is_one_line_exit_10(container, tmp_path):
    from sqlalchemy import event

    assert run(container, "pull", "tiny", "--quiet").exit_code == 0
    engine = container.database_engine()
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _full(dbapi_connection, _record) -> None:  # the file cannot grow by one page: SQLite's "disk is full"
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    result = run(container, "profile", "create", "chatty", "tiny", "--system", "x" * 200_000)
    assert result.exit_code == 10, result.output  # was exit 70, "internal error: OperationalError: ..."
    assert result.output.strip() == (
        f"Error: the database {tmp_path / 'mlxm.db'} cannot grow: no space left on device; nothing of this change "
        f"was written; free space under MLX_MANAGER_HOME ({tmp_path}), or point MLX_MANAGER_HOME at a disk with room")
