"""Architecture rules import-linter cannot express: the application layer does no file I/O through `os`
nor through `pathlib` methods.

import-linter forbids `shutil`, `fcntl` and `tempfile` in `application` (`.importlinter`); `os` itself
is needed for pure path arithmetic (`os.path.join`, `os.sep`...), so its file operations are found here.
The on-disk work belongs to the `ModelStore` port (`adapters/filesystem/model_store.py`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import application

APPLICATION = Path(application.__file__).parent
# `os` calls that read or change the filesystem, and the builtin `open` (`fsdecode`/`strerror` only convert values).
FILE_IO = re.compile(
    r"(?<![\w.])os\.(?!path\.(abspath|normpath|join|dirname|basename|expanduser|relpath|splitext)\b|sep\b"
    r"|fsdecode\b|fsencode\b|strerror\b)"
    r"[a-z_]+(\.[a-z_]+)?\s*\("
    r"|(?<![\w.])open\s*\("
)


def file_io_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if FILE_IO.search(line.split("#", 1)[0]) and not line.strip().startswith(('"', "'", "*", "-"))]


def test_the_pattern_finds_file_operations_and_allows_path_arithmetic() -> None:
    bad = "os.rename(a, b)\nos.path.lexists(p)\nwith open(p) as f:\nos.walk(root)\nos.fsync(fd)\nos.stat(p)\n"
    assert len(file_io_lines(bad)) == 6
    fine = ("os.path.join(a, b)\nos.path.normpath(x)\nself._open(x)\nos.sep\nstore.rename(a, b)\nos.fsdecode(name)\n"
            "os.strerror(errno.ENOSPC)\n")
    assert file_io_lines(fine) == []


def test_the_application_layer_calls_no_os_file_operation() -> None:
    found = {}
    for path in sorted(APPLICATION.rglob("*.py")):
        lines = file_io_lines(path.read_text(encoding="utf-8"))
        if lines:
            found[str(path.relative_to(APPLICATION))] = lines
    assert found == {}


# pathlib methods that read or change the filesystem. The use cases call them only on the ports that
# own files (the model store, the linker); anything else calling them is a path doing its own I/O.
PATHLIB_IO = {
    "exists", "is_file", "is_dir", "is_symlink", "is_mount", "stat", "lstat", "owner", "group", "samefile",
    "read_bytes", "read_text", "write_bytes", "write_text", "open", "touch", "unlink", "mkdir", "rmdir",
    "iterdir", "glob", "rglob", "walk", "rename", "replace", "symlink_to", "hardlink_to", "readlink",
    "chmod", "lchmod", "resolve",
}
PORTS = {"store", "_store", "layout", "_layout", "linker", "_linker"}


def _receiver_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None  # Path(...).exists(), (a / b).stat(): never a port


def pathlib_io_calls(source: str) -> list[str]:
    """`receiver.method(...)` calls of pathlib file methods on anything but a file port.

    Two names are also ordinary verbs, so only pathlib's own call shape counts: `resolve` without a
    positional argument (not `catalog.resolve(name)`), `replace` with one argument and no keyword
    (not `dataclasses.replace(f, dest=d)` nor `text.replace("a", "b")`).
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = node.func.attr
        if method not in PATHLIB_IO or _receiver_name(node.func.value) in PORTS:
            continue
        if method == "resolve" and node.args:
            continue
        if method == "replace" and (len(node.args) != 1 or node.keywords):
            continue
        found.append(ast.unparse(node))
    return found


def test_the_pathlib_rule_finds_path_io_and_allows_ports_and_use_case_verbs() -> None:
    bad = ("path.read_bytes()\n(folder / 'a').unlink(missing_ok=True)\nPath(p).exists()\nx.parent.mkdir(parents=True)\n"
           "root.iterdir()\nfinal.stat().st_size\nlink.resolve()\nself.trash.exists()\nsrc.replace(dst)\n"
           "workspace.glob('import-*')\n(w / 'r.json').write_text('{}', encoding='utf-8')\n")
    assert len(pathlib_io_calls(bad)) == 11
    fine = ("self._layout.unlink(p, missing_ok=True)\nstore.read_text(p)\nself.layout.exists(p)\n"
            "self._downloads.layout.is_file(p)\nlayout.mkdir(p, parents=True)\nself._linker.is_dir(t)\n"
            "self.resolve(name)\nself.catalog.resolve(name)\nPath(p).expanduser()\npath.relative_to(root)\n"
            "dataclasses.replace(f, dest=d)\nname.replace('/', '--')\n")
    assert pathlib_io_calls(fine) == []


def test_the_application_layer_does_no_pathlib_file_io() -> None:
    found = {}
    for path in sorted(APPLICATION.rglob("*.py")):
        calls = pathlib_io_calls(path.read_text(encoding="utf-8"))
        if calls:
            found[str(path.relative_to(APPLICATION))] = calls
    assert found == {}
