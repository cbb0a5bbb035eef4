"""Loading a sharded model that mlx-lm cannot shard that way is a clear 400 (NotSupported) naming why, and no
rank process outlives the failed start. Real ranks (mlx.launch, ring backend, two on localhost)."""

from __future__ import annotations

import json
import os

import pytest

from adapters.mlx.distributed.runtime import MlxDistributedRuntime
from application.inference.ports import NotSupported
from domain.enums import ModelType
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow


def _rank_processes(path) -> int:
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        count += b"adapters.mlx.distributed.rank" in cmdline and str(path).encode() in cmdline
    return count


def test_pipeline_on_an_architecture_mlx_lm_cannot_pipeline_is_refused(tmp_path):
    llama = cached_model("llama", tmp_path / "models")
    model = tmp_path / "llama-indexed"
    model.mkdir()
    for item in llama.iterdir():
        (model / item.name).write_bytes(item.read_bytes())
    (model / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {}}))
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text(json.dumps({"hosts": [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}] * 2}))
    runtime = MlxDistributedRuntime(hostfile, mode="pipeline")
    with pytest.raises(NotSupported, match="does not support pipelining.*try --tensor"):
        runtime.load("llama", model, ModelType.TEXT_GEN)
    assert _rank_processes(model) == 0
    # Without the index mlx-lm could not pick a stage's files: refused before any rank starts.
    (model / "model.safetensors.index.json").unlink()
    with pytest.raises(NotSupported, match="model.safetensors.index.json"):
        runtime.load("llama", model, ModelType.TEXT_GEN)
