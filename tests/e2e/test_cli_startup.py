"""`mlxm --help` and `mlxm list` stay light: no mlx, transformers or huggingface_hub imports."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("mlx", "mlx_lm", "mlx_audio", "transformers", "huggingface_hub", "torch", "numpy")
# Read commands (issue 19) also leave the server, HTTP clients and crypto alone. (pydantic-settings is no
# longer a dependency, but dependency-injector imports it whenever a venv still has it: not checked here.)
READ_HEAVY = HEAVY + ("uvicorn", "httpx", "cryptography", "alembic", "adapters.threads",
                      "adapters.mlx.runtime", "adapters.huggingface",
                      # dependency-injector's optional framework probes (entrypoints.composition.di)
                      "fastapi", "starlette", "yaml",
                      # repositories (and their ORM records) no read command uses: the unit of work makes
                      # each repository on first use
                      "adapters.sqlalchemy.auth_repositories", "adapters.sqlalchemy.auth_tables",
                      "adapters.sqlalchemy.host_repositories", "adapters.sqlalchemy.library_repositories",
                      "adapters.sqlalchemy.routing_repository", "adapters.sqlalchemy.download_repository")

_PROBE = """
import json, sys
from entrypoints.cli.main import cli
try:
    cli(args=sys.argv[1:], prog_name="mlxm")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
sys.stderr.write("\\nIMPORTED " + json.dumps({{"heavy": heavy, "code": code}}) + "\\n")
"""


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "--json"], ["profile", "list", "--json"]])
def test_light_commands_import_no_heavy_libraries(tmp_path, args):
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args], capture_output=True, text=True,
                         env=env, timeout=120)
    report = json.loads(out.stderr.rsplit("IMPORTED ", 1)[1])
    assert report["code"] in (0, None), out.stderr
    assert report["heavy"] == [], f"mlxm {' '.join(args)} imported {report['heavy']}"


# Settings are read without pydantic (entrypoints.composition.env_settings), and `show`'s text view reads the
# domain model (cli/library/detail.py); `--json` prints through the HTTP API's pydantic DTOs, so it imports it.
_NEEDS_PYDANTIC = (["list", "--json"], ["show", "tiny-one", "--json"])


@pytest.mark.parametrize("args", [["list"], ["show", "tiny-one"], ["search", "tiny"], ["profile", "list"],
                                  ["catalog"], ["select"], ["list", "--json"],
                                  ["show", "tiny-one", "--json"]])
def test_read_commands_import_only_what_they_need(tmp_path_factory, args):
    home = _library_home(tmp_path_factory)
    env = {**os.environ, "MLX_MANAGER_HOME": str(home), "MLX_MANAGER_OFFLINE": "true"}
    heavy = READ_HEAVY if args in _NEEDS_PYDANTIC else READ_HEAVY + ("pydantic", "pydantic_core")
    out = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=heavy), *args], capture_output=True,
                         text=True, env=env, timeout=120)
    report = json.loads(out.stderr.rsplit("IMPORTED ", 1)[1])
    assert report["code"] in (0, None), out.stderr
    assert report["heavy"] == [], f"mlxm {' '.join(args)} imported {report['heavy']}"


_LIBRARY_HOMES: dict[str, Path] = {}


def _library_home(tmp_path_factory) -> Path:
    """One home with a model (imported, so the database is at head) shared by the read-command probes."""
    if "home" not in _LIBRARY_HOMES:
        from tests.support.model_folders import write_model_folder

        base = tmp_path_factory.mktemp("read-commands")
        env = {**os.environ, "MLX_MANAGER_HOME": str(base / "home")}
        exe = Path(sys.executable).with_name("mlxm")
        folder = write_model_folder(base / "TinyOne")
        subprocess.run([str(exe), "import", str(folder), "--name", "tiny-one"], env=env, check=True,
                       capture_output=True, timeout=120)
        _LIBRARY_HOMES["home"] = base / "home"
    return _LIBRARY_HOMES["home"]


def test_console_script_help_and_list_json(tmp_path):
    exe = Path(sys.executable).with_name("mlxm")
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path)}
    shown = subprocess.run([str(exe), "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert shown.returncode == 0 and "serve" in shown.stdout and "profile" in shown.stdout
    listed = subprocess.run([str(exe), "list", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    missing = subprocess.run([str(exe), "show", "nothing-here"], capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().startswith("Error: ") and len(missing.stderr.strip().splitlines()) == 1


_STARTUP_PROBE = """
import json, sys
from entrypoints.cli.main import cli
try:
    cli(args=sys.argv[1:], prog_name="mlxm")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = sorted(m for m in ("alembic", "cryptography", "adapters.threads.audit_writer") if m in sys.modules)
sys.stderr.write("\\nIMPORTED " + json.dumps({"loaded": loaded, "code": code}) + "\\n")
"""


def _startup_imports(home, *args):
    env = {**os.environ, "MLX_MANAGER_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", _STARTUP_PROBE, *args], capture_output=True, text=True, env=env,
                         timeout=120)
    report = json.loads(out.stderr.rsplit("IMPORTED ", 1)[1])
    assert report["code"] in (0, None), out.stderr
    return report["loaded"]


def test_a_database_at_head_is_opened_without_alembic_or_the_auth_adapters(tmp_path):
    # A new database is made from the head schema's snapshot (adapters/sqlalchemy/schema_snapshot.py) ...
    assert _startup_imports(tmp_path, "list") == []
    from adapters.sqlalchemy.database import is_at_head

    assert is_at_head(f"sqlite:///{tmp_path / 'mlxm.db'}")
    # ... and from then on the recorded revision equals the scripts' head: plain SQL says so.
    assert _startup_imports(tmp_path, "list", "--json") == []


def test_the_cheap_head_revision_is_alembics_head():
    from adapters.sqlalchemy.migration_scripts import script_head_revision
    from adapters.sqlalchemy.migrate import head_revision

    assert script_head_revision() == head_revision()


def test_a_database_behind_the_scripts_is_upgraded_by_the_first_command(tmp_path):
    from adapters.sqlalchemy.database import is_at_head, recorded_revision
    from adapters.sqlalchemy.migrate import downgrade_database, head_revision

    url = f"sqlite:///{tmp_path / 'mlxm.db'}"
    _startup_imports(tmp_path, "list")
    downgrade_database(url, "0005_vision_embedding_dependencies")
    assert not is_at_head(url)
    assert "alembic" in _startup_imports(tmp_path, "list")  # behind: the slow path upgrades it
    assert recorded_revision(url) == head_revision()


_GC_PROBE = """
import gc, json, sys, time
import click
from entrypoints.cli import main as cli_main

seen = {}


class Finalized:
    # A cycle with a finalizer: only the collector frees it and runs __del__.
    def __init__(self, name):
        self.name, self.me = name, self

    def __del__(self):
        seen["finalized " + self.name] = True


for name in ("long-probe", "quick-probe", "serve"):
    @click.command(name)
    def probe(name=name):
        seen[name] = gc.isenabled()
        deadline = time.monotonic() + 5
        while name == "long-probe" and not gc.isenabled() and time.monotonic() < deadline:
            time.sleep(0.01)  # a long command outlives its start-up
        seen[name + " later"] = gc.isenabled()
        Finalized(name)  # garbage the command leaves behind
    cli_main.cli.add_command(probe, name)
cli_main.QUICK_COMMANDS = cli_main.QUICK_COMMANDS | {"quick-probe"}
cli_main.COLLECTOR_BACK_AFTER_SECONDS = 0.1
for name in ("long-probe", "quick-probe", "serve"):
    sys.argv = ["mlxm", name]
    try:
        cli_main.main()
    except SystemExit:
        pass
    seen["after " + name] = gc.isenabled()
    seen["frozen after " + name] = gc.get_freeze_count() > 0
    gc.unfreeze()
print(json.dumps(seen))
"""


def test_only_quick_read_commands_run_without_the_cyclic_garbage_collector(tmp_path):
    """`main()` turns the collector off for start-up; any command that is not a one-shot read (serve, pull,
    run ...) gets it back: a command that loads models (serve, run, ...) before it runs, any other once its
    start-up is over; it is on again when `main()` returns. After any
    command the objects are frozen, so the exit does not collect them one by one; what a long command made
    since its start-up is collected first, so its finalizers still run."""
    from entrypoints.cli.main import QUICK_COMMANDS

    assert QUICK_COMMANDS <= {"list", "show", "search", "catalog", "select", "profile"}
    out = subprocess.run([sys.executable, "-c", _GC_PROBE], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MLX_MANAGER_HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"long-probe": False, "long-probe later": True, "finalized long-probe": True,
                                      "after long-probe": True, "frozen after long-probe": True,
                                      "quick-probe": False, "quick-probe later": False,
                                      "after quick-probe": True, "frozen after quick-probe": True,
                                      "serve": True, "serve later": True, "finalized serve": True,
                                      "after serve": True, "frozen after serve": True}


def test_a_quick_command_closes_its_database_as_a_normal_exit_does(tmp_path_factory):
    """The objects of a quick command are frozen at exit (not collected), yet its SQLite connections are
    closed: the WAL is checkpointed and the -wal/-shm files are gone, as after any normal exit."""
    home = _library_home(tmp_path_factory)
    exe = Path(sys.executable).with_name("mlxm")
    listed = subprocess.run([str(exe), "list"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "MLX_MANAGER_HOME": str(home)})
    assert listed.returncode == 0 and "tiny-one" in listed.stdout, listed.stderr
    assert sorted(p.name for p in home.glob("mlxm.db*")) == ["mlxm.db"]


def test_a_cli_pull_builds_no_metrics_registry(tmp_path):
    """A CLI process serves no GET /metrics (only `mlxm serve` does, tests/e2e/test_serve_subprocess.py):
    its downloader is not metered and prometheus_client is never imported."""
    from tests.support.fake_hub import FakeHub

    with FakeHub() as hub:
        hub.add_repo("org/tiny", {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"\0" * 64})
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLX_", "HF_"))}
        env.update(MLX_MANAGER_HOME=str(tmp_path), HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1",
                   HF_HUB_DISABLE_TELEMETRY="1")
        probe = _PROBE.format(heavy=("prometheus_client", "adapters.prometheus"))
        out = subprocess.run([sys.executable, "-c", probe, "pull", "org/tiny", "--quiet"], capture_output=True,
                             text=True, env=env, timeout=120)
    report = json.loads(out.stderr.rsplit("IMPORTED ", 1)[1])
    assert report["code"] in (0, None), out.stderr
    assert (tmp_path / "models" / "org" / "tiny" / "model.safetensors").stat().st_size == 64
    assert report["heavy"] == []


def test_a_cli_pull_closes_its_database_as_a_normal_exit_does(tmp_path):
    """A pull (a long command, collector on) is frozen at exit like a quick one, and still closes its
    SQLite connections: the WAL is checkpointed and the -wal/-shm files are gone."""
    from tests.support.fake_hub import FakeHub

    with FakeHub() as hub:
        hub.add_repo("org/tiny", {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"\0" * 64})
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLX_", "HF_"))}
        env.update(MLX_MANAGER_HOME=str(tmp_path), HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1",
                   HF_HUB_DISABLE_TELEMETRY="1")
        exe = Path(sys.executable).with_name("mlxm")
        pulled = subprocess.run([str(exe), "pull", "org/tiny", "--quiet"], capture_output=True, text=True,
                                env=env, timeout=120)
    assert pulled.returncode == 0, pulled.stderr
    assert sorted(p.name for p in tmp_path.glob("mlxm.db*")) == ["mlxm.db"]
    listed = subprocess.run([str(exe), "list"], capture_output=True, text=True, timeout=120, env=env)
    assert "org/tiny" in listed.stdout, listed.stderr


def test_a_host_process_that_calls_the_cli_keeps_its_collector_as_it_was(tmp_path, monkeypatch):
    """Only `main()` turns the collector off for start-up and back on later; a process that calls `cli` itself
    (a test runner, an embedding app) keeps its collector on and unfrozen, and no timer is left behind."""
    import gc

    from click.testing import CliRunner

    from entrypoints.cli import main as cli_main

    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(cli_main.cli, ["pull", "--help"])
    assert result.exit_code == 0, result.output
    assert cli_main._collector_timer is None
    assert gc.isenabled() and gc.get_freeze_count() == frozen
