"""A disk that fills during a pull or a database write (ENOSPC / SQLITE_FULL, injected at the write), in-process
(CliRunner) with the real container: one line, exit 10, what to do; a pull keeps its bytes and resumes."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import pytest
from click.testing import CliRunner

import adapters.downloads.http_transfer as http_transfer
from entrypoints.cli.main import cli
from tests.support.fake_hub import FakeHub
from tests.support.full_disk import FillingDisk
from tests.support.hub_container import hub_container

CONFIG = b'{"model_type": "llama"}'
WEIGHTS = os.urandom(300_000)
ROOM = 100_000  # bytes of the weights that fit before the disk is full
FREE = 1_000  # what the disk reports free for the early check
ADVICE = "free space under MLX_MANAGER_HOME ({}), or point MLX_MANAGER_HOME at a disk with room"


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
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
    partial = [p for p in (tmp_path / "staging").rglob("*") if p.is_file() and "model.safetensors" in p.name]
    assert [p.stat().st_size for p in partial] == [ROOM]  # the partial data stays
    # The line names the partial file the user can inspect (was its scratch folder, `<rev>.meta`) and its bytes.
    assert line.startswith(f"Error: model.safetensors: cannot write the partial file {partial[0]}: "
                           f"No space left on device ({ROOM} bytes kept; free space, then resume); "), line
    assert line.endswith(f"; free space under MLX_MANAGER_HOME ({tmp_path}), or point MLX_MANAGER_HOME at a disk "
                         "with room")
    assert len(hub.requests_for("model.safetensors", "GET")) == 1  # not retried as a network failure

    monkeypatch.delattr(http_transfer, "open")  # space freed
    resumed = run(container, "downloads", "resume", "1")
    assert resumed.exit_code == 0, resumed.output
    assert (tmp_path / "models" / "tiny-v1" / "model.safetensors").read_bytes() == WEIGHTS
    assert hub.requests_for("model.safetensors", "GET")[-1].headers.get("Range") == f"bytes={ROOM}-"


def test_a_resume_on_a_disk_still_full_exits_10_as_the_pull_did(container, hub, tmp_path, monkeypatch):
    monkeypatch.setattr(http_transfer, "open", FillingDisk(ROOM, "model.safetensors"), raising=False)
    assert run(container, "pull", "tiny", "--quiet").exit_code == 10
    monkeypatch.setattr(http_transfer, "open", FillingDisk(0, "model.safetensors"), raising=False)  # still full
    resumed = run(container, "downloads", "resume", "1")
    assert resumed.exit_code == 10, resumed.output  # was exit 6: the row keeps only the error's text
    line = resumed.output.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert line.startswith("Error: download 1 (tiny-v1) failed: model.safetensors: cannot write ") and \
        "No space left on device" in line and f"({ROOM} bytes kept; free space, then resume)" in line
    assert line.endswith("; " + ADVICE.format(tmp_path))
    as_json = run(container, "downloads", "resume", "1", "--json")
    assert as_json.exit_code == 10 and json.loads(as_json.output)["status"] == "failed"


def test_too_little_free_space_is_refused_before_any_byte_as_a_full_disk(container, hub, tmp_path, monkeypatch):
    from adapters.filesystem.model_store import FilesystemModelStore

    free_space = FilesystemModelStore.free_staging_bytes
    monkeypatch.setattr(FilesystemModelStore, "free_staging_bytes", lambda self: FREE)
    numbers = f"not enough disk space for tiny-v1: {len(CONFIG) + len(WEIGHTS)} more bytes needed, {FREE} free " \
              f"under {tmp_path}"
    result = run(container, "pull", "tiny", "--quiet")
    assert result.exit_code == 10, result.output  # was exit 2, as if the user had made a mistake
    assert result.output.strip() == f"Error: {numbers}; {ADVICE.format(tmp_path)}"
    assert hub.requests_for("model.safetensors", "GET") == []
    resumed = run(container, "downloads", "resume", "1")
    assert resumed.exit_code == 10, resumed.output
    assert resumed.output.strip() == f"Error: download 1 (tiny-v1) failed: {numbers}; {ADVICE.format(tmp_path)}"
    monkeypatch.setattr(FilesystemModelStore, "free_staging_bytes", free_space)  # space freed
    assert run(container, "downloads", "resume", "1").exit_code == 0
    assert (tmp_path / "models" / "tiny-v1" / "model.safetensors").read_bytes() == WEIGHTS


def test_a_pull_started_over_http_shows_the_refusal_on_its_row_and_events(container, hub, tmp_path, monkeypatch):
    from starlette.testclient import TestClient

    from adapters.filesystem.model_store import FilesystemModelStore
    from entrypoints.http.app import create_app

    monkeypatch.setattr(FilesystemModelStore, "free_staging_bytes", lambda self: FREE)
    numbers = f"not enough disk space for tiny-v1: {len(CONFIG) + len(WEIGHTS)} more bytes needed, {FREE} free " \
              f"under {tmp_path}"
    with TestClient(create_app(container)) as client:
        started = client.post("/api/downloads", json={"model": "tiny"})
        assert started.status_code == 202, started.text  # in the background: the row says how it ended
        download_id = started.json()["id"]
        with client.stream("GET", f"/api/downloads/{download_id}/events") as events:
            last = [line for line in events.iter_lines() if line.startswith("data: ")][-1]
        assert json.loads(last[len("data: "):])["status"] == "failed"
        assert json.loads(last[len("data: "):])["error"] == numbers
        row = client.get(f"/api/downloads/{download_id}").json()
        assert (row["status"], row["error"]) == ("failed", numbers)
    assert hub.requests_for("model.safetensors", "GET") == []


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
