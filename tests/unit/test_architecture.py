"""Architecture rules import-linter cannot express: the application layer does no file I/O through `os`.

import-linter forbids `shutil`, `fcntl` and `tempfile` in `application` (`.importlinter`); `os` itself
is needed for pure path arithmetic (`os.path.join`, `os.sep`...), so its file operations are found here.
The on-disk work belongs to the `ModelStore` port (`adapters/filesystem/model_store.py`).
"""

from __future__ import annotations

import re
from pathlib import Path

import application

APPLICATION = Path(application.__file__).parent
# `os` calls that read or change the filesystem, and the builtin `open`.
FILE_IO = re.compile(
    r"(?<![\w.])os\.(?!path\.(abspath|normpath|join|dirname|basename|expanduser|relpath|splitext)\b|sep\b)"
    r"[a-z_]+(\.[a-z_]+)?\s*\("
    r"|(?<![\w.])open\s*\("
)


def file_io_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if FILE_IO.search(line.split("#", 1)[0]) and not line.strip().startswith(('"', "'", "*", "-"))]


def test_the_pattern_finds_file_operations_and_allows_path_arithmetic() -> None:
    bad = "os.rename(a, b)\nos.path.lexists(p)\nwith open(p) as f:\nos.walk(root)\nos.fsync(fd)\nos.stat(p)\n"
    assert len(file_io_lines(bad)) == 6
    fine = "os.path.join(a, b)\nos.path.normpath(x)\nself._open(x)\nos.sep\nstore.rename(a, b)\n"
    assert file_io_lines(fine) == []


def test_the_application_layer_calls_no_os_file_operation() -> None:
    found = {}
    for path in sorted(APPLICATION.rglob("*.py")):
        lines = file_io_lines(path.read_text(encoding="utf-8"))
        if lines:
            found[str(path.relative_to(APPLICATION))] = lines
    assert found == {}
