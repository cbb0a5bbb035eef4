"""`mlxm import` then `mlxm run` as a user types them: fresh processes, real SQLite, real MLX."""

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


def test_import_run_and_profile_in_subprocesses(tmp_path, tmp_path_factory):
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    llama = cached_model("llama", tmp_path_factory.getbasetemp() / "tiny-models", tie_word_embeddings=False)
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path / "home")}
    imported = _mlxm("import", str(llama), "--name", "tiny-llama", "--json", env=env)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["type"] == "text-gen"
    assert [m["id"] for m in json.loads(_mlxm("list", "--json", env=env).stdout)] == ["tiny-llama"]

    ran = _mlxm("run", "tiny-llama", "Hello there", "--temperature", "0", "--max-tokens", "8", env=env)
    assert ran.returncode == 0, ran.stderr
    model, tokenizer = mlx_lm.load(str(llama))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hello there"}], add_generation_prompt=True,
                                           tokenize=False)
    expected = mlx_lm.generate(model, tokenizer, prompt, max_tokens=8, sampler=make_sampler(temp=0.0))
    assert ran.stdout == expected + "\n"

    missing = _mlxm("run", "tiny-lama", "hi", env=env)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("Error: ") and "tiny-llama" in missing.stderr
