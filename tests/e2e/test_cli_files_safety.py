"""The real CLI on a real home (SQLite + files under tmp_path): mlxm never deletes what it did not create,
and a file where mlxm keeps a folder is a one-line error that says what to do."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from entrypoints.cli.main import cli
from tests.support.model_folders import kept_folder_note, write_model_folder


def mlxm(home, *args: str):
    return CliRunner().invoke(cli, list(args), env={"MLX_MANAGER_HOME": str(home)})


def one_error_line(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def _import(tmp_path, name: str):
    home = tmp_path / "home"
    imported = mlxm(home, "import", str(write_model_folder(tmp_path / "src")), "--name", name, "--json")
    assert imported.exit_code == 0, imported.output
    link = home / "models" / name
    assert link.is_symlink()
    return home, link


def test_rm_keeps_the_users_own_folder_that_replaced_mlxms_link(tmp_path):
    home, link = _import(tmp_path, "swapped")
    revisions = home / "models" / ".revisions" / "swapped"
    link.unlink()
    shutil.copytree(tmp_path / "src", link)  # the user's own copy, with their notes
    (link / "notes.txt").write_text("mine")

    note = kept_folder_note(link)
    removed = mlxm(home, "rm", "swapped")

    assert (link / "notes.txt").read_text() == "mine" and (link / "model.safetensors").is_file()
    assert removed.exit_code == 0, removed.output
    assert f"Kept {note}" in removed.output
    assert not revisions.exists(), "mlxm's own revision folder goes"
    assert one_error_line(mlxm(home, "show", "swapped")).startswith("Error: model 'swapped' is not in the library")


def test_rm_keeps_a_copied_and_edited_revision_folder_even_with_mlxms_manifest(tmp_path):
    # `cp -r models/.revisions/<key>/<rev> models/<key>` brings mlxm's manifest along; the edited copy is
    # the user's all the same (today's mlxm only ever puts a link at `models/<key>`).
    home, link = _import(tmp_path, "copied")
    revision = link.resolve()
    link.unlink()
    shutil.copytree(revision, link)
    assert (link / ".mlxm.json").is_file()
    (link / "config.json").write_text('{"model_type": "llama", "edited": true}')
    note = kept_folder_note(link)

    removed = mlxm(home, "rm", "copied")

    assert removed.exit_code == 0, removed.output
    assert (link / "config.json").read_text() == '{"model_type": "llama", "edited": true}'
    assert (link / "model.safetensors").is_file() and (link / ".mlxm.json").is_file()
    assert f"Kept {note}" in removed.output
    assert not revision.exists(), "mlxm's own revision folder goes"


def test_rm_keeps_the_users_link_and_deletes_mlxms_own(tmp_path):
    home, link = _import(tmp_path, "relinked")
    mine = write_model_folder(tmp_path / "mine")
    link.unlink()
    link.symlink_to(mine)
    removed = mlxm(home, "rm", "relinked", "--json")
    assert link.is_symlink() and (mine / "model.safetensors").is_file()
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.output)["kept"] == [f"{link}: a link mlxm did not create; left alone"]

    # mlxm's own link and revision go, and nothing is reported kept.
    home, link = _import(tmp_path / "again", "plain")
    assert json.loads(mlxm(home, "rm", "plain", "--json").output) == {"id": "plain", "deleted": True}
    assert not os.path.lexists(link) and not (home / "models" / ".revisions" / "plain").exists()


@pytest.mark.parametrize("folder", ["staging", "models"])
def test_a_file_where_mlxm_keeps_a_folder_is_a_one_line_error_that_says_what_to_do(tmp_path, folder):
    home = tmp_path / "home"
    home.mkdir()
    (home / folder).write_text("someone's file")
    source = write_model_folder(tmp_path / "src")
    line = one_error_line(mlxm(home, "import", str(source), "--name", "x", "--move"))
    assert line == (f"Error: {home / folder} is a file, but mlxm keeps a folder there; move that file away "
                    f"(e.g. mv {home / folder} {home / folder}.moved) and try again")
    assert (home / folder).read_text() == "someone's file"
    assert (source / "model.safetensors").is_file(), "the moved folder is back where it was"


def test_only_a_mkdir_inside_the_home_is_told_to_move_the_file_away(tmp_path):
    # Only a mkdir's "File exists" means a folder was wanted; `open(..., "x")` wanted a new file.
    from entrypoints.cli.base import _describe_file_error

    taken = tmp_path / "taken"
    taken.write_text("x")
    with pytest.raises(FileExistsError) as caught:
        open(taken, "x")
    assert _describe_file_error(caught.value, str(tmp_path)) == f"File exists: {taken}"
    with pytest.raises(FileExistsError) as caught:
        taken.mkdir(parents=True, exist_ok=True)
    assert _describe_file_error(caught.value, str(tmp_path)).startswith(
        f"{taken} is a file, but mlxm keeps a folder there")
    # Outside mlxm's home the path is the user's: the plain message, never "move that file away".
    assert _describe_file_error(caught.value, str(tmp_path / "home")) == f"File exists: {taken}"
