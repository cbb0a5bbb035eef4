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


def test_speak_into_a_fifo_writes_into_it_and_never_replaces_it(tmp_path, monkeypatch):
    # `-o /dev/stdout` or a pipe: a temporary file renamed over the path replaced the device itself
    # (`-o /dev/null` as root left /dev/null a WAV file). A FIFO stands in for the device here.
    import os
    import stat
    import threading

    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-tts", ModelType.AUDIO))
    fifo = tmp_path / "out.wav"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = CliRunner().invoke(cli, ["speak", "tiny-tts", "hello", "-o", str(fifo)], obj=container)
    if reader.is_alive():  # nothing was written into the FIFO: open it once so the reader ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(10)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert received and received[0].startswith(b"RIFF")


@pytest.mark.parametrize("device", ["/dev/null", "fifo"])
def test_transcribe_of_something_that_is_not_a_regular_file_is_refused(tmp_path, monkeypatch, device):
    # `/dev/zero` was read until memory ran out (5 GB in 5 s); a FIFO without a writer hung. Stand-ins that
    # end at once if read (so a regression fails instead of hanging): /dev/null, a FIFO with a silent writer.
    import os
    import threading

    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-whisper", ModelType.AUDIO))
    writer = None
    if device == "fifo":
        device = str(tmp_path / "in.wav")
        os.mkfifo(device)
        writer = threading.Thread(target=lambda: os.close(os.open(device, os.O_WRONLY)), daemon=True)
        writer.start()
    result = CliRunner().invoke(cli, ["transcribe", "tiny-whisper", device], obj=container)
    if writer is not None and writer.is_alive():  # the FIFO was never opened for reading: release the writer
        os.close(os.open(device, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(10)
    assert "is not a regular file" in _one_line_usage_error(result)


@pytest.mark.parametrize("argv", [
    ["catalog", "sign", "{device}", "--key", "{device}"],
    ["catalog", "verify", "{device}", "--pubkey", "AAAA"],
    ["serve", "--hosts", "{device}"],
    ["run", "tiny", "hi", "--image", "{device}"],
])
def test_files_read_whole_must_be_regular_files(tmp_path, monkeypatch, argv):
    # /dev/zero was read until memory ran out (catalog sign, serve --hosts: MemoryError). /dev/null ends at
    # once if read, so a regression fails here instead of filling memory.
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, [arg.replace("{device}", "/dev/null") for arg in argv])
    assert "'/dev/null' is not a regular file" in _one_line_usage_error(result)
