"""Whether a path lies in a folder, judged by its parts alone, for every layer's checks.

Pure: no file is touched and no link is followed. A caller that must not be fooled by a symbolic link
or `..` passes real (resolved) or absolute, normalised paths, as each caller here does.
"""

from __future__ import annotations

import os
from pathlib import PurePath


def is_inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """True when `path` is `folder` itself or lies below it."""
    return PurePath(path).is_relative_to(folder)


def is_strictly_inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """True when `path` lies below `folder` (the folder itself is not inside itself)."""
    return PurePath(path) != PurePath(folder) and is_inside(path, folder)
