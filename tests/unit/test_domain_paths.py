"""`domain.paths`: whether a path lies in a folder, by its parts alone (every layer's "inside" check)."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.paths import is_inside, is_strictly_inside


@pytest.mark.parametrize("path,folder,inside,strictly", [
    ("/home/u/.mlx/models/org/name", "/home/u/.mlx", True, True),
    ("/home/u/.mlx", "/home/u/.mlx", True, False),  # the folder itself
    ("/home/u/.mlx-other/x", "/home/u/.mlx", False, False),  # a shared prefix is not a parent
    ("/home/u", "/home/u/.mlx", False, False),
    ("/elsewhere/out.wav", "/home/u/.mlx", False, False),
    ("relative/x", "/home/u/.mlx", False, False),  # never compared across relative and absolute
])
def test_inside_and_strictly_inside(path, folder, inside, strictly):
    assert is_inside(path, folder) is inside and is_inside(Path(path), Path(folder)) is inside
    assert is_strictly_inside(path, folder) is strictly and is_strictly_inside(Path(path), Path(folder)) is strictly
