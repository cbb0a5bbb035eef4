"""`mlxm run` ends cleanly when generation stops early (a stop string), as a user runs it.

The engine thread must not be inside an MLX call while the interpreter finalises: that
aborted the process (SIGABRT, exit code 134, "terminate called without an active exception").
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow


def _mlxm(*args, env):
    exe = Path(sys.executable).with_name("mlxm")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("name,kind", [("tiny-llama", "llama"), ("tiny-vlm", "qwen2_vl")])
def test_run_that_stops_on_a_stop_string_exits_cleanly(tmp_path, tmp_path_factory, name, kind):
    options = {"tie_word_embeddings": False} if kind == "llama" else {}
    folder = cached_model(kind, tmp_path_factory.getbasetemp() / "tiny-models", **options)
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path / "home")}
    imported = _mlxm("import", str(folder), "--name", name, "--json", env=env)
    assert imported.returncode == 0, imported.stderr

    full = _mlxm("run", name, "Hello there", "--temperature", "0", "--max-tokens", "40", "--json", env=env)
    assert full.returncode == 0, full.stderr
    text = json.loads(full.stdout)["text"]
    stop = text[12:14]  # a string the greedy reply is known to contain, well before its end
    assert len(stop) == 2
    profile = _mlxm("profile", "create", "stopper", name, "--temperature", "0", "--stop", stop, env=env)
    assert profile.returncode == 0, profile.stderr

    for args in (("--json",), ()):
        ran = _mlxm("run", "stopper", "Hello there", "--max-tokens", "1000", *args, env=env)
        assert ran.returncode == 0, (ran.returncode, ran.stderr[-500:])
        assert "terminate called" not in ran.stderr
    reply = json.loads(_mlxm("run", "stopper", "Hello there", "--max-tokens", "1000", "--json", env=env).stdout)
    assert reply["finish_reason"] == "stop" and reply["text"] == text[: text.find(stop)]
