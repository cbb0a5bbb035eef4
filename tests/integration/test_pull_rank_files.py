"""`mlxm pull NAME --rank R --ranks N`: only one pipeline rank's files, from the loopback hub, with the real
HF client and the real container (SQLite under tmp_path). The file choice mirrors mlx-lm's `sharded_load`;
the selection is checked against what a real pipeline stage of the tiny ministral3 loads."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import pytest
from click.testing import CliRunner

from domain.downloads.rank_files import RankShard, pipeline_layers, rank_weight_files
from entrypoints.cli.main import cli
from tests.support.fake_hub import FakeHub
from tests.support.hub_container import hub_container
from tests.support.tiny_sharded import build_tiny_ministral3

LAYER_FILES = [f"model-layer-{i:02d}.safetensors" for i in range(4)]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, bytes]:
    folder = build_tiny_ministral3(tmp_path_factory.mktemp("m3") / "m3")  # 4 layers, one file per layer + rest
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def hub(model_files):
    with FakeHub() as h:
        h.add_repo("org/m3", model_files)
        h.add_repo("org/one-file", {"config.json": model_files["config.json"], "model.safetensors": b"\0" * 64})
        yield h


@pytest.fixture
def container(hub, tmp_path, monkeypatch):
    return hub_container(hub, tmp_path, monkeypatch, {
        "default_model": "tiny-m3-v1",
        "models": [{"id": "tiny-m3-v1", "aliases": ["m3"], "type": "text-gen", "family": "ministral3",
                    "sources": [{"kind": "huggingface_repo", "value": "org/m3"}]}],
    })


def run(container, *args):
    return CliRunner().invoke(cli, list(args), obj=container, catch_exceptions=False)


def fetched(hub, repo: str) -> set[str]:
    return {r.path.split("?")[0].rsplit("/", 1)[-1] for r in hub.requests_for(f"/{repo}/resolve/", "GET")}


def test_the_split_is_mlx_lms_rank_0_holds_the_last_layers():
    assert [list(pipeline_layers(4, RankShard(r, 2))) for r in range(2)] == [[2, 3], [0, 1]]
    assert [list(pipeline_layers(5, RankShard(r, 2))) for r in range(2)] == [[2, 3, 4], [0, 1]]
    assert [list(pipeline_layers(7, RankShard(r, 3))) for r in range(3)] == [[4, 5, 6], [2, 3], [0, 1]]


def test_the_selection_matches_what_a_real_pipeline_stage_loads(model_files):
    """mlx-lm's own PipelineMixin on the real model class decides the layers; our selection must agree."""
    from mlx_lm.models.ministral3 import Model, ModelArgs

    config = json.loads(model_files["config.json"])
    weight_map = json.loads(model_files["model.safetensors.index.json"])["weight_map"]

    class Group:  # what PipelineMixin.pipeline reads of an mx.distributed group
        def __init__(self, rank, size):
            self._rank, self._size = rank, size

        def rank(self):
            return self._rank

        def size(self):
            return self._size

    for rank in range(2):
        model = Model(ModelArgs.from_dict(config))
        model.model.pipeline(Group(rank, 2))
        stage = range(model.model.start_idx, model.model.end_idx)
        assert pipeline_layers(config["num_hidden_layers"], RankShard(rank, 2)) == stage
        expected = {"model-rest.safetensors"} | {LAYER_FILES[i] for i in stage}
        assert rank_weight_files(weight_map, config["num_hidden_layers"], RankShard(rank, 2)) == expected


def test_pull_rank_fetches_only_that_ranks_files_and_a_full_pull_fetches_the_rest(container, hub, tmp_path):
    result = run(container, "pull", "m3", "--rank", "1", "--ranks", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert any("rank 1 of 2 (pipeline): 3 of 5 weight files, layers 0-1" in n for n in data["notes"])
    got = fetched(hub, "org/m3")
    assert got & set(LAYER_FILES) == {"model-layer-00.safetensors", "model-layer-01.safetensors"}
    assert {"model-rest.safetensors", "config.json", "model.safetensors.index.json", "tokenizer.json"} <= got
    folder = Path(data["local_path"])
    assert not (folder / "model-layer-02.safetensors").exists() and (folder / "model-layer-01.safetensors").is_file()
    listed = json.loads(run(container, "show", "tiny-m3-v1", "--json").output)
    assert "rank-files:1/2" in listed["tags"]

    # The same rank again: already installed. Another rank's or the full model: the rest is fetched.
    again = json.loads(run(container, "pull", "m3", "--rank", "1", "--ranks", "2", "--json").output)
    assert again["already_installed"] is True
    hub.requests.clear()
    full = run(container, "pull", "m3", "--json")
    assert full.exit_code == 0, full.output
    assert fetched(hub, "org/m3") & set(LAYER_FILES) == {"model-layer-02.safetensors", "model-layer-03.safetensors"}
    full_folder = Path(json.loads(full.output)["local_path"])
    assert all((full_folder / name).is_file() for name in LAYER_FILES)
    assert "rank-files:1/2" not in json.loads(run(container, "show", "tiny-m3-v1", "--json").output)["tags"]
    assert run(container, "verify", "m3").exit_code == 0


def test_rank_pulls_are_refused_where_they_cannot_apply(container):
    one = run(container, "pull", "org/one-file", "--rank", "0", "--ranks", "2")
    assert one.exit_code != 0 and "every rank needs every file; pull it without --rank" in one.output
    assert "Traceback" not in one.output
    bad = run(container, "pull", "m3", "--rank", "2", "--ranks", "2")
    assert bad.exit_code == 2 and "--rank must be below --ranks" in bad.output
    alone = run(container, "pull", "m3", "--rank", "0")
    assert alone.exit_code == 2 and "--rank and --ranks go together" in alone.output
