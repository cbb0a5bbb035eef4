"""`mlxm edit` through the real console script on a real home (SQLite, real files, a real tiny llama):
overrides, `show` marks, --reset, --confirm, a re-probe under an override, profiles after a type
change, and a library rebuilt from disk after its database is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.model_folders import write_model_folder
from tests.support.tiny_models import cached_model

MLXM = str(Path(sys.executable).with_name("mlxm"))


@pytest.fixture
def mlxm(tmp_path):
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path / "home"), "COLUMNS": "120"}
    env.pop("MLX_MANAGER_API_KEY", None)

    def run(*args, code=0):
        done = subprocess.run([MLXM, *args], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    return run


def _line(output: str, key: str) -> str:
    return next(line for line in output.splitlines() if line.strip().startswith(key + ":"))


@pytest.mark.slow
def test_edit_show_reset_and_a_re_probe_under_the_override(mlxm, tmp_path, tmp_path_factory):
    llama = cached_model("llama", tmp_path_factory.getbasetemp() / "tiny-models")
    mlxm("import", str(llama), "--name", "tiny")
    edited = mlxm("edit", "tiny", "--family", "my-llama", "--display-name", "Tiny Llama", "--tag", "coding").stdout
    assert "Updated tiny" in edited and "[edited; inferred: llama]" in _line(edited, "family")
    shown = mlxm("show", "tiny").stdout
    assert _line(shown, "family").split()[1:] == ["my-llama", "[edited;", "inferred:", "llama]"]
    assert "Tiny Llama" in _line(shown, "display name") and "[edited" in _line(shown, "display name")
    assert "coding" in _line(shown, "tags") and "[edited" in _line(shown, "tags")
    assert "[edited" not in _line(shown, "type")  # not overridden: not marked

    mlxm("probe", "tiny")  # the real model runs; the probe infers a family again
    after = json.loads(mlxm("show", "tiny", "--json").stdout)
    assert after["family"] == "my-llama" and after["capabilities"]["model_family"] == "llama"
    assert after["overrides"]["family"] == {"value": "my-llama", "inferred": "llama",
                                            "updated_at": after["overrides"]["family"]["updated_at"]}

    reset = json.loads(mlxm("edit", "tiny", "--reset", "family", "--json").stdout)
    assert reset["model"]["family"] == "llama" and "family" not in reset["model"]["overrides"]
    assert "[edited" not in _line(mlxm("show", "tiny").stdout, "family")


@pytest.mark.slow
def test_needs_review_clears_on_confirm_and_the_overlays_survive_a_lost_database(mlxm, tmp_path):
    weird = write_model_folder(tmp_path / "src" / "weird", config={"hidden_size": 8})
    imported = json.loads(mlxm("import", str(weird), "--name", "weird", "--json").stdout)
    assert "needs-review" in imported["tags"] and len(imported["review_reasons"]) == 2
    mlxm("edit", "weird", "--type", "vision")  # settles the type's reason; the family is still flagged
    assert "needs-review" in json.loads(mlxm("show", "weird", "--json").stdout)["tags"]
    confirmed = mlxm("edit", "weird", "--confirm", "family").stdout
    assert _line(confirmed, "family").split() == ["family:", "(none)", "[confirmed]"]
    shown = json.loads(mlxm("show", "weird", "--json").stdout)
    assert shown["review_reasons"] == [] and "needs-review" not in shown["tags"]
    assert shown["confirmed"] == ["family"] and shown["overrides"]["type"]["value"] == "vision"

    home = tmp_path / "home"
    for path in home.glob("mlxm.db*"):
        path.unlink()  # the database is lost; the library folder stays
    other = write_model_folder(tmp_path / "src" / "other", seed=3)
    mlxm("import", str(other), "--name", "other")  # a library change runs recovery first, which rebuilds from disk
    rebuilt = json.loads(mlxm("show", "weird", "--json").stdout)
    assert rebuilt["type"] == "vision" and rebuilt["overrides"]["type"]["inferred"] == "text-gen"
    assert rebuilt["confirmed"] == ["family"] and rebuilt["review_reasons"] == []
    assert "needs-review" not in rebuilt["tags"]


@pytest.mark.slow
def test_a_type_change_checks_the_profiles_and_bad_input_is_one_line(mlxm, tmp_path):
    folder = write_model_folder(tmp_path / "src" / "m")
    mlxm("import", str(folder), "--name", "m")
    mlxm("profile", "create", "chatty", "m", "--temperature", "0.7")
    refused = mlxm("edit", "m", "--type", "audio", code=4)
    assert refused.stderr.startswith("Error: type audio does not fit the profiles of m: chatty (inference -> audio, "
                                     "would drop inference.temperature=0.7)")
    assert json.loads(mlxm("show", "m", "--json").stdout)["type"] == "text-gen"  # nothing changed
    forced = mlxm("edit", "m", "--type", "audio", "--force").stdout
    assert "Converted profile chatty (inference -> audio); dropped inference.temperature=0.7" in forced
    profile = json.loads(mlxm("profile", "show", "chatty", "--json").stdout)
    assert profile["profile_type"] == "audio"

    for args, message in ((("m",), "nothing to change"),
                          (("m", "--tag", "needs-review"), "follows the review"),
                          (("nope", "--family", "x"), "is not in the library"),
                          (("m", "--family", "x", "--reset", "family"), "not both")):
        bad = mlxm("edit", *args, code=3 if "nope" in args else 2)
        lines = bad.stderr.strip().splitlines()
        assert lines[0].startswith("Error: ") and message in lines[0], bad.stderr
