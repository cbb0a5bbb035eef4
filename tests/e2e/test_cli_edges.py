"""Edges the CLI sweep left open (session 4's notes), through the real console script: one `Error: ...` line,
the CLI's exit code conventions, no SQLAlchemy help link, no noise from libraries mlxm imports."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_cli_sweep import MLXM, _mlxm, _one_error_line

pytestmark = pytest.mark.skipif(not MLXM.exists(), reason="console script not installed")


def _home_with_database(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    assert _mlxm("list", home=home).returncode == 0  # the library's database exists
    return home


# -- mlxm db copy -------------------------------------------------------------------------------------------


def test_db_copy_to_a_server_that_refuses_is_unavailable_naming_it_without_password_or_link(tmp_path):
    home = _home_with_database(tmp_path)
    target = "postgresql+psycopg://bob:s3cret@127.0.0.1:1/mlxm"  # loopback port 1: nothing listens
    line = _one_error_line(_mlxm("db", "copy", "--to", target, home=home), 7)
    assert "postgresql+psycopg://bob:***@127.0.0.1:1/mlxm" in line and "Connection refused" in line, line
    assert "s3cret" not in line and "sqlalche.me" not in line and "Background on this error" not in line


@pytest.mark.parametrize("target, exit_code, says", [
    ("postgresql+psycopg://bob:s3cret@127.0.0.1:99999/mlxm", 7, 'invalid port number: "99999"'),
    ("postgresql+psycopg://bob:s3cret@127.0.0.1:1/mlxm?sslmode=bogus", 7, 'invalid sslmode value: "bogus"'),
    ("postgresql+nodriver://bob:s3cret@127.0.0.1:1/mlxm", 2, "Can't load plugin"),
    ("nonsense://bob:s3cret@x", 2, "not a database URL mlxm uses"),
    ("sqlite://", 2, "a SQLite URL needs a file"),
])
def test_db_copy_to_a_malformed_url_is_one_line_without_the_link(tmp_path, target, exit_code, says):
    home = _home_with_database(tmp_path)
    line = _one_error_line(_mlxm("db", "copy", "--to", target, home=home), exit_code)
    assert says in line and "s3cret" not in line and "sqlalche.me" not in line, line


def test_db_copy_into_a_folder_that_is_a_file_names_it(tmp_path):
    home = _home_with_database(tmp_path)
    (tmp_path / "notes").write_text("mine")
    line = _one_error_line(_mlxm("db", "copy", "--to", f"sqlite:///{tmp_path / 'notes' / 'mlxm.db'}", home=home), 7)
    assert f"cannot open the target database sqlite:///{tmp_path / 'notes' / 'mlxm.db'}" in line, line
    assert f"{tmp_path / 'notes'} is not a folder" in line
    assert (tmp_path / "notes").read_text() == "mine"


def test_db_copy_from_a_missing_database_is_refused_and_creates_nothing(tmp_path):
    source = tmp_path / "gone" / "mlxm.db"
    result = _mlxm("db", "copy", "--to", f"sqlite:///{tmp_path / 'target.db'}", home=tmp_path / "home",
                   MLX_MANAGER_DATABASE_URL=f"sqlite:///{source}")
    line = _one_error_line(result, 7)
    assert f"the source database {source} does not exist" in line, line
    assert not source.parent.exists() and not (tmp_path / "target.db").exists()


# -- mlxm probe --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_probe_of_an_audio_model_prints_no_pytorch_advice_from_transformers(tmp_path, tmp_path_factory):
    from tests.support.tiny_models import cached_model

    whisper = cached_model("whisper", tmp_path_factory.getbasetemp() / "tiny-models")
    home = tmp_path / "home"
    assert _mlxm("import", str(whisper), "--name", "tiny-whisper", home=home).returncode == 0
    # As a user's shell has it: this test process imported mlx-lm, which set TRANSFORMERS_NO_ADVISORY_WARNINGS.
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSFORMERS_", "MLX_"))}
    environment.update(MLX_MANAGER_HOME=str(home), MLX_MANAGER_OFFLINE="true")
    result = subprocess.run([str(MLXM), "probe", "tiny-whisper"], env=environment, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "supports_stt:           True" in result.stdout  # the probe really loaded the model
    assert "PyTorch was not found" not in result.stderr, result.stderr
    assert "[transformers]" not in result.stderr, result.stderr


# -- import --name -----------------------------------------------------------------------------------------


def test_import_with_a_name_that_is_not_an_id_says_what_it_became(tmp_path):
    from tests.support.model_folders import write_model_folder

    folder, home = write_model_folder(tmp_path / "folder"), tmp_path / "home"
    result = _mlxm("import", str(folder), "--name", "Mödel", "--json", home=home)
    assert result.returncode == 0, result.stderr
    assert __import__("json").loads(result.stdout)["id"] == "m-del"  # stdout stays JSON
    assert result.stderr.splitlines() == [
        "Note: named m-del (from Mödel): model ids are lower-case letters, digits, '.', '-' and '_'"]
    assert _mlxm("show", "m-del", home=home).returncode == 0

    same = _mlxm("import", str(write_model_folder(tmp_path / "other", seed=1)), "--name", "already-an-id", home=home)
    assert same.returncode == 0 and same.stdout.startswith("Imported already-an-id"), same.stdout
    assert "Note:" not in same.stderr, same.stderr


@pytest.mark.slow
def test_probe_of_a_vision_model_prints_no_transformers_warnings(tmp_path, tmp_path_factory):
    # transformers warned twice here: the tiny config's bos token outside its vocabulary (tokenizer load),
    # and `enable_thinking`, which mlx-vlm passes to a template that never reads it (each templated prompt).
    from tests.support.tiny_models import cached_model

    vlm = cached_model("qwen2_vl", tmp_path_factory.getbasetemp() / "tiny-models")
    home = tmp_path / "home"
    assert _mlxm("import", str(vlm), "--name", "tiny-vlm", home=home).returncode == 0
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSFORMERS_", "MLX_"))}
    environment.update(MLX_MANAGER_HOME=str(home), MLX_MANAGER_OFFLINE="true")
    result = subprocess.run([str(MLXM), "probe", "tiny-vlm"], env=environment, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "supports_multi_image:   True" in result.stdout  # the two-image generation really ran
    assert "[transformers]" not in result.stderr, result.stderr
    assert "enable_thinking" not in result.stderr and "bos_token_id" not in result.stderr, result.stderr
