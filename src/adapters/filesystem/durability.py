"""Durability helpers of the filesystem model store: fsync of files, folders and trees, the
manifest check before an install, and a move that survives crossing filesystems. Split from
`model_store.py` by size. `write_atomic` is every small file mlxm replaces (catalog cache, `.sig`).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from application.errors import IntegrityError
from domain.library.layout import Manifest


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace `path` with `data` so readers (and a crash) see the old file or the new one, never a half one.

    A temp file in the same folder, fsynced, then `os.replace`d over the name; on any failure the temp
    file goes and `path` is untouched. `mode`: the new file's permissions (default 0600, mkstemp's).
    """
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def replacement_mode(path: Path) -> int:
    """The replaced file's permissions, or what a plain `open(..., "w")` would give (0666 less the umask):
    `write_atomic`'s `mode` for a file users read and edit (its temp file is 0600 otherwise)."""
    import stat

    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def fsync_dir(path: Path) -> None:
    """Persist a folder's entries (renames, new names); a no-op where folders cannot be fsynced."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # e.g. Windows, some network filesystems
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """fsync every file, then every folder, under `folder` (cheap for files already flushed)."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                fsync_file(path)
        fsync_dir(Path(root))


def check_manifest_files(folder: Path, manifest: Manifest) -> None:
    """Every file the manifest lists is in `folder` with its recorded size (else nothing installs)."""
    for entry in manifest.files:
        path = folder / entry["path"]
        if not path.is_file():
            raise IntegrityError(entry["path"], f"{entry.get('size')} bytes", "no file in the staged folder")
        size = path.stat().st_size
        if entry.get("size") is not None and size != entry["size"]:
            raise IntegrityError(entry["path"], f"{entry['size']} bytes", f"{size} bytes")


def _move(src: Path, dst: Path) -> None:
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # Another filesystem: copy beside the target, then rename (still atomic at the end).
        tmp = dst.with_name(dst.name + ".incoming")
        shutil.copytree(src, tmp, symlinks=True)
        os.rename(tmp, dst)
        shutil.rmtree(src, ignore_errors=True)
