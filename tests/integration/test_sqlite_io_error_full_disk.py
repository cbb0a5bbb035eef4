"""SQLite reports a write it could not make as "disk I/O error" (SQLITE_IOERR) unless the OS said ENOSPC, e.g.
when its WAL cannot grow: with the database's folder (nearly) full at that moment it is a full disk (exit 10),
with room it stays "damaged" (exit 7). The IOERR is real: the command runs in a child process whose file size
limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes every write past the first page fail with EFBIG; only the free space
the check reads is set, since the test cannot fill this machine's disk."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

MLXM = "import sys; sys.argv[0] = 'mlxm'; from entrypoints.cli.main import main; main()"
DRIVER = textwrap.dedent("""
    import os, resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
    if os.environ.get("FREE_BYTES"):
        import adapters.sqlalchemy.file_guard as guard
        guard._free_bytes = lambda folder: int(os.environ["FREE_BYTES"])
    from entrypoints.cli.main import main
    sys.argv = ["mlxm", *sys.argv[1:]]
    main()
""")


def _mlxm(tmp_path, *argv, limited=False, free_bytes=None):
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path), "MLX_MANAGER_OFFLINE": "true"}
    env.pop("MLX_MANAGER_DATABASE_URL", None)
    if free_bytes is not None:
        env["FREE_BYTES"] = str(free_bytes)
    command = [sys.executable, "-c", DRIVER, *argv] if limited else [sys.executable, "-c", MLXM, *argv]
    return subprocess.run(command, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)


@pytest.fixture
def home(tmp_path):
    created = _mlxm(tmp_path, "routes", "list")  # the database exists, at head, before the limit
    assert created.returncode == 0, created.stderr
    return tmp_path


def test_a_disk_io_error_on_a_full_disk_is_no_space_left_exit_10(home):
    result = _mlxm(home, "routes", "add", "gpt-", "openai", limited=True, free_bytes=0)
    assert result.returncode == 10, result.stderr  # was exit 7, "the database is damaged (disk I/O error)"
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"Error: the database {home / 'mlxm.db'} cannot grow: no space left on device; nothing of this change "
        f"was written; free space under MLX_MANAGER_HOME ({home}), or point MLX_MANAGER_HOME at a disk with room")
    assert _mlxm(home, "routes", "list", "--json").stdout.strip() == "[]"  # nothing was written


@pytest.mark.parametrize("free_bytes", [None, 10 << 20])  # this machine's real free space; 10 MiB
def test_a_disk_io_error_with_room_on_the_disk_still_reads_as_damage(home, free_bytes):
    result = _mlxm(home, "routes", "add", "gpt-", "openai", limited=True, free_bytes=free_bytes)
    assert result.returncode == 7, result.stderr
    assert result.stderr.strip() == ("Error: the database is damaged (disk I/O error); restore it from a backup "
                                     "(mlxm keeps mlxm.db.before-*.bak copies from upgrades)")
