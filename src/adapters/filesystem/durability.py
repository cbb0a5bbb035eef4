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


def write_atomic(path: Path, data: bytes, *, user_file: bool = False) -> None:
    """Replace `path` with `data` so readers (and a crash) see the old file or the new one, never a half one.

    A temp file in the same folder, fsynced, then `os.replace`d over the name; on any failure the temp
    file goes and `path` is untouched. Permissions: 0600 (mlxm's own files: catalog cache), or with
    `user_file` (a file users read and edit) the replaced file's, else what `open(..., "w")` gives: the
    kernel applies the umask to 0666 at creation. No umask is read or set: `os.umask` is process-wide,
    so setting it, even briefly, could give a file another thread creates meanwhile the wrong mode.
    """
    import stat

    path.parent.mkdir(parents=True, exist_ok=True)
    keep: int | None = None
    if user_file:
        try:
            keep = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            keep = None  # a new file: 0666 less the umask, as the kernel applies it
    fd, temp = _create_temp(path, 0o600 if keep is not None or not user_file else 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            if keep is not None:
                os.fchmod(handle.fileno(), keep)
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


def _create_temp(path: Path, mode: int) -> tuple[int, str]:
    """A new hidden `.<name>.<random>.tmp` beside `path`, opened for writing with `mode` (less the umask).
    `mkstemp` always makes 0600; a new user file must get the umask's mode without reading the umask."""
    import secrets

    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temp, flags, mode), temp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


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
