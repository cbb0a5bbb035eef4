"""Shell completion (click's `_MLXM_COMPLETE`) of model, profile and download names, as a shell runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from entrypoints.cli.main import LAZY_COMMANDS, cli
from tests.support.model_folders import write_model_folder

MLXM = str(Path(sys.executable).with_name("mlxm"))

_COMPLETION_PROBE = """
import json, os, sys
from entrypoints.cli.main import main
try:
    main()
except SystemExit:
    pass
loaded = sorted(m for m in ("sqlalchemy", "dependency_injector", "pydantic", "mlx", "huggingface_hub") if m in sys.modules)
sys.stderr.write("\\nIMPORTED " + json.dumps(loaded) + "\\n")
"""


def _complete(home: Path, words: str, cword: int) -> tuple[list[str], list[str]]:
    env = {**os.environ, "MLX_MANAGER_HOME": str(home), "_MLXM_COMPLETE": "bash_complete",
           "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    out = subprocess.run([sys.executable, "-c", _COMPLETION_PROBE], capture_output=True, text=True, env=env,
                         timeout=120)
    names = [line.split(",", 1)[1] for line in out.stdout.splitlines() if line.startswith("plain,")]
    return names, json.loads(out.stderr.rsplit("IMPORTED ", 1)[1])


def _mlxm(home: Path, *args: str) -> str:
    env = {**os.environ, "MLX_MANAGER_HOME": str(home)}
    done = subprocess.run([MLXM, *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_models_profiles_and_downloads_complete_and_a_deleted_model_is_not_offered(tmp_path):
    home = tmp_path / "home"
    _mlxm(home, "import", str(write_model_folder(tmp_path / "TinyOne")), "--name", "tiny-one")
    _mlxm(home, "import", str(write_model_folder(tmp_path / "Other", seed=1)), "--name", "other-model")
    _mlxm(home, "profile", "create", "tiny-chat", "tiny-one", "--temperature", "0.1")

    names, loaded = _complete(home, "mlxm show ti", 2)
    assert names == ["tiny-one", "tiny-chat"]
    assert loaded == [], f"completion imported {loaded}"
    assert _complete(home, "mlxm profile show t", 3)[0] == ["tiny-chat"]
    assert "qwen3-0.6b" in _complete(home, "mlxm pull qwen3-0.6", 2)[0]  # catalog aliases for pull

    _mlxm(home, "profile", "rm", "tiny-chat")
    _mlxm(home, "rm", "tiny-one")
    assert _complete(home, "mlxm show ti", 2)[0] == []  # read from the database itself: never stale
    assert _complete(home, "mlxm run ", 2)[0] == ["other-model"]


def test_completion_on_a_new_home_offers_nothing_and_does_not_fail(tmp_path):
    names, loaded = _complete(tmp_path / "empty", "mlxm show ", 2)
    assert names == [] and loaded == []
    assert not (tmp_path / "empty").exists()  # completing never creates a home or a database


def test_every_lazy_command_resolves_to_a_command_of_that_name():
    ctx = click.Context(cli)
    for name in LAZY_COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name, name


def test_every_command_module_command_is_registered():
    import importlib

    modules = {module for module, _ in LAZY_COMMANDS.values()} - {"entrypoints.cli.catalog.remote"}
    defined = set()
    for module in modules:
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, click.Command) and value.name:
                defined.add(value.name)
    subcommands = {sub for group in (cli.get_command(click.Context(cli), n) for n in LAZY_COMMANDS)
                   if isinstance(group, click.Group) for sub in group.commands}
    assert defined - set(LAZY_COMMANDS) - subcommands == set()


def test_catalog_keeps_its_remote_subcommands():
    result = CliRunner().invoke(cli, ["catalog", "--help"])
    assert result.exit_code == 0
    for sub in ("show", "keygen", "sign", "verify", "status", "refresh"):
        assert sub in result.output
