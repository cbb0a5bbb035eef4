"""Delta updates against the loopback hub: only changed files travel, unchanged ones are linked and
verified, the old revision stays in use until the new one is switched (issue 17)."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest
from click.testing import CliRunner

from entrypoints.cli.main import cli
from tests.support.fake_hub import FakeHub, Fault
from tests.support.hub_container import hub_container

REPO = "org/five"
SHARD = 200_000
V1 = {
    "config.json": b'{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}',
    "model-00001-of-00003.safetensors": os.urandom(SHARD),
    "model-00002-of-00003.safetensors": os.urandom(SHARD),
    "model-00003-of-00003.safetensors": os.urandom(SHARD),
    "tokenizer.json": os.urandom(50_000),
}
CHANGED = "model-00002-of-00003.safetensors"


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.add_repo(REPO, V1)
        h.add_repo("org/other", {"config.json": V1["config.json"], "weights.safetensors": os.urandom(80_000)})
        yield h


@pytest.fixture
def container(hub, tmp_path, monkeypatch):
    return hub_container(hub, tmp_path, monkeypatch, {
        "default_model": "five-v1",
        "models": [
            {"id": "five-v1", "type": "text-gen", "family": "llama", "aliases": ["five"],
             "sources": [{"kind": "huggingface_repo", "value": REPO}]},
            {"id": "other-v1", "type": "text-gen", "family": "llama", "aliases": ["other"],
             "sources": [{"kind": "huggingface_repo", "value": "org/other"}]},
        ],
    })


def mlxm(container, *args):
    return CliRunner().invoke(cli, list(args), obj=container, catch_exceptions=False)


def served(hub: FakeHub, repo: str = REPO) -> dict[str, int]:
    return {key.removeprefix(repo + "/"): n for key, n in hub.bytes_served.items() if key.startswith(repo + "/")}


def test_one_changed_file_of_five_fetches_only_its_bytes(hub, container, tmp_path) -> None:
    assert mlxm(container, "pull", "five", "--quiet").exit_code == 0
    old_dir = (tmp_path / "models" / "five-v1").resolve()
    before = served(hub)
    assert sum(before.values()) == sum(len(b) for b in V1.values())

    v2 = dict(V1, **{CHANGED: os.urandom(SHARD)})
    new_sha = hub.add_repo(REPO, v2)
    result = json.loads(mlxm(container, "update", "five", "--json").output)
    after = served(hub)
    delta = {path: after.get(path, 0) - before.get(path, 0) for path in V1}
    assert delta == {path: (SHARD if path == CHANGED else 0) for path in V1}  # hub-side bytes
    assert result == [{"model_id": "five-v1", "updated": True, "old_revision": result[0]["old_revision"],
                       "new_revision": new_sha, "error": None, "note": None,
                       "bytes_fetched": SHARD, "bytes_reused": sum(len(b) for p, b in V1.items() if p != CHANGED)}]

    new_dir = (tmp_path / "models" / "five-v1").resolve()
    assert new_dir != old_dir and not old_dir.exists()  # switched, then the old revision removed
    for path, data in v2.items():
        assert (new_dir / path).read_bytes() == data
    assert mlxm(container, "verify", "five").exit_code == 0
    with container.uow_factory() as uow:
        sources = {f.path: f.source for f in uow.models.get("five-v1").files}
    assert sources[CHANGED] == f"huggingface_repo:{REPO}"
    assert {s for p, s in sources.items() if p != CHANGED} == {f"installed:{result[0]['old_revision'][:12]}"}


def test_a_failed_delta_update_leaves_the_old_revision_in_use_and_untouched(hub, container, tmp_path) -> None:
    assert mlxm(container, "pull", "five", "--quiet").exit_code == 0
    link = tmp_path / "models" / "five-v1"
    old_dir = link.resolve()
    hub.add_repo(REPO, dict(V1, **{CHANGED: os.urandom(SHARD)}))
    hub.inject(CHANGED, Fault.corrupt())
    failed = mlxm(container, "update", "five")
    assert failed.exit_code != 0 and "expected sha256" in failed.output
    assert link.resolve() == old_dir
    for path, data in V1.items():
        assert (link / path).read_bytes() == data
    assert mlxm(container, "verify", "five").exit_code == 0


def test_a_reused_file_that_does_not_verify_is_fetched_instead(hub, container, tmp_path) -> None:
    assert mlxm(container, "pull", "five", "--quiet").exit_code == 0
    installed = (tmp_path / "models" / "five-v1").resolve()
    damaged = "tokenizer.json"
    (installed / damaged).write_bytes(b"x" * len(V1[damaged]))  # same size, other bytes (bit rot)
    before = served(hub)
    hub.add_repo(REPO, dict(V1, **{CHANGED: os.urandom(SHARD)}))
    outcome = json.loads(mlxm(container, "update", "five", "--json").output)[0]
    after = served(hub)
    assert after[damaged] - before[damaged] == len(V1[damaged])  # refetched, not linked
    assert outcome["bytes_fetched"] == SHARD + len(V1[damaged])
    assert ((tmp_path / "models" / "five-v1") / damaged).read_bytes() == V1[damaged]


def test_update_all_prints_one_summary_with_bytes_fetched_and_reused(hub, container) -> None:
    assert mlxm(container, "pull", "five", "--quiet").exit_code == 0
    assert mlxm(container, "pull", "other", "--quiet").exit_code == 0
    hub.add_repo(REPO, dict(V1, **{CHANGED: os.urandom(SHARD)}))
    result = mlxm(container, "update", "--all")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    reused = sum(len(b) for p, b in V1.items() if p != CHANGED)
    assert any(line.startswith("five-v1: updated ") for line in lines)
    assert "other-v1: up to date" in lines
    assert lines[-1] == (f"1 updated, 1 up to date, 0 failed; fetched 195.3 KB ({SHARD} B), "
                         f"reused {reused / 1024:.1f} KB ({reused} B) from installed revisions")
