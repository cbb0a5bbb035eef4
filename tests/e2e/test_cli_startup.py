"""`mlxm --help` and `mlxm list` stay light: no mlx, transformers or huggingface_hub imports."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("mlx", "mlx_lm", "mlx_audio", "transformers", "huggingface_hub", "torch", "numpy")

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
