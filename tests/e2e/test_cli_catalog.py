import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from entrypoints.cli.main import cli
from entrypoints.composition.container import Container


def test_catalog_show_legacy_alias_prints_canonical_entry_json():
    result = CliRunner().invoke(cli, ["catalog", "show", "qwen3-4b", "--json"], obj=Container())
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["id"] == "qwen3-4b-instruct-2507-4bit-v1"
    assert "qwen3-4b" in data["aliases"]
    assert data["sources"][0]["value"] == "mlx-community/Qwen3-4B-Instruct-2507-4bit"


def test_catalog_lists_ids_aliases_type_and_sources():
    result = CliRunner().invoke(cli, ["catalog", "--json"], obj=Container())
    assert result.exit_code == 0
    data = json.loads(result.output)
    ids = {m["id"] for m in data}
    assert "whisper-large-v3-turbo-v1" in ids and "kokoro-82m-bf16-v1" in ids
    table = CliRunner().invoke(cli, ["catalog"], obj=Container())
    assert "qwen3-4b-instruct-2507-4bit-v1" in table.output and "mlx-community/" in table.output


def test_unknown_name_is_one_line_error_with_suggestions_and_nonzero_exit():
    result = CliRunner().invoke(cli, ["catalog", "show", "qwen3-4c"], obj=Container())
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: unknown model 'qwen3-4c'")
    assert "did you mean" in lines[0]


def test_installed_console_script_runs_catalog_show():
    exe = Path(sys.executable).with_name("mlxm")
    out = subprocess.run([str(exe), "catalog", "show", "kokoro", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["id"] == "kokoro-82m-bf16-v1"
