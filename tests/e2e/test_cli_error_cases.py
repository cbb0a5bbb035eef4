"""Issue 12 item 7: inputs that ended in exit 70 ("internal error") are usage errors (exit 2) or
clear source errors (exit 6), one line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from application.errors import SourceError
from domain.catalog.model import ModelSource
from domain.enums import SourceKind
from entrypoints.cli.main import cli
from tests.support import fake_hub
from tests.support.fake_hub import FakeHub

MLXM = Path(sys.executable).parent / "mlxm"


def _last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")
@pytest.mark.parametrize("argv, says", [
    ([b"show", b"\xff\xfe"], "not valid UTF-8 text"),
    ([b"keys", b"create", b"\xff"], "not valid UTF-8 text"),
    ([b"users", b"disable", b"99999999999999999999999"], "is not a user id"),
    ([b"users", b"approve", b"99999999999999999999999"], "is not a user id"),
    ([b"audit", b"--since", b"99999999999d"], "further than a date can go"),
    ([b"unload", b"tiny", b"--url", b"http://[::1"], "is not a valid URL"),
    ([b"ps", b"--url", b"http://127.0.0.1:99999"], "is not a valid URL"),
])
def test_bad_arguments_are_one_line_usage_errors(tmp_path, argv, says):
    # The real console script: argv bytes that are not UTF-8 arrive as surrogate escapes, as in a shell.
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path)}
    result = subprocess.run([bytes(MLXM), *argv], env=env, capture_output=True, timeout=60)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert _last_line(stderr).startswith("Error: ") and says in _last_line(stderr), stderr


def test_a_huge_user_id_over_http_is_a_404_not_a_500(tmp_path):
    from starlette.testclient import TestClient

    from entrypoints.http.app import create_app
    from tests.support.auth_server import sqlite_container

    container = sqlite_container(tmp_path)
    admin = container.api_key_service().create("owner").secret
    with TestClient(create_app(container)) as client:
        response = client.post("/api/users/99999999999999999999999/approve", headers={"authorization": f"Bearer {admin}"})
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"


BAD_LISTINGS = [
    ("size 10**30", lambda e: e.update(size=10**30), "not a byte count"),
    ("size 'abc'", lambda e: e.update(size="abc"), "not a byte count"),
    ("size -1", lambda e: e.update(size=-1), "not a byte count"),
    ("no oid", lambda e: e.pop("oid"), "malformed listing"),
    ("300-char name", lambda e: e.update(path="w" * 300 + ".safetensors"), "too long for a filesystem"),
]


@pytest.fixture
def bad_hub(monkeypatch):
    with FakeHub() as hub:
        hub.add_repo("org/tiny", {"config.json": b"{}", "model.safetensors": b"\0" * 64})
        yield hub


def _serve_listing(monkeypatch, mutate) -> None:
    original = fake_hub._tree_entries

    def crafted(commit, prefix, recursive):
        entries = [dict(entry) for entry in (original(commit, prefix, recursive) or [])]
        for entry in entries:
            if entry.get("type") == "file" and entry["path"].endswith(".safetensors"):
                mutate(entry)
        return entries

    monkeypatch.setattr(fake_hub, "_tree_entries", crafted)


@pytest.mark.parametrize("label, mutate, says", BAD_LISTINGS, ids=[case[0] for case in BAD_LISTINGS])
def test_a_bad_hub_listing_is_a_source_error(bad_hub, monkeypatch, tmp_path, label, mutate, says):
    from adapters.huggingface.downloader import HuggingFaceDownloader

    _serve_listing(monkeypatch, mutate)
    downloader = HuggingFaceDownloader(endpoint=bad_hub.url)
    with pytest.raises(SourceError, match=says):
        downloader.list_files(ModelSource(SourceKind.HUGGINGFACE_REPO, "org/tiny"), None, tmp_path)


def test_mlxm_pull_of_a_bad_listing_exits_with_a_source_error(bad_hub, monkeypatch, tmp_path):
    _serve_listing(monkeypatch, lambda e: e.update(size=10**30))
    monkeypatch.setenv("HF_ENDPOINT", bad_hub.url)
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["pull", "org/tiny"])
    assert result.exit_code == 6, result.output
    assert "internal error" not in result.output and "not a byte count" in _last_line(result.output)
