"""Exit codes follow the real failure on a full disk where it used to say "a source failed" (6):
`mlxm update` (one model and --all), and a resume of a pull that failed in another process."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import pytest

import adapters.downloads.http_transfer as http_transfer
from tests.integration.test_full_disk_pull_db import (  # noqa: F401 - hub and container are fixtures
    ADVICE,
    CONFIG,
    ROOM,
    WEIGHTS,
    container,
    hub,
    run,
)
from tests.support.full_disk import FillingDisk
from tests.support.hub_container import hub_container


@pytest.mark.parametrize("how", [["tiny"], ["--all"]])
def test_an_update_that_fills_the_disk_exits_10_with_the_pulls_advice(container, hub, tmp_path, monkeypatch, how):
    assert run(container, "pull", "tiny", "--quiet").exit_code == 0
    hub.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": os.urandom(300_000)})
    monkeypatch.setattr(http_transfer, "open", FillingDisk(ROOM, "model.safetensors"), raising=False)
    result = run(container, "update", *how)
    assert result.exit_code == 10, result.output  # --all was exit 6, a failed source
    line = result.output.strip().splitlines()[0]
    assert "Traceback" not in result.output and "No space left on device" in line
    assert line.endswith(ADVICE.format(tmp_path) + (")" if how == ["--all"] else ""))
    assert (tmp_path / "models" / "tiny-v1" / "model.safetensors").read_bytes() == WEIGHTS  # the old one stays


def test_a_pull_that_failed_on_a_full_disk_in_another_process_resumes_here_with_its_own_exit_code(
        hub, tmp_path, monkeypatch):
    # Two containers over one home are two processes' DownloadServices: the row of the first one's failure holds
    # only text, but a resume (or a pull that continues it) runs the pull again here and reports its own error.
    catalog = {"default_model": "tiny-v1", "models": [
        {"id": "tiny-v1", "aliases": ["tiny"], "type": "text-gen", "family": "llama",
         "sources": [{"kind": "huggingface_repo", "value": "org/tiny"}]}]}
    first = hub_container(hub, tmp_path, monkeypatch, catalog)
    monkeypatch.setattr(http_transfer, "open", FillingDisk(ROOM, "model.safetensors"), raising=False)
    assert run(first, "pull", "tiny", "--quiet").exit_code == 10
    other = hub_container(hub, tmp_path, monkeypatch, catalog)
    assert other.download_service() is not first.download_service()
    monkeypatch.setattr(http_transfer, "open", FillingDisk(0, "model.safetensors"), raising=False)  # still full
    for args in (("downloads", "resume", "1"), ("pull", "tiny", "--quiet")):
        result = run(other, *args)
        assert result.exit_code == 10, result.output  # a full disk, not 6 ("a source failed")
        assert result.output.strip().endswith("; " + ADVICE.format(tmp_path)) and "Traceback" not in result.output
    assert [d.id for d in other.download_service().list()] == [1]  # the pull continued the failed row
    monkeypatch.delattr(http_transfer, "open")  # space freed
    assert run(other, "downloads", "resume", "1").exit_code == 0
    assert (tmp_path / "models" / "tiny-v1" / "model.safetensors").read_bytes() == WEIGHTS
