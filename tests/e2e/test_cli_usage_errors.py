"""Paths users give the CLI that cannot be used are one-line usage errors (exit 2), never "internal error"."""

import click
import pytest
from click.testing import CliRunner

from domain.enums import ModelType
from entrypoints.cli.base import MlxmGroup
from entrypoints.cli.main import cli
from tests.support.frontends import add_models, fake_container


def _one_line_usage_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: "), result.output
    return lines[-1]


def test_speak_into_a_missing_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-whisper", ModelType.AUDIO))
    target = tmp_path / "no" / "such" / "dir" / "x.wav"
    result = CliRunner().invoke(cli, ["speak", "tiny-whisper", "hello", "-o", str(target)], obj=container)
    assert "does not exist" in _one_line_usage_error(result)
    assert not target.parent.exists()


@pytest.mark.parametrize("error", [
    FileNotFoundError(2, "No such file or directory", "/nowhere/x.wav"),
    PermissionError(13, "Permission denied", "/root/x"),
    IsADirectoryError(21, "Is a directory", "/tmp"),
    NotADirectoryError(20, "Not a directory", "/etc/passwd/x"),
])
def test_an_unusable_path_raised_by_any_command_is_a_one_line_usage_error(error):
    @click.group(cls=MlxmGroup)
    def group():
        pass

    @group.command("write")
    def write():
        raise error

    line = _one_line_usage_error(CliRunner().invoke(group, ["write"]))
    assert error.filename in line and error.strerror in line
